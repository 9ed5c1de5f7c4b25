"""Climkit sites and channels against the simulator's three sites and their quirks.

Expectations are written from the API document, NOTES.md and the provider contract
(what each meter type and mode must offer), then compared with the simulator's sites.
"""

from collections import Counter
from dataclasses import replace

import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Inventory,
    Kind,
    Quantity,
    Role,
    Unit,
)
from tests.provider_factory import MakeProvider
from tests.simulator import Simulator
from tests.simulator.climkit import (
    SITE_CENTRALE,
    SITE_FERME,
    SITE_LAC,
    SITES,
    SimSensor,
    SimSite,
)

SITE_IDS = [site.id for site in SITES]
MODE_ROLES = {
    "consumption": Role.CONSUMPTION,
    "production": Role.PRODUCTION,
    "introduction": Role.GRID_IMPORT,
    "battery": Role.BATTERY_CHARGE,
}
EXPORT_ROLES = {
    "production": Role.PRODUCTION,
    "introduction": Role.GRID_EXPORT,
    "battery": Role.BATTERY_DISCHARGE,
}
WATER = ("cold_water", "hot_water")
SITE_FIELD_ROLES = {
    "conso_total": Role.CONSUMPTION,
    "from_ext": Role.GRID_IMPORT,
    "prod_total": Role.PRODUCTION,
    "self": Role.SELF_CONSUMPTION,
    "to_ext": Role.GRID_EXPORT,
    "storage_charging_total": Role.BATTERY_CHARGE,
    "storage_discharging_total": Role.BATTERY_DISCHARGE,
}


def address_of(site: SimSite) -> str:
    """Return the address a site must show: street number, postcode city."""
    return f"{site.street_name} {site.street_number}, {site.postal_code} {site.city}"


def by_key(inventory: Inventory) -> dict[str, Channel]:
    """Return the inventory's channels by key (asserting keys are unique)."""
    keys = [channel.key for channel in inventory.channels]
    assert len(keys) == len(set(keys)), [k for k, n in Counter(keys).items() if n > 1]
    return {channel.key: channel for channel in inventory.channels}


# --------------------------------------------------------------------------- sites


