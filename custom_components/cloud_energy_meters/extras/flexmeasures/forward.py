"""Measurements Home Assistant sends to FlexMeasures, one completed interval at a time.

A "measurement to send" subentry pairs a Home Assistant sensor with a FlexMeasures
sensor of the entry. Every interval of the FlexMeasures sensor's resolution that has
ended is worked out from the recorder (the mean of a power or a measurement, the
difference of a register) and posted in the sensor's unit. The end of the last one
posted is stored: a restart or an outage catches up from the recorder's history, and
no interval is posted twice or skipped. One the server refuses is logged once, with
its reason, and not posted again.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.coordinator import CloudEnergyConfigEntry
from custom_components.cloud_energy_meters.providers.errors import (
    ProviderError,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.flexmeasures import (
    FlexMeasuresProvider,
    SensorInfo,
    floor_to,
)
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.event import async_track_utc_time_change
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .recorded import converted, intervals, recorded

_LOGGER = logging.getLogger(__name__)

SUBENTRY_TYPE = "measurement"
CONF_ENTITY_ID = "entity_id"
CONF_SENSOR_ID = "sensor_id"
SETTLE = timedelta(seconds=30)
"""How long after an interval's end it is sent: the recorder has written it. The
forwarder looks every minute at this second for an interval that has ended."""
CATCH_UP = timedelta(days=10)
"""The furthest back a catch-up reaches: the recorder's default history."""
FALLBACK_STEP = timedelta(minutes=15)
"""The interval of a FlexMeasures sensor without a resolution (instantaneous)."""
STORE_VERSION = 1


def sent_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, str]]:
    """Return where an entry's forwarders keep the end of what they posted."""
    return Store(hass, STORE_VERSION, f"{DOMAIN}.{entry_id}.sent")


@dataclass(frozen=True, slots=True)
class Window:
    """Intervals to post: `count` of `step` from `start`."""

    start: datetime
    step: timedelta
    count: int

    @property
    def end(self) -> datetime:
        """Return when the last interval ends."""
        return self.start + self.count * self.step


def due(last: datetime | None, now: datetime, step: timedelta) -> Window | None:
    """Return the intervals that ended since `last` (None: nothing ended yet).

    The first time (nothing posted yet), only the interval that ended last.
    """
    end = floor_to(now - SETTLE, step)
    start = end - step if last is None else max(last, floor_to(now - CATCH_UP, step))
    if start >= end:
        return None
    return Window(start=start, step=step, count=(end - start) // step)


class Forwarder:
    """Send one Home Assistant sensor's completed intervals to a FlexMeasures sensor."""

    def __init__(
        self,
        hass: HomeAssistant,
        provider: FlexMeasuresProvider,
        subentry: ConfigSubentry,
        sent: dict[str, str],
        save: Callable[[], None],
    ) -> None:
        """Bind the pair; `sent` holds the end of what was posted, by subentry."""
        self.hass = hass
        self.provider = provider
        self.subentry_id = subentry.subentry_id
        self.entity_id = str(subentry.data[CONF_ENTITY_ID])
        self.sensor_id = str(subentry.data[CONF_SENSOR_ID])
        self._sent = sent
        self._save = save
        self._running = False
        self._refused: set[str] = set()
        self._failing = False

    @property
    def last(self) -> datetime | None:
        """Return the end of the last interval posted (or refused)."""
        raw = self._sent.get(self.subentry_id)
        return dt_util.parse_datetime(raw) if raw else None

    def _done(self, end: datetime) -> None:
        self._sent[self.subentry_id] = end.isoformat()
        self._save()

    async def async_run(self, now: datetime | None = None) -> None:
        """Post what ended since the last run (one run at a time)."""
        if self._running:
            return
        self._running = True
        try:
            await self._async_run(now or dt_util.utcnow())
        finally:
            self._running = False

    async def _async_run(self, now: datetime) -> None:
        try:
            sensor = await self.provider.async_sensor(self.sensor_id)
        except ProviderError as err:
            self._note_failure(err)
            return
        window = due(self.last, now, sensor.resolution or FALLBACK_STEP)
        if window is None:
            return
        values, unit = await self._values(sensor, window)
        try:
            if any(value is not None for value in values):
                await self.provider.async_post(
                    self.sensor_id, window.start, window.step, values, unit
                )
        except RequestRejected as err:
            if err.detail not in self._refused:
                self._refused.add(err.detail)
                _LOGGER.warning(
                    "FlexMeasures refused %s for sensor %s (%s → %s): %s",
                    self.entity_id,
                    self.sensor_id,
                    window.start.isoformat(),
                    window.end.isoformat(),
                    err.detail,
                )
        except ProviderError as err:
            self._note_failure(err)
            return  # tried again at the next check: nothing is skipped
        self._failing = False
        self._done(window.end)

    def _note_failure(self, err: ProviderError) -> None:
        if not self._failing:
            self._failing = True
            _LOGGER.info(
                "Sending %s to FlexMeasures waits: %s (the intervals are sent later)",
                self.entity_id,
                err,
            )

    async def _values(
        self, sensor: SensorInfo, window: Window
    ) -> tuple[list[float | None], str]:
        """Return the window's values in the sensor's unit, and that unit.

        A unit Home Assistant cannot convert goes as it is: the server converts it,
        or refuses it with its reason (logged once).
        """
        found = await get_instance(self.hass).async_add_executor_job(
            recorded, self.hass, self.entity_id, window.start, window.end
        )
        return converted(
            intervals(found, window.start, window.step, window.count),
            found.rule,
            found.unit,
            sensor.unit,
            window.step,
        )


async def async_start_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Start a forwarder per "measurement to send"; stop them with the entry."""
    subentries = [
        subentry
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_TYPE
    ]
    if not subentries:
        return
    typed: CloudEnergyConfigEntry = entry
    provider = typed.runtime_data.provider
    assert isinstance(provider, FlexMeasuresProvider)
    store = sent_store(hass, entry.entry_id)
    sent: dict[str, str] = dict(await store.async_load() or {})
    # Subentries removed since: forget them.
    for key in set(sent) - {subentry.subentry_id for subentry in subentries}:
        del sent[key]

    @callback
    def save() -> None:
        store.async_delay_save(lambda: dict(sent), 1)

    forwarders = [Forwarder(hass, provider, s, sent, save) for s in subentries]

    async def run_all(now: datetime | None = None) -> None:
        for forwarder in forwarders:
            await forwarder.async_run()

    @callback
    def check(now: datetime) -> None:
        entry.async_create_background_task(hass, run_all(), "flexmeasures_send")

    entry.async_on_unload(
        async_track_utc_time_change(hass, check, second=int(SETTLE.total_seconds()))
    )

    async def flush() -> None:
        await store.async_save(dict(sent))

    entry.async_on_unload(flush)
    entry.async_create_background_task(hass, run_all(), "flexmeasures_send_first")


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Forget what the entry's forwarders sent."""
    await sent_store(hass, entry.entry_id).async_remove()
