"""Interval series → hourly external statistics: the data the Energy dashboard reads.

Every provider's history goes through `async_import_series`, so the rules hold for all
clouds alike:
- one row per UTC hour, the sum of the intervals starting in it (0 where the cloud says
  0, no row where it says nothing);
- a first import backfills the configured days; later imports resume: they re-import a
  trailing window (late and corrected intervals overwrite their hour), or from the last
  stored hour if that is older, anchored on the `sum` of the hour before, so overlap
  never counts twice and a partly stored hour is completed;
- an hour once stored keeps its value if the cloud later leaves it out;
- rows are written batch by batch as the cloud delivers them, so an interrupted
  backfill resumes where it stopped;
- a batch that failed validation never reaches here (the provider raises instead).
"""

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import logging

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    async_list_statistic_ids,
    get_last_statistics,
    statistics_during_period,
)
from homeassistant.const import UnitOfEnergy, UnitOfVolume
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import slugify
from homeassistant.util.unit_conversion import EnergyConverter, VolumeConverter

from .const import DOMAIN, REIMPORT_WINDOW
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
    """One external statistic: where it is stored and how it is named."""

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


def statistic_prefix(provider_key: str, site_id: str) -> str:
    """Return the start every statistic id of a site shares."""
    return f"{DOMAIN}:{slugify(f'{provider_key}_{site_id}')}_"


def series_for(provider_key: str, site: Site, channel: Channel) -> Series:
    """Describe the statistic a channel's history feeds.

    The name carries the site's and the meter's names: it is what people look for in
    the Energy dashboard's picker.
    """
    assert channel.statistic is not None
    object_id = slugify(f"{provider_key}_{channel.statistic}")
    return Series(
        statistic_id=f"{DOMAIN}:{object_id}",
        name=f"{site.name} {channel.name}",
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


async def _resume_point(
    hass: HomeAssistant, statistic_id: str, now: datetime, backfill: timedelta
) -> _Resume:
    """Return where to start importing, anchored on what is stored.

    The import starts at the trailing window, or at the last stored hour if that is
    older (after an outage): that hour may have been stored while it was still
    incomplete.
    """
    recorder = get_instance(hass)
    # Rows queued by an earlier import (before a reload, say) must be committed before
    # they are read back, or the anchor would miss them.
    await recorder.async_block_till_done()
    last = await recorder.async_add_executor_job(
        get_last_statistics, hass, 1, statistic_id, False, {"sum"}
    )
    if not last.get(statistic_id):
        return _Resume(hour_of(now - backfill), Decimal(0), {})
    last_start = datetime.fromtimestamp(last[statistic_id][0]["start"], UTC)
    start = min(hour_of(now) - REIMPORT_WINDOW, last_start)
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
) -> ImportResult:
    """Import one channel's history into its hourly statistic (see module docstring).

    An hour stored before that the cloud now leaves out keeps its stored value: the
    cloud saying nothing is no reason to lose what it said, and rows cannot be
    deleted one by one, so dropping it from the sums would break them.
    """
    resume = await _resume_point(hass, series.statistic_id, now, backfill)
    running = resume.anchor
    kept = resume.stored
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
            rows.append(
                StatisticData(start=hour, state=float(state), sum=float(running))
            )
        async_add_external_statistics(hass, series.metadata, rows)
        rows_written += len(rows)
        last_hour = hours[-1]

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


async def async_clear_statistics(
    hass: HomeAssistant, prefixes: list[str], keep: Collection[str] = ()
) -> list[str]:
    """Remove every statistic of ours whose id starts with one of `prefixes`."""
    # Imports still queued must land first, or they would survive the removal.
    await get_instance(hass).async_block_till_done()
    ids = [
        row["statistic_id"]
        for row in await async_list_statistic_ids(hass)
        if row["source"] == DOMAIN
        and row["statistic_id"].startswith(tuple(prefixes))
        and row["statistic_id"] not in keep
    ]
    if ids:
        get_instance(hass).async_clear_statistics(ids)
    return ids
