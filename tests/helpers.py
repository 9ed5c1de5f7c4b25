"""What Home Assistant tests share: flow steps, stored statistics, the simulator's truth."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import math
import threading
import time
from typing import Any
from unittest.mock import patch

from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    DOMAIN,
)
from custom_components.cloud_energy_meters.statistics import ImportedStatistics
from homeassistant.components.recorder import (
    Recorder,
    statistics as recorder_statistics,
)
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.components.recorder.tasks import ImportStatisticsTask, RecorderTask
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.recorder import get_instance
from homeassistant.util.hass_dict import HassKey

from .simulator import Simulator
from .simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SimSite

type Truth = Callable[[datetime, datetime], dict[datetime, float]]

CLOUDS = ["climkit", "copper", "energydata", "flexmeasures", "locus"]
"""The clouds the add-an-account menu offers, in its order."""


async def open_flow(hass: HomeAssistant, cloud: str) -> ConfigFlowResult:
    """Open the add-an-account flow, pick `cloud` in the menu; return its first form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == CLOUDS
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": cloud}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == cloud
    return result


def section_open(result: ConfigFlowResult, name: str = "advanced") -> bool:
    """Return whether a form shows its section `name` opened (not collapsed)."""
    assert result["data_schema"] is not None
    (value,) = (v for k, v in result["data_schema"].schema.items() if str(k) == name)
    return not value.options["collapsed"]


def climkit_credentials(
    url: str, username: str = DEMO_USERNAME, password: str = DEMO_PASSWORD
) -> dict[str, Any]:
    """Return what a user types in Climkit's form (the API URL in its section)."""
    return {
        CONF_USERNAME: username,
        CONF_PASSWORD: password,
        CONF_ADVANCED: {CONF_API_URL: url},
    }


SITE_FIELDS = {
    "conso_total": "consumption",
    "from_ext": "grid_import",
    "prod_total": "production",
    "self": "self_consumption",
    "to_ext": "grid_export",
    "storage_charging_total": "battery_charge",
    "storage_discharging_total": "battery_discharge",
}


def expected_series(sim: Simulator, site: SimSite) -> dict[str, Truth]:
    """Return every statistic id a site must have, with its ground truth.

    Written from the issue's contract, not from the integration's code: one statistic
    per meter (its meter_data totals) and one per site_data total of each metering type.
    """
    cloud = sim.climkit
    series: dict[str, Truth] = {}
    for meter in site.meters:
        word = "volume" if meter.type in ("cold_water", "hot_water") else "energy"
        series[f"{DOMAIN}:climkit_{site.id}_{meter.id}_{word}"] = (
            lambda start, end, m=meter.id: cloud.truth_meter_hourly(
                site.id, m, start, end
            )
        )
    modes = {m.mode for m in site.meters if m.type == "electricity"}
    for meter_type in dict.fromkeys(m.type for m in site.meters):
        for field, role in SITE_FIELDS.items():
            if meter_type != "electricity" and field != "conso_total":
                continue
            if field in ("prod_total", "self", "to_ext") and "production" not in modes:
                continue
            if field.startswith("storage") and "battery" not in modes:
                continue
            series[f"{DOMAIN}:climkit_{site.id}_site_{meter_type}_{role}"] = (
                lambda start, end, t=meter_type, f=field: cloud.truth_site_hourly(
                    site.id, t, f, start, end
                )
            )
    return series


_WHERE: HassKey[dict[str, str]] = HassKey("tests_statistic_where")


async def where(hass: HomeAssistant, statistic_id: str) -> str:
    """Return where a statistic named by its cloud ids (its key) is stored now.

    An entry stores each statistic under a readable id it pins to the key in its
    record; the answer is remembered, so it holds once the entry is removed.
    """
    memo = hass.data.setdefault(_WHERE, {})
    for entry in hass.config_entries.async_entries(DOMAIN):
        record = ImportedStatistics(hass, entry.entry_id)
        await record.async_load()
        if pinned := record.pinned.get(statistic_id):
            memo[statistic_id] = pinned
    return memo.get(statistic_id, statistic_id)


async def stored(
    hass: HomeAssistant, statistic_id: str
) -> dict[datetime, tuple[float, float]]:
    """Return hour -> (state, sum) of every row the recorder holds for a statistic.

    A statistic's key (the cloud's ids) stands for the id its entry pinned.
    """
    return await stored_at(hass, await where(hass, statistic_id))


async def stored_at(
    hass: HomeAssistant, statistic_id: str
) -> dict[datetime, tuple[float, float]]:
    """Return hour -> (state, sum) of every row stored under this very id."""
    await async_wait_recording_done(hass)
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2000, 1, 1, tzinfo=UTC),
        None,
        {statistic_id},
        "hour",
        None,
        {"state", "sum"},
    )
    return {
        datetime.fromtimestamp(row["start"], UTC): (row["state"], row["sum"])
        for row in rows.get(statistic_id, [])
    }


