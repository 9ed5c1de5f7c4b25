"""Measurements sent to FlexMeasures: each completed interval once, across restarts.

Home Assistant runs on a frozen clock; the sensor's states are recorded as a user's
would be; what FlexMeasures stored (the simulator's `truth_posted`, or the real
server read back) is compared with the mean or growth worked out by hand.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from tests.conftest import SetupEntry
from tests.flexmeasures_real import FlexMeasuresServer
from tests.helpers import settle
from tests.simulator import Simulator
from tests.simulator.flexmeasures_data import HA_ENERGY, HA_POWER, TEMPERATURE

from .entries import flexmeasures_entry
from .sim_entries import flexmeasures_sim_entry
from .test_provider_real import raw_values

pytestmark = pytest.mark.usefixtures("recorder_mock")

NOW = datetime(2026, 11, 20, 10, 0, 40, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
POWER = "sensor.house_power"
METER = "sensor.house_meter"


def measurement(entity_id: str, sensor_id: int) -> ConfigSubentryData:
    """Return a "measurement to send" subentry."""
    return ConfigSubentryData(
        subentry_type="measurement",
        data={"entity_id": entity_id, "sensor_id": str(sensor_id)},
        title=f"{entity_id} → {sensor_id}",
        unique_id=str(sensor_id),
    )


def sim_entry(simulator: Simulator, *subentries: ConfigSubentryData) -> MockConfigEntry:
    """Return the simulator demo user's entry with these subentries."""
    return flexmeasures_sim_entry(
        simulator, options={"backfill_days": 1}, subentries=list(subentries)
    )


def power(hass: HomeAssistant, watts: float | str) -> None:
    """Record the house's power now (W)."""
    hass.states.async_set(
        POWER,
        str(watts),
        {
            "unit_of_measurement": "W",
            "device_class": "power",
            "state_class": "measurement",
        },
    )


def meter(hass: HomeAssistant, kwh: float) -> None:
    """Record the house's energy meter now (kWh, a register)."""
    hass.states.async_set(
        METER,
        str(kwh),
        {
            "unit_of_measurement": "kWh",
            "device_class": "energy",
            "state_class": "total_increasing",
        },
    )


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, span: timedelta
) -> None:
    """Move the clock, let timers fire and the sends finish."""
    # Nothing may be in flight when the clock jumps: it would time out.
    await settle(hass)
    await async_wait_recording_done(hass)
    end = datetime.now(UTC) + span
    while datetime.now(UTC) < end:
        freezer.tick(min(timedelta(minutes=1), end - datetime.now(UTC)))
        async_fire_time_changed(hass)
        await settle(hass)
    await async_wait_recording_done(hass)


def posts(simulator: Simulator, sensor_id: int) -> list[Any]:
    """Return the data POSTs the simulator got for a sensor."""
    return [
        r
        for r in simulator.log_for("flexmeasures")
        if r.method == "POST" and r.path.endswith(f"/sensors/{sensor_id}/data")
    ]


def kw_mean(pieces: list[tuple[float, float]]) -> float:
    """Return the time-weighted mean in kW of (watts, seconds) pieces."""
    return sum(w * s for w, s in pieces) / sum(s for _, s in pieces) / 1000