async def test_list_sites_objects(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Objects from /all_installations give ids, names and references in one request."""
    sites = await climkit.async_list_sites()
    assert [(s.id, s.name, s.reference) for s in sites] == [
        (site.id, site.name, site.site_ref) for site in SITES
    ]
    assert [r.path for r in simulator.log_for("climkit")] == [
        "/auth",
        "/all_installations",
    ]


async def test_list_sites_strings(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Plain id strings are named from /installation_infos, one request per site."""
    simulator.climkit.all_installations_shape = "strings"
    sites = await climkit.async_list_sites()
    assert [(s.id, s.name, s.reference, s.timezone, s.address) for s in sites] == [
        (site.id, site.name, site.site_ref, site.timezone, address_of(site))
        for site in SITES
    ]
    assert [r.path for r in simulator.log_for("climkit")] == [
        "/auth",
        "/all_installations",
        *(f"/installation_infos/{site.id}" for site in SITES),
    ]


async def test_account_with_one_site(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """An account limited to one site lists and discovers only that one."""
    simulator.climkit.add_user("carol", "carol-pw", site_ids=[SITE_CENTRALE.id])
    provider = make_provider("climkit", username="carol", password="carol-pw")
    sites = await provider.async_list_sites()
    assert [site.id for site in sites] == [SITE_CENTRALE.id]
    inventory = await provider.async_discover(SITE_IDS)
    assert [site.id for site in inventory.sites] == [SITE_CENTRALE.id]
    assert inventory.channels
    assert {channel.site_id for channel in inventory.channels} == {SITE_CENTRALE.id}
    assert inventory.account.id == "carol"
    # No request was sent for the sites the account cannot see.
    paths = [r.path for r in simulator.log_for("climkit")]
    assert not any(SITE_LAC.id in path or SITE_FERME.id in path for path in paths)
    assert all(r.status == 200 for r in simulator.log_for("climkit"))


async def test_account_without_sites(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """An account that sees no site lists none and discovers nothing."""
    simulator.climkit.add_user("nobody", "nobody-pw", site_ids=[])
    provider = make_provider("climkit", username="nobody", password="nobody-pw")
    assert await provider.async_list_sites() == ()
    inventory = await provider.async_discover(SITE_IDS)
    assert inventory.sites == ()
    assert inventory.channels == ()
    assert inventory.account.name == "nobody"


# --------------------------------------------------------------------------- discovery


@pytest.fixture
async def inventory(climkit: ClimkitProvider) -> Inventory:
    """Discover all three simulated sites."""
    return await climkit.async_discover(SITE_IDS)


async def test_discover_requests(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Discovery costs one listing plus three requests per site."""
    await climkit.async_discover(SITE_IDS)
    paths = [r.path for r in simulator.log_for("climkit") if r.path != "/auth"]
    assert paths[0] == "/all_installations"
    assert len(paths) == 1 + 3 * len(SITES)
    for site in SITES:
        assert f"/installation_infos/{site.id}" in paths
        assert f"/meter_info/{site.id}" in paths
        assert f"/{site.id}/sensors_list" in paths


async def test_discover_sites(inventory: Inventory) -> None:
    """Each site keeps its name, reference, time zone and address (city_name too)."""
    assert [site.id for site in inventory.sites] == SITE_IDS
    for sim_site in SITES:
        site = inventory.site(sim_site.id)
        assert site is not None
        assert site.name == sim_site.name
        assert site.reference == sim_site.site_ref
        assert site.timezone == sim_site.timezone
        assert site.address == address_of(sim_site)
        assert site.configuration_url is not None
        assert site.configuration_url.startswith("https://")
    assert inventory.site("no-such-site") is None
    centrale = inventory.site(SITE_CENTRALE.id)
    assert centrale is not None
    assert centrale.address == "Zentralstrasse 12a, 8001 Zürich"


@pytest.mark.parametrize("sim_site", SITES, ids=lambda site: site.site_ref)
async def test_meter_channels(inventory: Inventory, sim_site: SimSite) -> None:
    """Every meter has an interval total; registers exist only for physical meters.

    Consumption electricity meters add the solar/grid split; en_ex exists only where
    energy can leave the meter (production, introduction, battery); water is in m³
    with a `_volume` statistic; prim_ad becomes an int attribute even when a string.
    """
    channels = by_key(inventory)
    site = sim_site.id
    for meter in sim_site.meters:
        water = meter.type in WATER
        word = "volume" if water else "energy"
        mine = {
            key.removeprefix(f"{site}:{meter.id}:"): channel
            for key, channel in channels.items()
            if channel.source_id == meter.id
        }
        expected = {"total"}
        if meter.type == "electricity" and meter.mode == "consumption":
            expected |= {"self", "ext"}
        if not meter.is_rule_meter:
            if meter.type == "electricity":
                expected.add("en_im")
                if meter.mode in EXPORT_ROLES:
                    expected.add("en_ex")
            elif meter.type == "heating":
                expected.add("heat_energy_kwh")
            else:
                expected.add("vol_m3")
        assert set(mine) == expected, meter.name

        total = mine["total"]
        assert total.kind is Kind.INTERVAL
        assert total.history
        assert total.statistic == f"{site}_{meter.id}_{word}"
        assert total.quantity is (Quantity.WATER if water else Quantity.ENERGY)
        assert total.unit == (Unit.CUBIC_METER if water else Unit.KWH)
        # A heat meter's kWh are heat: never counted as the site's electricity.
        heat = meter.type in ("heating", "cooling")
        assert total.role is (Role.HEAT if heat else MODE_ROLES[meter.mode])
        assert total.site_id == site
        assert total.source == meter.name
        assert total.common
        assert total.attributes["bus_address"] == meter.prim_ad
        assert isinstance(total.attributes["bus_address"], int)
        assert total.attributes["rule_meter"] is meter.is_rule_meter
        assert total.attributes["meter_type"] == meter.type
        for field, role in (("self", Role.SELF_CONSUMPTION), ("ext", Role.GRID_IMPORT)):
            if field in mine:
                assert mine[field].role is role
                assert mine[field].kind is Kind.INTERVAL
                assert not mine[field].history
                assert mine[field].statistic is None
        for field in expected - {"total", "self", "ext"}:
            register = mine[field]
            assert register.kind is Kind.REGISTER
            assert not register.history
            assert register.statistic is None
            assert register.unit == total.unit
            assert register.role is (
                EXPORT_ROLES[meter.mode] if field == "en_ex" else total.role
            )


@pytest.mark.parametrize("sim_site", SITES, ids=lambda site: site.site_ref)
async def test_site_channels(inventory: Inventory, sim_site: SimSite) -> None:
    """Site totals per metering type: production fields with a producer, storage with a battery."""
    site = sim_site.id
    modes = {m.mode for m in sim_site.meters if m.type == "electricity"}
    expected: dict[str, set[str]] = {}
    for sim_type in {m.type for m in sim_site.meters}:
        if sim_type != "electricity":
            expected[sim_type] = {"conso_total"}
            continue
        fields = {"conso_total", "from_ext"}
        if "production" in modes:
            fields |= {"prod_total", "self", "to_ext"}
        if "battery" in modes:
            fields |= {"storage_charging_total", "storage_discharging_total"}
        expected[sim_type] = fields
    found: dict[str, set[str]] = {}
    for channel in inventory.channels:
        if channel.site_id != site or channel.source_id is not None:
            continue
        if channel.kind is not Kind.INTERVAL:
            continue
        _, _, meter_type, field = channel.key.split(":")
        found.setdefault(meter_type, set()).add(field)
        water = meter_type in WATER
        assert channel.role is SITE_FIELD_ROLES[field]
        assert channel.history
        assert channel.statistic == f"{site}_site_{meter_type}_{channel.role.value}"
        assert channel.unit == (Unit.CUBIC_METER if water else Unit.KWH)
        assert channel.quantity is (Quantity.WATER if water else Quantity.ENERGY)
    assert found == expected


async def test_site_3_has_no_battery_and_no_consumption_meter(
    inventory: Inventory,
) -> None:
    """Site 3 (a PV farm) has production totals but no storage channels."""
    site_keys = {
        channel.key.rsplit(":", 1)[1]
        for channel in inventory.channels
        if channel.site_id == SITE_FERME.id and ":site:" in channel.key
    }
    assert site_keys == {"conso_total", "from_ext", "prod_total", "self", "to_ext"}


async def test_sensor_channels(inventory: Inventory) -> None:
    """Sensors are instant measurements; their units map to quantities and units."""
    sensors = {
        channel.source_id: channel
        for channel in inventory.channels
        if channel.kind is Kind.INSTANT
    }
    expected = {
        SITE_LAC.sensors[0].id: (Quantity.TEMPERATURE, Unit.CELSIUS),
        SITE_LAC.sensors[1].id: (Quantity.HUMIDITY, Unit.PERCENT),
        SITE_LAC.sensors[2].id: (Quantity.CO2, Unit.PPM),
        SITE_CENTRALE.sensors[0].id: (Quantity.TEMPERATURE, Unit.CELSIUS),  # degC
    }
    assert {key: (c.quantity, c.unit) for key, c in sensors.items()} == expected
    for sim_site in SITES:
        for sensor in sim_site.sensors:
            channel = sensors[sensor.id]
            assert channel.site_id == sim_site.id
            assert channel.name == sensor.name
            assert channel.attributes["model"] == sensor.model
            assert channel.attributes["sensor_type"] == sensor.type
            assert not channel.history
            assert channel.statistic is None


async def test_sensor_units_need_the_right_type(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """A unit "C" is °C; % and ppm are humidity and CO2 only when the type says so."""
    extra = replace(
        SITE_FERME,
        id="64f1c2a9e3b5d7f900a2b3ff",
        name="Chalet",
        timezone="America/New_York",
        meters=(),
        sensors=(
            SimSensor("s-c", "Cave", "temperature", "C", "T1"),
            SimSensor("s-bat", "Battery", "battery level", "%", "T1"),
            SimSensor("s-rh", "Bathroom", "relative humidity", "%RH", "T1"),
            SimSensor("s-voc", "VOC", "voc", "ppm", "T1"),
            SimSensor("s-co2", "Office", "CO2 level", "PPM", "T1"),
            SimSensor("s-pm", "Dust", "pm25", "µg/m³", "T1"),
            SimSensor("s-none", "Mystery", "", "", ""),
        ),
    )
    simulator.climkit.sites.append(extra)
    inventory = await climkit.async_discover([extra.id])
    site = inventory.site(extra.id)
    assert site is not None
    assert site.timezone == "America/New_York"
    found = {c.source_id: (c.quantity, c.unit) for c in inventory.channels}
    assert found == {
        "s-c": (Quantity.TEMPERATURE, Unit.CELSIUS),
        "s-bat": (Quantity.OTHER, Unit.PERCENT),
        "s-rh": (Quantity.HUMIDITY, Unit.PERCENT),
        "s-voc": (Quantity.OTHER, Unit.PPM),
        "s-co2": (Quantity.CO2, Unit.PPM),
        "s-pm": (Quantity.OTHER, "µg/m³"),
        "s-none": (Quantity.OTHER, ""),
    }


async def test_discover_skips_sites_the_account_lost(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Asking for a site the account no longer has returns the others, no error."""
    inventory = await climkit.async_discover([SITE_LAC.id, "64f1c2a9e3b5d7f900a2b3fe"])
    assert [site.id for site in inventory.sites] == [SITE_LAC.id]
    assert all(r.status == 200 for r in simulator.log_for("climkit"))
