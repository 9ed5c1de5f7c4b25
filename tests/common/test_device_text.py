"""Sites and devices hold text, whatever JSON type the cloud wrote.

Their fields become device registry fields, which take strings only from Home
Assistant 2026.12. The simulator's `numbers_for_text` knob writes names, makers,
models and serial numbers as JSON numbers.
"""

from dataclasses import fields
from typing import Any

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from custom_components.cloud_energy_meters.providers.model import (
    Device,
    Inventory,
    Site,
    text,
)
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_LAC, SITES
from tests.simulator.faults import as_number
from tests.simulator.locus import (
    HARBOR_SITE_ID,
    MAPLE_INVERTER_ID,
    MAPLE_PV_METER_ID,
    MAPLE_SITE_ID,
)


def assert_text(item: Site | Device) -> None:
    """Assert every field but `alerts` is a string or None."""
    for field in fields(item):
        value = getattr(item, field.name)
        if field.name != "alerts":
            assert value is None or type(value) is str, (field.name, value)


def test_text() -> None:
    """Scalars become text; absent, empty, booleans and containers become None."""
    assert text("LG120-0042187") == "LG120-0042187"
    assert text(1200042187) == "1200042187"
    assert text(7.0) == "7"  # a whole number written as a float
    assert text(7.5) == "7.5"
    assert text("  SE7600H ") == "SE7600H"
    for nothing in (None, "", "  ", True, False, [], {"model": "x"}):
        assert text(nothing) is None


async def test_locus_numbers_become_text(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """Locus components with numeric names, makers, models, serials and kinds."""
    simulator.locus.numbers_for_text = True
    inventory = await locus.async_discover([str(MAPLE_SITE_ID), str(HARBOR_SITE_ID)])
    assert inventory.devices
    for item in (*inventory.sites, *inventory.devices):
        assert_text(item)
    devices = {device.id: device for device in inventory.devices}
    meter = devices[f"component-{MAPLE_PV_METER_ID}"]
    assert meter.serial_number == str(as_number("LG120-0042187")) == "1200042187"
    assert meter.model == "120"  # "LGate 120"
    assert meter.manufacturer == str(as_number("Locus Energy"))
    assert meter.name == str(as_number("PV Meter"))
    assert meter.kind == str(as_number("METER"))
    inverter = devices[f"component-{MAPLE_INVERTER_ID}"]
    assert inverter.model == "7600"  # "SE7600H-US"
    assert inverter.serial_number == "7183211"  # "7E183A2C-11"


async def test_climkit_numbers_become_text(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Climkit sites with numeric names and references, listed and discovered."""
    simulator.climkit.numbers_for_text = True
    listed = await climkit.async_list_sites()
    inventory = await climkit.async_discover([site.id for site in SITES])
    for site in (*listed, *inventory.sites):
        assert_text(site)
    lac = inventory.site(SITE_LAC.id)
    assert lac is not None
    assert lac.reference == "100701"  # "LAC-1007-01"
    assert lac.name == str(as_number(SITE_LAC.name))


def test_saved_inventory_becomes_text() -> None:
    """An inventory saved by an earlier version, numbers and all, is read as text."""
    saved: dict[str, Any] = {
        "account": {"id": "a", "name": "a"},
        "sites": [{"id": 3393701, "name": 42, "reference": 419010, "model": 3.0}],
        "channels": [],
        "listed": ["3393701"],
        "devices": [
            {
                "id": "component-1",
                "site_id": 3393701,
                "name": 7,
                "manufacturer": 12,
                "model": 360,
                "serial_number": 1200042187,
                "kind": "",
            }
        ],
    }
    inventory = Inventory.from_dict(saved)
    site, device = inventory.sites[0], inventory.devices[0]
    assert_text(site)
    assert_text(device)
    assert (site.id, site.name, site.reference, site.model) == (
        "3393701",
        "42",
        "419010",
        "3",
    )
    assert (device.site_id, device.name, device.serial_number, device.kind) == (
        "3393701",
        "7",
        "1200042187",
        None,
    )
    assert inventory.site("3393701") is site
