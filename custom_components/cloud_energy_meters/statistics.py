"""Interval series → hourly external statistics: the data the Energy dashboard reads.

Every provider's history goes through `async_import_series`, so the rules hold for all
clouds alike:
- one row per UTC hour, the sum of the intervals starting in it (0 where the cloud says
  0, no row where it says nothing);
- a first import backfills the configured days; later imports resume: they re-import a
  trailing window (late and corrected intervals overwrite their hour), or from the last
  stored hour if that is older, anchored on the `sum` of the hour before, so overlap
  never counts twice and a partly stored hour is completed;
- an hour once stored keeps its value if the cloud later leaves it out (silence is no
  reason to lose what it said, and rows cannot be deleted one by one from the sums);
- rows are written batch by batch as the cloud delivers them, so an interrupted
  backfill resumes where it stopped;
- a batch that failed validation never reaches here (the provider raises instead);
- nothing waits for the recorder: it works its queue only once Home Assistant has
  started, and an import may run before. What an import queued and the recorder has
  not committed yet is remembered here, so the next import (after a reload, say)
  resumes from it rather than from a database that does not show it yet.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
import logging
from typing import Any

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.components.recorder.tasks import SynchronizeTask
from homeassistant.const import UnitOfEnergy, UnitOfVolume
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.unit_conversion import EnergyConverter, VolumeConverter

from .const import DOMAIN, REIMPORT_WINDOW
from .ids import readable_statistic_id, statistic_id_of
from .providers.model import Channel, Interval, Site

_LOGGER = logging.getLogger(__name__)

HOUR = timedelta(hours=1)

_UNIT_CLASSES = {
    UnitOfEnergy.KILO_WATT_HOUR: EnergyConverter.UNIT_CLASS,
    UnitOfEnergy.MEGA_WATT_HOUR: EnergyConverter.UNIT_CLASS,
    UnitOfEnergy.WATT_HOUR: EnergyConverter.UNIT_CLASS,
    UnitOfVolume.CUBIC_METERS: VolumeConverter.UNIT_CLASS,
    UnitOfVolume.LITERS: VolumeConverter.UNIT_CLASS,
}

type HistoryFetcher = Callable[[datetime, datetime], AsyncIterator[list[Interval]]]


@dataclass(frozen=True, slots=True)
class Series:
    """One external statistic: where it is stored and how it is named.

    `key` never changes (the cloud's ids); `statistic_id` is where the rows are
    stored: a readable id, pinned by the entry once written (see statistic_names).
    """

    key: str
    statistic_id: str
    name: str
    unit: str

    @property
    def metadata(self) -> StatisticMetaData:
        """Return the recorder metadata (mean_type and unit_class are required)."""
        return StatisticMetaData(
            mean_type=StatisticMeanType.NONE,
            has_sum=True,
            name=self.name,
            source=DOMAIN,
            statistic_id=self.statistic_id,
            unit_class=_UNIT_CLASSES.get(self.unit),  # type: ignore[call-overload]
            unit_of_measurement=self.unit,
        )


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import wrote: how many hourly rows, up to which hour."""

    rows: int
    last_hour: datetime | None


def series_for(provider_key: str, site: Site, channel: Channel) -> Series:
    """Describe the statistic a channel's history feeds."""
    return Series(
        key=statistic_id_of(provider_key, channel),
        statistic_id=readable_statistic_id(provider_key, site.name, channel.name),
        name=f"{site.name} {channel.name}",  # what the Energy dashboard's picker shows
        unit=channel.unit,
    )


def hour_of(moment: datetime) -> datetime:
    """Return the UTC hour an instant falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def exact(value: float) -> Decimal:
    """Return the decimal a cloud wrote, from the float JSON made of it.

    Clouds publish decimals (0.029 kWh); summing their binary approximations drifts in
    the last bits and makes a re-import differ from the first one. Summing the decimals
    themselves gives every hour and every running sum exactly, again and again.
    """
    return Decimal(repr(value))


@dataclass(frozen=True, slots=True)
class _Resume:
    """Where an import starts, the sum before that hour, and what is stored since."""

    start: datetime
    anchor: Decimal
    stored: dict[datetime, Decimal]


@dataclass(slots=True)
class _Queued:
    """The newest rows of a statistic handed to the recorder, maybe not committed yet.

    Only what the next import can need is kept: the hours from where it will start
    (see `_resume_point`), and the sum before them.
    """

    anchor: Decimal
    rows: dict[datetime, Decimal] = field(default_factory=dict)
    committed: asyncio.Future[None] | None = None

    @property
    def pending(self) -> bool:
        """Tell whether the recorder may not have committed these rows yet."""
        return self.committed is not None and not self.committed.done()

    def trim(self, now: datetime) -> None:
        """Fold the hours no later import starts before into the anchor."""
        cut = min(hour_of(now) - REIMPORT_WINDOW, max(self.rows))
        for hour in [hour for hour in self.rows if hour < cut]:
            self.anchor += self.rows.pop(hour)


_QUEUED: HassKey[dict[str, _Queued]] = HassKey(f"{DOMAIN}_queued_rows")


def _queued(hass: HomeAssistant) -> dict[str, _Queued]:
    return hass.data.setdefault(_QUEUED, {})


def queued_rows(hass: HomeAssistant) -> dict[str, _Queued]:
    """Return what imports queued for the recorder, by statistic id."""
    return _queued(hass)


def _worked_through(hass: HomeAssistant) -> asyncio.Future[None]:
    """Return a future done once the recorder has worked through all queued so far.

    Not the recorder's `async_get_commit_future`: it returns None when the queue is
    empty, which it also is while the recorder's thread still writes the task it has
    just taken. A move would then read the database before the rows are in it, and
    an import would start over from its backfill with the wrong sums. A task queued
    behind ours is done only after ours.
    """
    future: asyncio.Future[None] = hass.loop.create_future()
    get_instance(hass).queue_task(SynchronizeTask(future))
    return future


def _write(
    hass: HomeAssistant,
    metadata: StatisticMetaData,
    rows: list[StatisticData],
    queued: _Queued,
    now: datetime,
) -> None:
    """Queue rows for the recorder and remember them until it has committed them."""
    async_add_external_statistics(hass, metadata, rows)
    queued.trim(now)
    queued.committed = _worked_through(hass)
    _queued(hass)[metadata["statistic_id"]] = queued


def _start(now: datetime, last: datetime) -> datetime:
    """Return where a resumed import starts: the trailing window, or the last hour.

    The last stored hour, if older (after an outage): it may have been stored while
    it was still incomplete.
    """
    return min(hour_of(now) - REIMPORT_WINDOW, last)


async def _resume_point(
    hass: HomeAssistant, statistic_id: str, now: datetime, backfill: timedelta
) -> _Resume:
    """Return where to start importing, anchored on what is stored (or queued)."""
    queued = _queued(hass).get(statistic_id)
    if queued is not None and queued.pending:
        if not queued.rows:  # cleared, and the clearing is not committed yet
            return _Resume(hour_of(now - backfill), Decimal(0), {})
        start = _start(now, max(queued.rows))
        anchor = queued.anchor + sum(
            (state for hour, state in queued.rows.items() if hour < start), Decimal(0)
        )
        stored = {hour: state for hour, state in queued.rows.items() if hour >= start}
        return _Resume(start, anchor, stored)
    recorder = get_instance(hass)
    last = await recorder.async_add_executor_job(
        get_last_statistics, hass, 1, statistic_id, False, {"sum"}
    )
    if not last.get(statistic_id):
        return _Resume(hour_of(now - backfill), Decimal(0), {})
    start = _start(now, datetime.fromtimestamp(last[statistic_id][0]["start"], UTC))
    rows = await recorder.async_add_executor_job(
        statistics_during_period,
        hass,
        start,
        None,
        {statistic_id},
        "hour",
        None,
        {"state", "sum"},
    )
    stored = {
        datetime.fromtimestamp(row["start"], UTC): exact(row.get("state") or 0.0)
        for row in rows[statistic_id]
    }
    first = rows[statistic_id][0]
    # Every row we write has sum = previous sum + state, so the sum before the first
    # stored hour is its sum minus its own state.
    return _Resume(start, exact(first.get("sum") or 0.0) - stored[min(stored)], stored)


async def async_import_series(
    hass: HomeAssistant,
    series: Series,
    fetch: HistoryFetcher,
    *,
    now: datetime,
    backfill: timedelta,
    reached: Callable[[datetime], None] | None = None,
) -> ImportResult:
    """Import one channel's history into its hourly statistic (see module docstring).

    `reached` is told, as rows are written, up to which hour (exclusive) they go.
    """
    resume = await _resume_point(hass, series.statistic_id, now, backfill)
    if reached is not None:
        reached(resume.start)
    running = resume.anchor
    kept = resume.stored
    queued = _Queued(resume.anchor)
    pending: dict[datetime, list[Decimal]] = {}
    rows_written = 0
    last_hour: datetime | None = None

    def flush(before: datetime | None) -> None:
        nonlocal rows_written, last_hour, running
        hours = sorted(
            h for h in pending.keys() | kept.keys() if before is None or h < before
        )
        if not hours:
            return
        rows: list[StatisticData] = []
        for hour in hours:
            fetched = pending.pop(hour, None)
            stored = kept.pop(hour, Decimal(0))
            state = stored if fetched is None else sum(fetched, Decimal(0))
            running += state
            queued.rows[hour] = state
            rows.append(
                StatisticData(start=hour, state=float(state), sum=float(running))
            )
        _write(hass, series.metadata, rows, queued, now)
        rows_written += len(rows)
        last_hour = hours[-1]
        if reached is not None:
            reached(last_hour + HOUR)

    async for batch in fetch(resume.start, now):
        for interval in batch:
            pending.setdefault(hour_of(interval.start), []).append(
                exact(interval.value)
            )
        if batch:
            # The batch's last hour may continue in the next batch: hold it back.
            flush(hour_of(batch[-1].start))
    flush(None)
    _LOGGER.debug(
        "Imported %s hourly rows into %s from %s",
        rows_written,
        series.statistic_id,
        resume.start,
    )
    return ImportResult(rows=rows_written, last_hour=last_hour)


async def async_stored_statistics(
    hass: HomeAssistant, prefixes: Collection[str]
) -> list[str]:
    """Return our statistics in the database whose id starts with one of `prefixes`."""
    ours = await get_instance(hass).async_add_executor_job(
        partial(get_metadata, hass, statistic_source=DOMAIN)
    )
    return sorted(i for i in ours if i.startswith(tuple(prefixes)))


async def async_clear_statistics(
    hass: HomeAssistant,
    statistic_ids: Iterable[str],
    prefixes: Collection[str] = (),
    keep: Collection[str] = (),
) -> list[str]:
    """Remove these statistics of ours, and those whose id starts with a prefix.

    Nothing waits for the recorder: the removal is queued behind the rows still to be
    written, so none of them survives it. A statistic only queued so far is not in the
    database yet: callers name it in `statistic_ids`.
    """
    ids = set(statistic_ids)
    if prefixes:
        ids.update(await async_stored_statistics(hass, prefixes))
    ids.difference_update(keep)
    if ids:
        get_instance(hass).async_clear_statistics(sorted(ids))
        committed = _worked_through(hass)
        for statistic_id in ids:
            _queued(hass)[statistic_id] = _Queued(Decimal(0), committed=committed)
    return sorted(ids)


async def async_move_statistic(hass: HomeAssistant, old_id: str, new_id: str) -> bool:
    """Store a statistic's rows under a new id and remove the old one.

    The recorder renames only the statistics it compiles itself, not external ones:
    every row is copied as it is. False when there is nothing to move.
    """
    recorder = get_instance(hass)
    metadata = await recorder.async_add_executor_job(
        partial(get_metadata, hass, statistic_ids={old_id})
    )
    if old_id not in metadata:
        return False
    found = await recorder.async_add_executor_job(
        statistics_during_period,
        hass,
        datetime.fromtimestamp(0, UTC),
        None,
        {old_id},
        "hour",
        None,
        {"state", "sum"},
    )
    rows = found.get(old_id, [])
    if rows:
        first = rows[0]
        queued = _Queued(
            exact(first.get("sum") or 0.0) - exact(first.get("state") or 0.0)
        )
        copied: list[StatisticData] = []
        for row in rows:
            start = datetime.fromtimestamp(row["start"], UTC)
            state = row.get("state") or 0.0
            queued.rows[start] = exact(state)
            copied.append(
                StatisticData(start=start, state=state, sum=row.get("sum") or 0.0)
            )
        moved = metadata[old_id][1].copy()
        moved["statistic_id"] = new_id
        _write(hass, moved, copied, queued, datetime.now(UTC))
    await async_clear_statistics(hass, [old_id])
    return True


class ImportedStatistics:
    """Every statistic an entry has written, kept between restarts.

    Removing the entry clears them all, also those of sites or datastreams the
    user dropped since. The record also pins each statistic's id to its key, so a
    readable id, once written, stays when a site or meter is renamed.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind the entry's record (load it before use)."""
        self._hass = hass
        self._store: Store[dict[str, Any]] = Store(
            hass, 1, f"{DOMAIN}.{entry_id}.statistics"
        )
        self.ids: set[str] = set()
        self.pinned: dict[str, str] = {}
        """Statistic key → the id its rows are stored under."""

    async def async_load(self) -> set[str]:
        """Read the record; return the ids."""
        saved = await self._store.async_load()
        self.ids = set(saved["statistic_ids"]) if saved else set()
        self.pinned = dict(saved.get("pinned", {})) if saved else {}
        pinned_ids(self._hass).update(self.pinned.values())
        return self.ids

    async def async_set(self, ids: Iterable[str]) -> None:
        """Replace the record of ids; a statistic cleared loses its pin too."""
        self.ids = set(ids)
        for key, statistic_id in list(self.pinned.items()):
            if statistic_id not in self.ids:
                del self.pinned[key]
                pinned_ids(self._hass).discard(statistic_id)
        await self._save()

    async def async_add(self, statistic_id: str) -> None:
        """Note a statistic before its first rows are written."""
        if statistic_id not in self.ids:
            await self.async_set({*self.ids, statistic_id})

    async def async_pin(self, key: str, statistic_id: str) -> None:
        """Store the statistic of `key` under `statistic_id` from now on."""
        self.pinned[key] = statistic_id
        pinned_ids(self._hass).add(statistic_id)
        self.ids.discard(key)  # its rows moved, if it had any
        self.ids.add(statistic_id)
        await self._save()

    async def _save(self) -> None:
        await self._store.async_save(
            {
                "statistic_ids": sorted(self.ids),
                "pinned": dict(sorted(self.pinned.items())),
            }
        )

    async def async_remove(self) -> None:
        """Forget the record (the entry is removed)."""
        pinned_ids(self._hass).difference_update(self.pinned.values())
        await self._store.async_remove()


_PINNED: HassKey[set[str]] = HassKey(f"{DOMAIN}_pinned_statistic_ids")


def pinned_ids(hass: HomeAssistant) -> set[str]:
    """Return the statistic ids every loaded entry has pinned (none is given twice)."""
    return hass.data.setdefault(_PINNED, set())
