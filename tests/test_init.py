"""Setting up, unloading and removing an entry against the simulator."""

from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .conftest import SetupEntry
from .simulator import Simulator


async def test_setup_and_unload(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """An entry sets up against the simulator and unloads cleanly."""
    assert await setup_entry(climkit_entry)
    assert climkit_entry.state is ConfigEntryState.LOADED
    states = hass.states.async_all("sensor")
    assert states
    assert all(state.state != "unavailable" for state in states)
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    assert climkit_entry.state is ConfigEntryState.NOT_LOADED
