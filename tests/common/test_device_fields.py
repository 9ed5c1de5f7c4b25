"""Devices are registered with text fields only, whatever JSON type the cloud sent.

Home Assistant 2026.10 converts other types and reports the integration; 2026.12
refuses them. The simulator's `numbers_for_text` knob writes names, makers, models
and serial numbers as JSON numbers.
"""

from datetime import UTC, datetime

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from tests.conftest import (
    SetupEntry,
    climkit_entry_for,
    energydata_entry_for,
    locus_entry_for,
)
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_LAC

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)

FIELDS = (
    "name",
    "manufacturer",
    "model",
    "model_id",
    "serial_number",
    "hw_version",
    "sw_version",
    "configuration_url",
)


def _entry(simulator: Simulator, cloud: str) -> tuple[MockConfigEntry, str | None]:
    """Return an entry of the cloud, its numbers on, and a serial number it must show."""
    if cloud == "climkit":
        simulator.climkit.numbers_for_text = True
        return climkit_entry_for(simulator, sites=[SITE_LAC.id]), "100701"
    if cloud == "locus":
        simulator.locus.numbers_for_text = True
        return locus_entry_for(simulator), "1200042187"  # "LG120-0042187"
    # Energydata.dk devices are the user's datastreams: nothing comes from JSON.
    return energydata_entry_for(simulator), None


@pytest.mark.parametrize("cloud", ["climkit", "locus", "energydata"])
async def test_device_fields_are_text(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
    cloud: str,
) -> None:
    """No field of a device reaches the registry as anything but a string."""
    entry, serial = _entry(simulator, cloud)
    assert await setup_entry(entry)
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert devices
    for device in devices:
        for field in FIELDS:
            value = getattr(device, field)
            assert value is None or type(value) is str, (device.name, field, value)
    if serial is not None:
        assert serial in {device.serial_number for device in devices}
    # What Home Assistant 2026.10 says before it converts a number itself.
    assert "non-string value" not in caplog.text