def assert_matches_truth(
    rows: dict[datetime, tuple[float, float]],
    truth: dict[datetime, float],
    statistic_id: str,
) -> None:
    """Assert stored hours equal the truth exactly and sums accumulate without a gap."""
    assert sorted(rows) == sorted(truth), f"{statistic_id}: hours differ"
    for hour, value in truth.items():
        assert rows[hour][0] == value, (
            f"{statistic_id} {hour}: {rows[hour][0]} != {value}"
        )
    hours = sorted(rows)
    for previous, hour in zip(hours, hours[1:], strict=False):
        assert math.isclose(
            rows[hour][1] - rows[previous][1], rows[hour][0], abs_tol=1e-6
        ), f"{statistic_id} {hour}: sum does not grow by the hour's value"
    if hours:
        first_state, first_sum = rows[hours[0]]
        assert math.isclose(first_sum, first_state, abs_tol=1e-9)
        assert math.isclose(rows[hours[-1]][1], math.fsum(truth.values()), abs_tol=1e-6)


def assert_matches_truth_until_now(
    rows: dict[datetime, tuple[float, float]],
    truth: dict[datetime, float],
    statistic_id: str,
) -> None:
    """Assert as assert_matches_truth, but the newest hour may still lack its end.

    On a ticking clock the reading that closes the newest hour may be published
    after the import ran (a busy machine makes that likely): that hour must then hold
    no more than the truth; every hour before it, exactly the truth.
    """
    newest = max(truth)
    assert sorted(rows) == sorted(truth), f"{statistic_id}: hours differ"
    assert rows[newest][0] <= truth[newest] + 1e-9, f"{statistic_id} {newest}"
    assert_matches_truth(
        {moment: row for moment, row in rows.items() if moment < newest},
        {moment: value for moment, value in truth.items() if moment < newest},
        statistic_id,
    )


def hour(moment: datetime) -> datetime:
    """Return the UTC hour of an instant."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


DAY = timedelta(days=1)


def energydata_truth(
    sim: Simulator, stream: int, meaning: str, start: datetime, end: datetime
) -> dict[datetime, float]:
    """Return the hourly truth of an Energydata.dk datastream, by the documented rules.

    Registers: the difference between consecutive readings belongs to the hour of the
    earlier one (a decrease is a reset: skipped); the first reading at or after
    `start` is the baseline. Amounts stamped at the end belong to the instant just
    before their stamp. Sums are exact decimal sums.
    """
    readings = [
        (datetime.fromtimestamp(ms / 1000, UTC), Decimal(repr(value)))
        for ms, value in sim.energydata.readings(stream, start, end)
        if not isinstance(value, str)
    ]
    hours: dict[datetime, Decimal] = {}
    if meaning == "register":
        for (first, before), (_, after) in zip(readings, readings[1:], strict=False):
            if after >= before and start <= first < end:
                moment = hour(first)
                hours[moment] = hours.get(moment, Decimal(0)) + (after - before)
    else:
        for moment, value in readings:
            stamp = moment - timedelta(milliseconds=1)
            if start <= stamp < end:
                hours[hour(stamp)] = hours.get(hour(stamp), Decimal(0)) + value
    return {moment: float(total) for moment, total in hours.items()}


@dataclasses.dataclass(slots=True)
class _Hold(RecorderTask):
    """Keep the recorder's thread busy until released: its queue waits meanwhile."""

    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    held: threading.Event = dataclasses.field(default_factory=threading.Event)

    def run(self, instance: Recorder) -> None:
        """Wait for the release (a test's, or a minute at most)."""
        self.held.set()
        self.release.wait(60)


@asynccontextmanager
async def recorder_queue_held(hass: HomeAssistant) -> AsyncIterator[None]:
    """Hold the recorder's queue, as during a real start before Home Assistant runs.

    The recorder works its queue only once Home Assistant has started; the test
    plugin's Home Assistant has, so this is how a test sees what setup does then.
    Reads (in the recorder's executor) still work; writes wait in the queue.
    """
    hold = _Hold()
    get_instance(hass).queue_task(hold)
    await hass.async_add_executor_job(hold.held.wait, 10)
    try:
        yield
    finally:
        hold.release.set()
        await async_wait_recording_done(hass)


@contextmanager
def busy_recorder(hass: HomeAssistant, seconds: float) -> Iterator[None]:
    """Make the recorder a slow disk that takes each import the moment it is queued.

    Every statistics import takes `seconds`, and queuing one returns only once the
    recorder's thread has taken it (as when the thread runs before the event
    loop goes on). Its queue is then empty while it still writes: what waits for
    rows must not take that emptiness for "written".
    """
    instance = get_instance(hass)
    real_import = recorder_statistics.import_statistics
    real_queue_task = instance.queue_task

    def slow_import(*args: Any, **kwargs: Any) -> bool:
        time.sleep(seconds)
        return real_import(*args, **kwargs)

    def queue_task(task: RecorderTask) -> None:
        real_queue_task(task)
        if not isinstance(task, ImportStatisticsTask):
            return
        deadline = time.monotonic() + 2
        while not instance._queue.empty() and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.001)

    with (
        patch.object(recorder_statistics, "import_statistics", slow_import),
        patch.object(instance, "queue_task", queue_task),
    ):
        yield


async def settle(hass: HomeAssistant) -> None:
    """Wait for pending work and background tasks, but not for push listeners.

    Like `async_block_till_done(wait_background_tasks=True)`, which would never
    return while an entry listens by MQTT: its listener is a background task that
    lasts as long as the entry.
    """
    current = asyncio.current_task()
    listeners = f"{DOMAIN} push "
    while True:
        await hass.async_block_till_done()
        pending = [
            task
            for task in hass._background_tasks  # noqa: SLF001
            if task is not current
            and not task.done()
            and not task.get_name().startswith(listeners)
        ]
        if not pending:
            return
        await asyncio.wait(pending)
