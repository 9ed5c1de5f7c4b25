"""Interval series → hourly external statistics: the data the Energy dashboard reads.

Every provider's history goes through `async_import_series`, so the rules hold for all
clouds alike:
- one row per UTC hour, the sum of the intervals starting in it (0 where the cloud says
  0, no row where it says nothing);
- a first import backfills the configured days; later imports resume: they re-import a
  trailing window (late and corrected intervals overwrite their hour) anchored on the
  `sum` of the hour before it, so overlap never counts twice;
- rows are written batch by batch as the cloud delivers them, so an interrupted
  backfill resumes where it stopped;
- a batch that failed validation never reaches here (the provider raises instead).
"""

from collections.abc import AsyncIterator, Callable
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


async def _resume_point(
    hass: HomeAssistant, statistic_id: str, now: datetime, backfill: timedelta
) -> tuple[datetime, Decimal]:
    """Return where to start importing and the sum just before that hour."""
    recorder = get_instance(hass)
    # Rows queued by an earlier import (before a reload, say) must be committed before
    # they are read back, or the anchor would miss them.
    await recorder.async_block_till_done()
    last = await recorder.async_add_executor_job(
        get_last_statistics, hass, 1, statistic_id, False, {"sum"}
    )
    if not last.get(statistic_id):
        return hour_of(now - backfill), Decimal(0)
    last_row = last[statistic_id][0]
    last_start = datetime.fromtimestamp(last_row["start"], UTC)
    window_start = hour_of(now) - REIMPORT_WINDOW
    if last_start < window_start:
        # Nothing stored inside the window: continue right after the last row.
        return last_start + HOUR, exact(last_row.get("sum") or 0.0)
    stored = await recorder.async_add_executor_job(
        statistics_during_period,
        hass,
        window_start,
        None,
        {statistic_id},
        "hour",
        None,
        {"state", "sum"},
    )
    first = stored[statistic_id][0]
    # Every row we write has sum = previous sum + state, so the sum before the window
    # is the first stored row's sum minus its own state.
    return window_start, exact(first.get("sum") or 0.0) - exact(
        first.get("state") or 0.0
    )


async def async_import_series(
    hass: HomeAssistant,
    series: Series,
    fetch: HistoryFetcher,
    *,
    now: datetime,
    backfill: timedelta,
) -> ImportResult:
    """Import one channel's history into its hourly statistic (see module docstring)."""
    start, running = await _resume_point(hass, series.statistic_id, now, backfill)
    pending: dict[datetime, list[Decimal]] = {}
    rows_written = 0
    last_hour: datetime | None = None

    def flush(before: datetime | None) -> None:
        nonlocal rows_written, last_hour, running
        hours = sorted(h for h in pending if before is None or h < before)
        if not hours:
            return
        rows: list[StatisticData] = []
        for hour in hours:
            state = sum(pending.pop(hour), Decimal(0))
            running += state
            rows.append(
                StatisticData(start=hour, state=float(state), sum=float(running))
            )
        async_add_external_statistics(hass, series.metadata, rows)
        rows_written += len(rows)
        last_hour = hours[-1]

    async for batch in fetch(start, now):
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
        start,
    )
    return ImportResult(rows=rows_written, last_hour=last_hour)


async def async_clear_statistics(hass: HomeAssistant, prefixes: list[str]) -> list[str]:
    """Remove every statistic of ours whose id starts with one of `prefixes`."""
    ids = [
        row["statistic_id"]
        for row in await async_list_statistic_ids(hass)
        if row["source"] == DOMAIN and row["statistic_id"].startswith(tuple(prefixes))
    ]
    if ids:
        get_instance(hass).async_clear_statistics(ids)
    return ids
