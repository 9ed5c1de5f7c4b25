"""Devices and sensors of a Climkit account, from the simulator."""

from datetime import UTC, datetime, timedelta

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.cloud_energy_meters.const import DOMAIN
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import SetupEntry
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_LAC, SITES

NOW = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)


@pytest.mark.freeze_time(NOW)
@pytest.mark.usefixtures("entity_registry_enabled_by_default", "only_platform")
async def test_entities_snapshot(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity's registry entry and state, as a newcomer would see them."""
    assert await setup_entry(climkit_entry)
    await snapshot_platform(hass, entity_registry, snapshot, climkit_entry.entry_id)


@pytest.mark.freeze_time(NOW)
async def test_a_device_per_site_and_per_meter(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Each site is a device, identified by its Climkit id, with a portal link.

    Each of its meters is a device linked to it (tests/climkit/test_meter_devices.py).
    """
    assert await setup_entry(climkit_entry)
    devices = dr.async_entries_for_config_entry(device_registry, climkit_entry.entry_id)
    assert len(devices) == len(SITES) + sum(len(site.meters) for site in SITES)
    for site in SITES:
        device = device_registry.async_get_device_by_identifier(
            (DOMAIN, site.id), climkit_entry.entry_id
        )
        assert device is not None
        assert device.name == site.name
        assert device.manufacturer == "Climkit"
        assert device.serial_number == site.site_ref
        assert device.configuration_url == "https://app.climkit.io"


@pytest.mark.freeze_time(NOW)
async def test_every_meter_and_sensor_has_an_enabled_entity(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The contract: an enabled entity per meter and sensor; nothing unavailable."""
    assert await setup_entry(climkit_entry)
    entries = er.async_entries_for_config_entry(entity_registry, climkit_entry.entry_id)
    enabled = [entry for entry in entries if not entry.disabled_by]
    for site in SITES:
        for thing in (*site.meters, *site.sensors):
            assert any(thing.id in entry.unique_id for entry in enabled), thing.name
    for entry in enabled:
        state = hass.states.get(entry.entity_id)
        assert state is not None
        assert state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN), entry.entity_id


@pytest.mark.freeze_time(NOW)
async def test_values_equal_the_cloud(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Registers, last intervals and sensors show the simulator's values."""
    assert await setup_entry(climkit_entry)
    cloud = simulator.climkit

    def state_of(unique_id: str) -> str:
        entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, unique_id)
        assert entity_id, unique_id
        state = hass.states.get(entity_id)
        assert state is not None
        return state.state

    meter = SITE_LAC.meters[1]
    register = cloud.truth_register(SITE_LAC.id, meter.id, "en_im", NOW)
    assert float(state_of(f"climkit:{SITE_LAC.id}:{meter.id}:en_im")) == register
    last_start, values = cloud.truth_meter_intervals(
        SITE_LAC.id, meter.id, NOW - timedelta(hours=1), NOW
    )[-1]
    assert float(state_of(f"climkit:{SITE_LAC.id}:{meter.id}:total")) == values["total"]
    sensor = SITE_CENTRALE.sensors[0]
    _, value = cloud.truth_sensor_latest(SITE_CENTRALE.id, sensor.id, NOW)
    assert float(state_of(f"climkit:{SITE_CENTRALE.id}:sensor:{sensor.id}")) == value
    entity_id = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"climkit:{SITE_LAC.id}:{meter.id}:total"
    )
    assert entity_id
    state = hass.states.get(entity_id)
    assert state
    assert state.attributes["interval_start"] == last_start.isoformat()


@pytest.mark.freeze_time(NOW)
async def test_rarely_wanted_entities_are_disabled_by_default(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Solar/grid shares of a meter, the site address and time zone exist, disabled."""
    assert await setup_entry(climkit_entry)
    entries = er.async_entries_for_config_entry(entity_registry, climkit_entry.entry_id)
    disabled = {
        entry.translation_key
        for entry in entries
        if entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == {"interval_self", "interval_ext", "address", "timezone"}
    assert all(
        entry.disabled_by is None
        for entry in entries
        if entry.translation_key not in disabled
    )
