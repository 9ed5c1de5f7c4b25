"""Copper Labs in Home Assistant: devices, entities and their values, from the simulator.

Both kinds of account: the demo Copper app user (Home in America/Denver, Cabin in
America/New_York) and the demo enterprise with a few of its premises chosen.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.providers.copper import CCF_M3, GALLON_M3
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import SetupEntry
from tests.simulator import Simulator
from tests.simulator.copper import (
    DEMO_EMAIL,
    ENTERPRISE_ID,
    HOME_GAS_ID,
    HOME_PREMISE_ID,
    SimMeter,
    SimPremise,
)

from .entries import app_refresh_token, copper_entry

NOW = datetime(2026, 11, 20, 15, 7, tzinfo=UTC)
ENTERPRISE_SITES = 3
"""Premises chosen in the enterprise entry: Denver and New York, one with a 4th meter."""

FACTORS = {"electric": Decimal(1), "gas": CCF_M3, "water": GALLON_M3}
UNITS = {"electric": "kWh", "gas": "m³", "water": "m³"}
RATE_UNITS = {"electric": "kW", "gas": "m³/h", "water": "m³/h"}
CLASSES = {
    "electric": SensorDeviceClass.ENERGY,
    "gas": SensorDeviceClass.GAS,
    "water": SensorDeviceClass.WATER,
}
RATE_CLASSES = {
    "electric": SensorDeviceClass.POWER,
    "gas": SensorDeviceClass.VOLUME_FLOW_RATE,
    "water": SensorDeviceClass.VOLUME_FLOW_RATE,
}
NAMES = {
    "electric": ("Energy", "Power", "Energy (last interval)"),
    "gas": ("Volume", "Flow rate", "Volume (last interval)"),
    "water": ("Volume", "Flow rate", "Volume (last interval)"),
}
"""Each meter's register, rate and last hour, named on the meter's device (whose
name says gas or water: the entity's does not say it again)."""
MODELS = {
    "power_net": "Net electricity meter (import and export)",
    "power_gen": "Electricity generation meter",
    "power_sub": "Electricity submeter",
    "power": "Electricity meter",
    "electric": "Electricity meter",
    "gas": "Gas meter",
    "water": "Water meter",
    "water_indoor": "Indoor water meter",
    "water_outdoor": "Outdoor water meter",
}
"""What each Copper meter type is, in words, as its device's model."""


def converted(value: float, kind: str) -> float:
    """Convert kWh, CCF or US gallons to kWh or m³ with the exact factors."""
    return float(Decimal(repr(value)) * FACTORS[kind])


def shown(value: float) -> str:
    """Return a float state as Home Assistant writes it (15 significant digits)."""
    return f"{value:.15}"


async def set_up(
    kind: str,
    session: ClientSession,
    simulator: Simulator,
    setup_entry: SetupEntry,
    sites: int = ENTERPRISE_SITES,
) -> tuple[MockConfigEntry, list[SimPremise]]:
    """Set up the app user's or the enterprise's entry; return it and its premises.

    The enterprise entry chooses the first `sites` premises.
    """
    cloud = simulator.copper
    if kind == "app":
        entry = copper_entry(
            simulator, refresh_token=await app_refresh_token(session, simulator)
        )
        premises = cloud.premises_of_user(DEMO_EMAIL)
    else:
        premises = cloud.premises_of_enterprise(ENTERPRISE_ID)[:sites]
        entry = copper_entry(simulator, sites=[p.id for p in premises])
    assert await setup_entry(entry)
    # Values some channels get from a history import appear with it at the latest.
    await entry.runtime_data.async_import_statistics()
    await entry.runtime_data.async_refresh()
    return entry, premises


def entity_of(
    entity_registry: er.EntityRegistry, premise: SimPremise, meter: SimMeter, what: str
) -> er.RegistryEntry:
    """Return the registry entry of a meter's `register`, `rate` or `hour` sensor."""
    entity_id = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"copper:{premise.id}:{meter.id}:{what}"
    )
    assert entity_id, (meter.id, what)
    found = entity_registry.async_get(entity_id)
    assert found is not None
    return found


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("kind", ["app", "enterprise"])
async def test_a_device_per_premise_and_per_meter_below_it(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    kind: str,
) -> None:
    """Premise devices with address and time zone; meters (and gateways) below them."""
    entry, premises = await set_up(kind, session, simulator, setup_entry)
    zones = {premise.timezone for premise in premises}
    assert zones == {"America/Denver", "America/New_York"}

    def device(identifier: str) -> dr.DeviceEntry:
        found = device_registry.async_get_device_by_identifier(
            (DOMAIN, identifier), entry.entry_id
        )
        assert isinstance(found, dr.DeviceEntry), identifier
        return found

    def text_of(premise: SimPremise, what: str) -> er.RegistryEntry:
        entity_id = entity_registry.async_get_entity_id(
            "sensor", DOMAIN, f"copper:{premise.id}:{what}"
        )
        assert entity_id, (premise.id, what)
        found = entity_registry.async_get(entity_id)
        assert found is not None
        return found

    expected_devices = 0
    for premise in premises:
        site = device(premise.id)
        assert site.name == premise.name
        assert site.manufacturer == "Copper Labs"
        assert site.via_device_id is None
        expected_devices += 1
        # Address and time zone: diagnostic text sensors of the premise, disabled.
        for what in ("address", "timezone"):
            text = text_of(premise, what)
            assert text.device_id == site.id
            assert text.entity_category is EntityCategory.DIAGNOSTIC
            assert text.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        for meter in premise.meters:
            found = device(f"meter_{meter.id}")
            assert found.via_device_id == site.id
            assert (
                found.name
                == f"{premise.name} {meter.kind.capitalize()} meter {meter.id}"
            )
            assert found.serial_number == meter.id
            assert found.model == MODELS[meter.type]
            expected_devices += 1
        gateway = device_registry.async_get_device_by_identifier(
            (DOMAIN, f"gateway_{premise.gateway_id}"), entry.entry_id
        )
        if kind == "app":
            assert gateway is None  # the consumer API lists no gateway
            continue
        assert isinstance(gateway, dr.DeviceEntry)
        assert gateway.via_device_id == site.id
        assert gateway.serial_number == premise.gateway_id
        expected_devices += 1
        grid = er.async_entries_for_device(
            entity_registry, gateway.id, include_disabled_entities=True
        )
        assert {e.original_device_class for e in grid} == {
            SensorDeviceClass.VOLTAGE,
            SensorDeviceClass.FREQUENCY,
        }
        for registered in grid:
            assert registered.entity_category is EntityCategory.DIAGNOSTIC
            assert registered.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert len(devices) == expected_devices
    # The premises' text sensors, once enabled, show what Copper says.
    home = premises[0]
    for what in ("address", "timezone"):
        registered = text_of(home, what)
        entity_registry.async_update_entity(registered.entity_id, disabled_by=None)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    for what, value in (
        ("address", f"{home.street_address}, {home.city_town}"),
        ("timezone", home.timezone),
    ):
        state = hass.states.get(text_of(home, what).entity_id)
        assert state is not None
        assert state.state.startswith(value), (what, state.state)


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("kind", ["app", "enterprise"])
async def test_each_meter_has_register_rate_and_last_hour(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    kind: str,
) -> None:
    """Registers in kWh or m³ (total_increasing), rates in kW or m³/h, last hours."""
    _, premises = await set_up(kind, session, simulator, setup_entry)
    for premise in premises:
        for meter in premise.meters:
            names = NAMES[meter.kind]
            for what, name, device_class, unit, state_class in (
                (
                    "register",
                    names[0],
                    CLASSES[meter.kind],
                    UNITS[meter.kind],
                    SensorStateClass.TOTAL_INCREASING,
                ),
                (
                    "rate",
                    names[1],
                    RATE_CLASSES[meter.kind],
                    RATE_UNITS[meter.kind],
                    SensorStateClass.MEASUREMENT,
                ),
                ("hour", names[2], CLASSES[meter.kind], UNITS[meter.kind], None),
            ):
                registered = entity_of(entity_registry, premise, meter, what)
                assert registered.disabled_by is None, registered.entity_id
                assert registered.entity_category is None
                assert registered.original_device_class == device_class
                assert registered.unit_of_measurement == unit
                state = hass.states.get(registered.entity_id)
                assert state is not None
                assert state.attributes.get("state_class") == state_class
                assert state.attributes["unit_of_measurement"] == unit
                # Named on the meter's device: the meter is not named again.
                assert state.name == (
                    f"{premise.name} {meter.kind.capitalize()} meter {meter.id} {name}"
                )
                assert meter.kind not in name.casefold().split(), state.name
                assert state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN), (
                    registered.entity_id
                )


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("kind", ["app", "enterprise"])
async def test_values_are_the_truth_in_exact_units(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    kind: str,
) -> None:
    """Register, rate and last hour equal the simulator's, converted exactly.

    CCF x 2.8316846592 and US gal x 0.003785411784, in decimal: the state is the
    float of the exact product, to the last digit.
    """
    _, premises = await set_up(kind, session, simulator, setup_entry)
    cloud = simulator.copper
    checked = 0
    for premise in premises:
        for meter in premise.meters:
            register = hass.states.get(
                entity_of(entity_registry, premise, meter, "register").entity_id
            )
            assert register is not None
            at = datetime.fromisoformat(register.attributes["measured_at"])
            assert NOW - timedelta(hours=2) <= at <= NOW
            assert register.state == shown(
                converted(cloud.truth_register(meter.id, at), meter.kind)
            )
            hour = hass.states.get(
                entity_of(entity_registry, premise, meter, "hour").entity_id
            )
            assert hour is not None
            start = datetime.fromisoformat(hour.attributes["interval_start"])
            end = datetime.fromisoformat(hour.attributes["measured_at"])
            assert end - start == timedelta(hours=1)
            assert hour.state == shown(
                converted(cloud.truth_usage(meter.id, start, end), meter.kind)
            )
            rate = hass.states.get(
                entity_of(entity_registry, premise, meter, "rate").entity_id
            )
            assert rate is not None
            if kind == "app":  # the rate of the last 15-minute slot, per hour
                updated, per_hour = cloud.truth_instant(meter.id)
                assert rate.attributes["measured_at"] == updated.isoformat()
                assert rate.state == shown(converted(per_hour, meter.kind))
            else:  # the last hour's usage per hour
                assert rate.state == hour.state
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("kind", ["app", "enterprise"])
async def test_a_register_jump_never_reaches_a_state(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    kind: str,
) -> None:
    """Registers served x100 for a while: the state never shows one, nor goes back.

    The gas meter's register stays what it was (or unknown) while Copper serves it
    x100; the other meters and the gas meter's last hour go on; afterwards the
    state is the true register again.
    """
    freezer.move_to(NOW)
    # Answers kept by their max-age would outlive the frozen clock's hours (the
    # cache counts real seconds): the cloud here says nothing of freshness.
    simulator.copper.cache_max_age = None
    entry, premises = await set_up(kind, session, simulator, setup_entry, sites=1)
    premise = next(p for p in premises if any(m.kind == "gas" for m in p.meters))
    gas = next(m for m in premise.meters if m.kind == "gas")
    if kind == "app":
        assert gas.id == HOME_GAS_ID and premise.id == HOME_PREMISE_ID
    register = entity_of(entity_registry, premise, gas, "register").entity_id
    last_hour = entity_of(entity_registry, premise, gas, "hour").entity_id
    coordinator = entry.runtime_data
    seen: list[float] = []

    def read() -> None:
        state = hass.states.get(register)
        assert state is not None
        if state.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE):
            at = datetime.fromisoformat(state.attributes["measured_at"])
            truth = converted(simulator.copper.truth_register(gas.id, at), "gas")
            assert state.state == shown(truth), (at, state.state, truth)
            seen.append(truth)

    read()
    assert seen
    # x100 from before the register shown (served so from now on) for three hours.
    jump_end = NOW + timedelta(hours=3)
    simulator.copper.register_jump(gas.id, NOW - timedelta(minutes=30), jump_end)
    moment = NOW
    for _ in range(5):  # hourly: within the budget whatever else runs
        moment += timedelta(hours=1)
        freezer.move_to(moment)
        await coordinator.async_refresh()
        # The usage values (register, last hour) come with the history read.
        await coordinator.async_import_statistics()
        await hass.async_block_till_done()
        assert coordinator.last_update_success
        read()
        hour = hass.states.get(last_hour)
        assert hour is not None
        assert hour.attributes["measured_at"] == moment.replace(minute=0).isoformat()
    await coordinator.async_import_statistics()
    await coordinator.async_refresh()
    read()
    assert seen == sorted(seen), "a total_increasing state went back"
    # Past the jump the register is read again, and it is the true one.
    last = hass.states.get(register)
    assert last is not None
    assert datetime.fromisoformat(last.attributes["measured_at"]) >= jump_end
    other = next(m for m in premise.meters if m.kind == "electric")
    assert hass.states.get(
        entity_of(entity_registry, premise, other, "register").entity_id
    ).state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)


@pytest.mark.freeze_time(NOW)
@pytest.mark.usefixtures("entity_registry_enabled_by_default", "only_platform")
@pytest.mark.parametrize("kind", ["app", "enterprise"])
async def test_entities_snapshot(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    kind: str,
) -> None:
    """Every entity's registry entry and state, as a newcomer would see them."""
    entry, _ = await set_up(kind, session, simulator, setup_entry)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
