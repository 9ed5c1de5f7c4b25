"""The recorder keeps what lasts, not what changes at every poll.

`measured_at` and `interval_start` change with every value, the alert attributes with
every alert (alerts also reach the recorder as events): recorded, each would store a
new attribute row with every state.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import DOMAIN
from homeassistant.components.recorder.history import get_significant_states
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
from tests.conftest import SetupEntry
from tests.simulator import Simulator
from tests.simulator.locus import MAPLE_PV_METER_ID

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)

POLL_ATTRIBUTES = {"measured_at", "interval_start"}
ALERT_ATTRIBUTES = {
    "alerts",
    "alert_type",
    "priority",
    "description",
    "details",
    "since",
}


async def recorded(hass: HomeAssistant, entity_ids: list[str]) -> list[State]:
    """Return every state the recorder stored for these entities, attributes included."""
    await async_wait_recording_done(hass)
    history: dict[str, list[Any]] = await get_instance(hass).async_add_executor_job(
        get_significant_states,
        hass,
        NOW - timedelta(days=1),
        None,
        entity_ids,
        None,
        True,
        False,  # every change, not only significant ones
    )
    return [state for states in history.values() for state in states]


async def test_poll_times_are_not_recorded(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Sensors show when their value was true; the recorder does not keep it."""
    assert await setup_entry(climkit_entry)
    freezer.tick(timedelta(minutes=15))
    await climkit_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    timed = [
        state.entity_id
        for state in hass.states.async_all("sensor")
        if set(state.attributes) >= POLL_ATTRIBUTES
    ]
    assert timed  # interval amounts show both
    states = await recorded(hass, timed)
    assert {state.entity_id for state in states} == set(timed)
    for state in states:
        live = hass.states.get(state.entity_id)
        assert live
        # What lasts (a meter's id, its type …) is recorded; the times are not.
        assert set(state.attributes) == set(live.attributes) - POLL_ATTRIBUTES
    assert any("meter_id" in state.attributes for state in states)


async def test_alerts_are_not_recorded(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A problem sensor shows its alerts; the recorder keeps only on and off."""
    assert await setup_entry(locus_entry)
    problem = entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, f"locus:component-{MAPLE_PV_METER_ID}:problem"
    )
    assert problem
    simulator.locus.open_alert(
        MAPLE_PV_METER_ID, "Device Fault", "High", short="VDC high", long="Long text"
    )
    await locus_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    state = hass.states.get(problem)
    assert state
    assert state.state == STATE_ON
    assert set(state.attributes) >= ALERT_ATTRIBUTES
    states = await recorded(hass, [problem])
    assert [state.state for state in states] == ["off", "on"]
    for state in states:
        assert not ALERT_ATTRIBUTES & set(state.attributes), state
        assert state.attributes["device_class"] == "problem"
