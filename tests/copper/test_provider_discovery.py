"""Copper Labs discovery: premises become sites, meters and gateways devices."""

from custom_components.cloud_energy_meters.providers.copper import CopperProvider
from custom_components.cloud_energy_meters.providers.model import Kind, Quantity, Unit
from tests.simulator import Simulator
from tests.simulator.copper import (
    CABIN_PREMISE_ID,
    CABIN_SOLAR_ID,
    ENTERPRISE_ID,
    HOME_ELECTRIC_ID,
    HOME_GAS_ID,
    HOME_PREMISE_ID,
    HOME_WATER_ID,
)


async def test_app_premises_meters_and_channels(app: CopperProvider) -> None:
    """Each premise with address and zone; per meter a register, a rate, an hour."""
    inventory = await app.async_discover([HOME_PREMISE_ID])
    assert inventory.listed == (HOME_PREMISE_ID, CABIN_PREMISE_ID)
    (home,) = inventory.sites
    assert home.name == "Home"
    assert home.timezone == "America/Denver"
    assert home.address == "9120 Rio Blanco St, Littleton, CO 80125"
    assert [d.serial_number for d in inventory.devices] == [
        HOME_ELECTRIC_ID,
        HOME_GAS_ID,
        HOME_WATER_ID,
    ]
    by_key = {c.key: c for c in inventory.channels}
    assert len(by_key) == 9
    gas = f"{HOME_PREMISE_ID}:{HOME_GAS_ID}"
    assert (by_key[f"{gas}:register"].kind, by_key[f"{gas}:register"].unit) == (
        Kind.REGISTER,
        Unit.CUBIC_METER,
    )
    rate = by_key[f"{gas}:rate"]
    assert (rate.kind, rate.quantity, rate.unit) == (
        Kind.INSTANT,
        Quantity.VOLUME_FLOW_RATE,
        Unit.CUBIC_METER_PER_HOUR,
    )
    hour = by_key[f"{gas}:hour"]
    assert (hour.kind, hour.history, hour.statistic) == (
        Kind.INTERVAL,
        True,
        f"{HOME_PREMISE_ID}_{HOME_GAS_ID}_gas",
    )
    power = by_key[f"{HOME_PREMISE_ID}:{HOME_ELECTRIC_ID}:rate"]
    assert (power.quantity, power.unit) == (Quantity.POWER, Unit.KW)
    assert by_key[f"{HOME_PREMISE_ID}:{HOME_WATER_ID}:hour"].statistic == (
        f"{HOME_PREMISE_ID}_{HOME_WATER_ID}_water"
    )
    assert all(c.device_id for c in inventory.channels)


async def test_app_production_meter(app: CopperProvider) -> None:
    """A power_gen meter's channels count production."""
    inventory = await app.async_discover([CABIN_PREMISE_ID])
    solar = [c for c in inventory.channels if c.source_id == CABIN_SOLAR_ID]
    assert {c.role.value for c in solar} == {"production"}


async def test_enterprise_pages_by_offset_and_limit(
    enterprise: CopperProvider, simulator: Simulator
) -> None:
    """A server that serves fewer rows than asked is still read to the end."""
    simulator.copper.meter_page_cap = 50
    premises = simulator.copper.premises_of_enterprise(ENTERPRISE_ID)
    chosen = [p.id for p in premises]
    inventory = await enterprise.async_discover(chosen)
    assert [s.id for s in inventory.sites] == chosen
    meters = {d.serial_number for d in inventory.devices if d.kind != "gateway"}
    assert meters == {
        m.id for m in simulator.copper.meters_of_enterprise(ENTERPRISE_ID)
    }
    gateways = [d for d in inventory.devices if d.kind == "gateway"]
    assert len(gateways) == len(premises)
    grid = [c for c in inventory.channels if c.ref[0] == "grid"]
    assert len(grid) == 2 * len(premises)
    assert not any(c.common for c in grid)
    offsets = [
        r.query.get("offset")
        for r in simulator.log_for("copper")
        if r.path.endswith("/meter")
    ]
    assert offsets == ["0", "50", "100", "150", "200"]
    assert enterprise.refusals.total == 0


async def test_enterprise_one_premise(
    enterprise: CopperProvider, simulator: Simulator
) -> None:
    """Only the chosen premise's meters and gateway; every premise still listed."""
    first = simulator.copper.premises_of_enterprise(ENTERPRISE_ID)[0]
    inventory = await enterprise.async_discover([first.id])
    assert len(inventory.listed) == 60
    assert {d.site_id for d in inventory.devices} == {first.id}
    assert len(inventory.devices) == len(first.meters) + 1
