"""What every entity of every cloud has: a unique id free of secrets, a device class.

Each cloud's entry is set up against the simulator with every entity enabled
(disabled-by-default ones included), so the rules hold for all of them, not for a
sample.
"""

from datetime import UTC, datetime
import hashlib
import re

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.recorder.statistics import async_list_statistic_ids
from homeassistant.components.sensor import DEVICE_CLASS_UNITS
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import (
    SetupEntry,
    climkit_entry_for,
    energydata_entry_for,
    locus_entry_for,
)
from tests.copper.entries import copper_entry
from tests.flexmeasures.sim_entries import flexmeasures_sim_entry
from tests.simulator import Simulator

NOW = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
CLOUDS = ["climkit", "locus", "energydata", "copper", "flexmeasures"]
SECRETS = ("password", "client_secret", "api_token")
PRICE_PER_ENERGY = re.compile(r"[A-Z]{3}/(kWh|MWh)")
"""A price per energy (EUR/kWh): no device class takes it (core's nordpool shows
its prices the same way), and the Energy dashboard's price entity needs it."""
pytestmark = [
    pytest.mark.freeze_time(NOW, tick=True),
    pytest.mark.usefixtures("entity_registry_enabled_by_default"),
]


async def _set_up(
    simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> MockConfigEntry:
    entry = {
        "climkit": climkit_entry_for,
        "locus": locus_entry_for,
        "energydata": energydata_entry_for,
        "copper": copper_entry,  # the enterprise: its client secret
        "flexmeasures": flexmeasures_sim_entry,  # the demo user: the house
    }[cloud](simulator)
    assert await setup_entry(entry)
    return entry


def _entities(hass: HomeAssistant, entry: MockConfigEntry) -> list[er.RegistryEntry]:
    entries = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert entries
    return entries


@pytest.mark.parametrize("cloud", CLOUDS)
async def test_every_entity_has_a_unique_id_free_of_secrets(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """Every entity is in the registry; no id anywhere holds a secret or its hash.

    The ids checked are the entry's, its subentries', the entities', the devices'
    and the statistics' the entry wrote: a secret (or a hash of it, as Energydata.dk
    entries of version 1 had) in any of them changes when the secret does.
    """
    entry = await _set_up(simulator, setup_entry, cloud)
    registered = _entities(hass, entry)
    # Every state of the integration's platforms has its registry entry (a unique id).
    states = hass.states.async_all(["sensor", "binary_sensor"])
    assert {state.entity_id for state in states} == {e.entity_id for e in registered}
    assert all(e.unique_id for e in registered)

    await async_wait_recording_done(hass)
    statistic_ids = [
        row["statistic_id"] for row in await async_list_statistic_ids(hass)
    ]
    assert statistic_ids
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    ids = [
        str(entry.unique_id),
        *(str(subentry.unique_id) for subentry in entry.subentries.values()),
        *(e.unique_id for e in registered),
        *(identifier for device in devices for _, identifier in device.identifiers),
        *statistic_ids,
    ]
    secrets = [str(entry.data[key]) for key in SECRETS if entry.data.get(key)]
    assert secrets
    forbidden = [
        *secrets,
        *(secret[:8] for secret in secrets),
        *(hashlib.sha256(secret.encode()).hexdigest()[:8] for secret in secrets),
    ]
    assert [(part, i) for part in forbidden for i in ids if part in i] == []


@pytest.mark.parametrize("cloud", CLOUDS)
async def test_every_entity_is_named_after_its_device(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """Entities use has_entity_name, and their full name starts with their device's."""
    entry = await _set_up(simulator, setup_entry, cloud)
    devices = dr.async_get(hass)
    for registered in _entities(hass, entry):
        assert registered.has_entity_name, registered.entity_id
        device = devices.async_get(str(registered.device_id))
        assert device is not None, registered.entity_id
        state = hass.states.get(registered.entity_id)
        assert state is not None
        assert state.name.startswith(str(device.name)), registered.entity_id


@pytest.mark.parametrize("cloud", CLOUDS)
async def test_sensors_use_a_device_class_where_one_fits(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """A unit some device class accepts comes with such a class; text has none.

    Home Assistant's own table of device classes and their units decides: a sensor
    in kWh must be an energy (or energy storage) sensor, one in W a power sensor,
    and so on. A sensor without a device class has no unit and no number as state.
    Problem sensors are problem binary sensors.
    """
    entry = await _set_up(simulator, setup_entry, cloud)
    for registered in _entities(hass, entry):
        state = hass.states.get(registered.entity_id)
        assert state is not None
        device_class = state.attributes.get(ATTR_DEVICE_CLASS)
        if registered.domain == "binary_sensor":
            assert device_class == BinarySensorDeviceClass.PROBLEM
            continue
        if registered.unique_id.endswith(":history_import"):
            assert device_class is None  # a share of work done: no quantity
            continue
        unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
        fitting = {
            cls
            for cls, units in DEVICE_CLASS_UNITS.items()
            if unit is not None and unit in units
        }
        if fitting:
            assert device_class in fitting, (registered.entity_id, unit, device_class)
        if device_class in DEVICE_CLASS_UNITS:
            assert unit in DEVICE_CLASS_UNITS[device_class], registered.entity_id
        if device_class is None and unit and PRICE_PER_ENERGY.fullmatch(unit):
            float(state.state)  # a number, in a currency per kWh
            continue
        if device_class is None:
            assert unit is None, registered.entity_id
            with pytest.raises(ValueError):
                float(state.state)  # text (an address, say), not a number


DECIMALS = {"kWh": 3, "kW": 3, "W": 0, "L": 0, "m³": 3, "°C": 1, "%": 0, "Hz": 2}
"""Decimals some units show (sensor.PRECISIONS): what a reader checks them against."""


@pytest.mark.parametrize("cloud", CLOUDS)
async def test_every_number_shows_the_decimals_of_its_unit(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """Every numeric sensor suggests a display precision, never the raw 6 decimals.

    Home Assistant keeps it in the entity's registry options, where the frontend
    reads it; a price per kWh shows four decimals.
    """
    entry = await _set_up(simulator, setup_entry, cloud)
    numbers = 0
    for registered in _entities(hass, entry):
        state = hass.states.get(registered.entity_id)
        assert state is not None
        unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
        if (
            registered.domain != "sensor"
            or registered.original_device_class == "date"
            or (unit is None and registered.original_device_class is None)
        ):
            continue  # text, a date, a problem
        numbers += 1
        shown = registered.options.get("sensor", {}).get("suggested_display_precision")
        assert isinstance(shown, int), registered.entity_id
        if unit in DECIMALS and registered.entity_category is None:
            assert shown == DECIMALS[unit], (registered.entity_id, unit, shown)
        if unit and PRICE_PER_ENERGY.fullmatch(unit):
            assert shown == 4, registered.entity_id
    assert numbers


@pytest.mark.parametrize("cloud", CLOUDS)
async def test_entity_names_start_with_a_capital(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """After its device's name, an entity's own name starts with a capital.

    Names a cloud gives (FlexMeasures' "grid power") read as Home Assistant's own
    do ("Grid power"); the rest of the cloud's name is kept as it is.
    """
    entry = await _set_up(simulator, setup_entry, cloud)
    devices = dr.async_get(hass)
    for registered in _entities(hass, entry):
        device = devices.async_get(str(registered.device_id))
        state = hass.states.get(registered.entity_id)
        assert device is not None
        assert state is not None
        own = state.name.removeprefix(str(device.name)).strip()
        assert not own[:1].islower(), state.name