async def test_power_is_sent_each_quarter_once_across_a_restart(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Each quarter's mean power in kW, once; missed quarters follow a restart."""
    freezer.move_to(NOW)
    power(hass, 1000)
    entry = sim_entry(simulator, measurement(POWER, HA_POWER))
    assert await setup_entry(entry)
    await tick(hass, freezer, timedelta(minutes=4, seconds=20))  # 10:05:00
    power(hass, 2000)
    await tick(hass, freezer, timedelta(minutes=5))  # 10:10:00
    power(hass, "unavailable")
    await tick(hass, freezer, timedelta(minutes=5, seconds=40))  # 10:15:40
    stored = simulator.flexmeasures.truth_posted(HA_POWER)
    first = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    # 1 kW from 10:00:40, 2 kW from 10:05; unknown from 10:10: the known 560 s.
    assert stored == {first: pytest.approx(kw_mean([(1000, 260), (2000, 300)]))}
    assert len(posts(simulator, HA_POWER)) == 1

    # Home Assistant stops for 50 minutes; the sensor goes on being recorded.
    assert await hass.config_entries.async_unload(entry.entry_id)
    power(hass, 3000)
    await tick(hass, freezer, timedelta(minutes=30))  # 10:45:40
    power(hass, 1500)
    await tick(hass, freezer, timedelta(minutes=20))  # 11:05:40
    assert len(posts(simulator, HA_POWER)) == 1
    assert await hass.config_entries.async_setup(entry.entry_id)
    await tick(hass, freezer, timedelta(minutes=1))
    stored = simulator.flexmeasures.truth_posted(HA_POWER)
    assert stored == {
        first: pytest.approx(kw_mean([(1000, 260), (2000, 300)])),
        first + QUARTER: pytest.approx(kw_mean([(3000, 900 - 40)])),
        first + 2 * QUARTER: pytest.approx(3.0),
        first + 3 * QUARTER: pytest.approx(kw_mean([(3000, 40), (1500, 860)])),
    }
    # One POST for the three missed quarters: each quarter was sent once.
    assert len(posts(simulator, HA_POWER)) == 2
    await tick(hass, freezer, timedelta(minutes=15))
    assert len(posts(simulator, HA_POWER)) == 3
    assert first + 4 * QUARTER in simulator.flexmeasures.truth_posted(HA_POWER)


async def test_an_outage_delays_but_skips_nothing(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The server fails for a while: the hour is sent when it is back, none is lost."""
    freezer.move_to(NOW - timedelta(minutes=2))  # 09:58:40
    meter(hass, 100.0)
    entry = sim_entry(simulator, measurement(METER, HA_ENERGY))
    assert await setup_entry(entry)
    # The energy sensor is hourly: the meter's growth per hour, in kWh.
    await tick(hass, freezer, timedelta(minutes=31, seconds=20))  # 10:30
    meter(hass, 101.5)
    # The server fails everything for 40 minutes.
    simulator.faults.add("http_500", 10_000, cloud="flexmeasures")
    await tick(hass, freezer, timedelta(minutes=40, seconds=40))  # 11:11:00
    # Only the hour the meter appeared in (it counted nothing after 09:58:40).
    hour = datetime(2026, 11, 20, 10, tzinfo=UTC)
    before = {hour - timedelta(hours=1): 0.0}
    assert simulator.flexmeasures.truth_posted(HA_ENERGY) == before
    simulator.faults.clear()
    await tick(hass, freezer, timedelta(minutes=20))  # 11:31
    meter(hass, 102.0)
    await tick(hass, freezer, timedelta(minutes=30))  # 12:01
    assert simulator.flexmeasures.truth_posted(HA_ENERGY) == {
        **before,
        hour: pytest.approx(1.5),
        hour + timedelta(hours=1): pytest.approx(0.5),
    }


async def test_the_flow_checks_units(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A power cannot go to a temperature sensor; to a power sensor, it can."""
    power(hass, 1000)
    entry = sim_entry(simulator)
    assert await setup_entry(entry)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "measurement"), context={"source": "user"}
    )
    assert result["type"] is FlowResultType.FORM
    labels = [
        o["label"] for o in result["data_schema"].schema["sensor_id"].config["options"]
    ]
    assert "Demo house › power from Home Assistant" in labels
    # No FlexMeasures sensor chosen for the user: an empty value (the frontend
    # preselects the first option of a required choice that has none).
    (key,) = (k for k in result["data_schema"].schema if str(k) == "sensor_id")
    assert key.description == {"suggested_value": ""}
    with pytest.raises(InvalidData):  # and the choice is required
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"entity_id": POWER, "sensor_id": ""}
        )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": POWER, "sensor_id": str(TEMPERATURE)}
    )
    assert result["errors"] == {"base": "unit_mismatch"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": POWER, "sensor_id": str(HA_POWER)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    (subentry,) = entry.subentries.values()
    assert subentry.data == {"entity_id": POWER, "sensor_id": str(HA_POWER)}
    assert subentry.title == f"{POWER} → power from Home Assistant"

    # One Home Assistant sensor per FlexMeasures sensor; an entity that is gone.
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "measurement"), context={"source": "user"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": "sensor.gone", "sensor_id": str(HA_ENERGY)}
    )
    assert result["errors"] == {"entity_id": "entity_not_found"}
    # A FlexMeasures sensor taken: an error on its field; the flow goes on.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": POWER, "sensor_id": str(HA_POWER)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"sensor_id": "already_configured"}
    meter(hass, 12.5)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": METER, "sensor_id": str(HA_ENERGY)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)

    # A pair is changed in place: the other sensor of the pair, or another target.
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["step_id"] == "reconfigure"
    (key,) = (k for k in result["data_schema"].schema if str(k) == "sensor_id")
    assert key.description == {"suggested_value": str(HA_POWER)}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": POWER, "sensor_id": str(HA_ENERGY)}
    )
    assert result["errors"] == {"sensor_id": "already_configured"}  # the meter's
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": METER, "sensor_id": str(HA_POWER)}
    )
    assert result["reason"] == "reconfigure_successful"
    await settle(hass)
    changed = entry.subentries[subentry.subentry_id]
    assert changed.data == {"entity_id": METER, "sensor_id": str(HA_POWER)}
    assert changed.unique_id == str(HA_POWER)

    # An account that is not loaded cannot be asked what its sensors take.
    assert await hass.config_entries.async_unload(entry.entry_id)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "measurement"), context={"source": "user"}
    )
    assert result["reason"] == "entry_not_loaded"


@pytest.mark.usefixtures("loopback")
async def test_sent_to_the_real_server_once_across_a_restart(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    session: ClientSession,
    freezer: FrozenDateTimeFactory,
    flexmeasures_real: FlexMeasuresServer,
) -> None:
    """A real FlexMeasures stores each quarter's mean once (read back by hand)."""
    server = flexmeasures_real
    start = datetime(2026, 2, 2, 8, 0, 40, tzinfo=UTC)  # a day no other test posts
    freezer.move_to(start)
    target = server.sensor("Demo house", "power from Home Assistant")
    power(hass, 1000)
    entry = flexmeasures_entry(server, subentries=[measurement(POWER, target)])
    assert await setup_entry(entry)
    await tick(hass, freezer, timedelta(minutes=15))  # 08:15:40
    assert await hass.config_entries.async_unload(entry.entry_id)
    power(hass, 2000)
    await tick(hass, freezer, timedelta(minutes=30))  # 08:45:40
    assert await hass.config_entries.async_setup(entry.entry_id)
    await tick(hass, freezer, timedelta(minutes=1))
    first = start.replace(second=0)
    values = await raw_values(session, server, target, first, first + 3 * QUARTER, "kW")
    assert values == [
        pytest.approx(1.0),
        pytest.approx(kw_mean([(1000, 40), (2000, 860)])),
        pytest.approx(2.0),
    ]
