"""The Energy dashboard offer: a repair issue whose fix flow fills the dashboard.

Driven as the frontend does (Settings → Repairs, the issue, Submit): an entry of the
simulator is set up, its history imported, and the fix flow run over Home
Assistant's HTTP API. The expected preferences are written from the simulator's
sites and the issue's contract, not from the integration's code.
"""

from collections.abc import Callable
from http import HTTPStatus
import json
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.cloud_energy_meters.const import CONF_SITES, DOMAIN
from custom_components.cloud_energy_meters.coordinator import LAYOUT, inventory_store
from custom_components.cloud_energy_meters.energy import (
    Offer,
    merged,
    plan,
    statistics_in,
)
from custom_components.cloud_energy_meters.providers.model import (
    Account,
    Channel,
    Device,
    Inventory,
    Kind,
    Quantity,
    Role,
    Site,
)
from homeassistant.components.energy.data import (
    DEVICE_CONSUMPTION_SCHEMA,
    ENERGY_SOURCE_SCHEMA,
    async_get_manager,
)
from homeassistant.components.recorder.statistics import get_metadata
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.recorder import get_instance
from homeassistant.setup import async_setup_component
from homeassistant.util import slugify
from tests.conftest import (
    LOCUS_SMALL_SITES,
    SetupEntry,
    energydata_entry_for,
    locus_entry_for,
)
from tests.copper.entries import ENTERPRISE_ID as COPPER_ENTERPRISE, copper_entry
from tests.flexmeasures.sim_entries import flexmeasures_sim_entry, sim_server
from tests.helpers import settle
from tests.provider_factory import EDK_ACCOUNT_ID
from tests.simulator import Simulator
from tests.simulator.climkit import SITES, SimSite
from tests.simulator.flexmeasures_data import (
    BATTERY_POWER,
    ENERGY_METER,
    GRID_POWER,
    HA_ENERGY,
    HA_POWER,
    SOLAR_POWER,
)


def stat(site: SimSite, what: str) -> str:
    """Return the id of a Climkit statistic of a site (`site_…` for its totals)."""
    return f"{DOMAIN}:climkit_{site.id}_{what}"


def grid(stat_from: str | None, stat_to: str | None, **user: Any) -> dict[str, Any]:
    """Return a grid connection as the energy preferences hold it."""
    return {
        "type": "grid",
        "stat_energy_from": stat_from,
        "stat_energy_to": stat_to,
        "stat_cost": None,
        "entity_energy_price": None,
        "number_energy_price": None,
        "stat_compensation": None,
        "entity_energy_price_export": None,
        "number_energy_price_export": None,
        "cost_adjustment_day": 0.0,
        **user,
    }


def expected_sources(sites: tuple[SimSite, ...]) -> list[dict[str, Any]]:
    """Return the sources a Climkit entry adds, from its sites' meters.

    Each part comes from the site's total (its meters are in it): one grid connection
    (export with production), solar with production, a battery with one, cold and
    hot water with their meters.
    """
    sources: list[dict[str, Any]] = []
    for site in sites:
        modes = {m.mode for m in site.meters if m.type == "electricity"}
        types = {m.type for m in site.meters}
        production = "production" in modes
        sources.append(
            grid(
                stat(site, "site_electricity_grid_import"),
                stat(site, "site_electricity_grid_export") if production else None,
            )
        )
        if production:
            sources.append(
                {
                    "type": "solar",
                    "stat_energy_from": stat(site, "site_electricity_production"),
                    "config_entry_solar_forecast": None,
                }
            )
        if "battery" in modes:
            sources.append(
                {
                    "type": "battery",
                    "stat_energy_from": stat(
                        site, "site_electricity_battery_discharge"
                    ),
                    "stat_energy_to": stat(site, "site_electricity_battery_charge"),
                }
            )
        sources.extend(
            {
                "type": "water",
                "stat_energy_from": stat(site, f"site_{water}_consumption"),
                "stat_cost": None,
                "entity_energy_price": None,
                "number_energy_price": None,
            }
            for water in ("cold_water", "hot_water")
            if water in types
        )
    return sources


def expected_devices(sites: tuple[SimSite, ...]) -> list[dict[str, Any]]:
    """Return the individual devices: every electricity meter consumed, not the totals.

    A heat or cold meter's kWh are not electricity: no device of the dashboard.
    """
    devices = [
        {"stat_consumption": stat(site, f"{meter.id}_energy")}
        for site in sites
        for meter in site.meters
        if meter.type == "electricity" and meter.mode == "consumption"
    ]
    assert any(m.type == "heating" for site in sites for m in site.meters)
    return devices


def stored(entry: MockConfigEntry, value: Any) -> Any:
    """Return `value` with each statistic key replaced by the id it is stored under.

    The keys are the cloud's ids; the rows live under a readable id pinned by the
    entry when first written (statistic_names).
    """
    pinned = entry.runtime_data.imported.pinned
    if isinstance(value, str):
        return pinned.get(value, value)
    if isinstance(value, dict):
        return {key: stored(entry, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(stored(entry, item) for item in value)
    return value


def same(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Tell whether two lists hold the same items, in any order."""

    def key(item: dict[str, Any]) -> str:
        return json.dumps(item, sort_keys=True)

    return sorted(map(key, found)) == sorted(map(key, expected))


def offer_of(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """Return the entry's offer, if raised."""
    return ir.async_get(hass).async_get_issue(DOMAIN, f"energy_offer_{entry.entry_id}")


async def fix(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, issue_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Open the issue's fix flow and submit it, as the frontend does.

    Return the form shown and the flow's result.
    """
    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert response.status == HTTPStatus.OK
    form = await response.json()
    assert form["type"] == "form"
    assert form["step_id"] == "confirm"
    assert form["data_schema"] == []
    response = await client.post(f"/api/repairs/issues/fix/{form['flow_id']}")
    assert response.status == HTTPStatus.OK
    return form, await response.json()


async def names(hass: HomeAssistant, ids: set[str]) -> set[str]:
    """Return the names the recorder holds for these statistics."""
    await async_wait_recording_done(hass)
    found = await get_instance(hass).async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids=ids)
    )
    assert set(found) == ids
    return {str(meta["name"]) for _, meta in found.values()}


async def test_the_offer_fills_an_empty_energy_dashboard(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """After the first import, one Submit fills the dashboard from the channels."""
    assert offer_of(hass, climkit_entry) is None
    assert await setup_entry(climkit_entry)

    issue = offer_of(hass, climkit_entry)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "energy_offer"
    assert issue.translation_placeholders == {"entry": climkit_entry.title}

    form, result = await fix(hass, hass_client, issue.issue_id)
    sources = stored(climkit_entry, expected_sources(SITES))
    devices = stored(climkit_entry, expected_devices(SITES))
    shown = form["description_placeholders"]
    assert shown["entry"] == climkit_entry.title
    assert shown["gas"] == "—"
    every_name = await names(
        hass,
        {
            stat_id
            for item in [*sources, *devices]
            for key, stat_id in item.items()
            if key.startswith("stat_") and stat_id
        },
    )
    text = " ".join(shown.values())
    assert [name for name in every_name if name not in text] == []
    assert result["type"] == "create_entry"

    prefs = (await async_get_manager(hass)).data
    assert prefs is not None
    assert same(prefs["energy_sources"], sources)  # type: ignore[arg-type]
    assert same(prefs["device_consumption"], devices)  # type: ignore[arg-type]
    # What Home Assistant's own settings page would accept.
    ENERGY_SOURCE_SCHEMA(prefs["energy_sources"])
    for device in prefs["device_consumption"]:
        DEVICE_CONSUMPTION_SCHEMA(device)
    assert offer_of(hass, climkit_entry) is None


async def test_the_offer_keeps_what_the_user_set(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Nothing the user set changes and nothing is added twice.

    The user has a grid connection of their own, one holding the first site's
    import (its export empty), the second site's production as solar, and an
    apartment as a named device.
    """
    lac, centrale, ferme = SITES
    own_grid = grid(
        "sensor.house_import",
        None,
        number_energy_price=0.31,
        cost_adjustment_day=1.5,
    )
    user_sources: list[dict[str, Any]] = [
        own_grid,
        grid(stat(lac, "site_electricity_grid_import"), None),
        {
            "type": "solar",
            "stat_energy_from": stat(centrale, "site_electricity_production"),
            "config_entry_solar_forecast": None,
            "name": "Roof",
        },
    ]
    apartment = stat(lac, f"{lac.meters[1].id}_energy")
    # Set up first: the statistics' ids are known once written.
    assert await setup_entry(climkit_entry)
    issue = offer_of(hass, climkit_entry)
    assert issue is not None
    user_sources = stored(climkit_entry, user_sources)
    apartment = stored(climkit_entry, apartment)
    manager = await async_get_manager(hass)
    await manager.async_update(
        {
            "energy_sources": user_sources,  # type: ignore[typeddict-item]
            "device_consumption": [{"stat_consumption": apartment, "name": "Flat 1"}],
        }
    )
    _, result = await fix(hass, hass_client, issue.issue_id)
    assert result["type"] == "create_entry"

    completed = grid(
        stat(lac, "site_electricity_grid_import"),
        stat(lac, "site_electricity_grid_export"),
    )
    completed = stored(climkit_entry, completed)
    sources = stored(climkit_entry, expected_sources(SITES))
    sources.remove(completed)  # Lac's connection is the user's, completed
    sources.remove(
        stored(
            climkit_entry,
            {
                "type": "solar",
                "stat_energy_from": stat(centrale, "site_electricity_production"),
                "config_entry_solar_forecast": None,
            },
        )
    )
    expected = [
        own_grid,
        completed,
        user_sources[2],
        *sources,
    ]
    devices = [
        {"stat_consumption": apartment, "name": "Flat 1"},
        *(
            d
            for d in stored(climkit_entry, expected_devices(SITES))
            if d["stat_consumption"] != apartment
        ),
    ]
    prefs = manager.data
    assert prefs is not None
    assert same(prefs["energy_sources"], expected)  # type: ignore[arg-type]
    assert prefs["energy_sources"][:3] == expected[:3]  # in place, in order
    assert same(prefs["device_consumption"], devices)  # type: ignore[arg-type]
    ENERGY_SOURCE_SCHEMA(prefs["energy_sources"])
    assert stored(climkit_entry, stat(ferme, "site_electricity_production")) in str(
        prefs
    )


async def test_an_accepted_offer_is_not_raised_again(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Once accepted, a reload (its import done again) neither raises nor adds.

    Not even for a statistic the user removed from the dashboard since.
    """
    assert await setup_entry(climkit_entry)
    issue = offer_of(hass, climkit_entry)
    assert issue is not None
    await fix(hass, hass_client, issue.issue_id)
    manager = await async_get_manager(hass)
    assert manager.data is not None
    removed = manager.data["device_consumption"][0]
    await manager.async_update(
        {"device_consumption": manager.data["device_consumption"][1:]}
    )
    before = manager.data

    assert await hass.config_entries.async_reload(climkit_entry.entry_id)
    await settle(hass)  # the import after the reload

    assert climkit_entry.runtime_data.imports  # the import did run again
    assert offer_of(hass, climkit_entry) is None
    assert manager.data == before
    assert removed not in manager.data["device_consumption"]


async def test_no_offer_without_anything_for_the_dashboard(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
) -> None:
    """No offer without a statistic for the dashboard; one of water makes one.

    An energy register the user kept off the dashboard has no part in it (so is
    one described before the form asked).
    """
    entry = energydata_entry_for(
        simulator, streams=[65603, 65607], roles={65607: "measurement"}
    )
    assert await setup_entry(entry)
    assert entry.runtime_data.imports
    assert offer_of(hass, entry) is None

    water = energydata_entry_for(simulator, streams=[70001], account_id="0a0b0c0d0e0f")
    assert await setup_entry(water)
    assert offer_of(hass, water) is not None


async def test_removing_the_entry_removes_its_offer(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """The offer goes with its entry."""
    assert await setup_entry(climkit_entry)
    assert offer_of(hass, climkit_entry) is not None
    assert await hass.config_entries.async_remove(climkit_entry.entry_id)
    assert offer_of(hass, climkit_entry) is None


def _copper(simulator: Simulator) -> tuple[MockConfigEntry, dict[str, list[Any]]]:
    """Return a Copper entry: a statistic per meter, no site totals.

    Copper reads the utility's meters: the electric meter (a net meter too) is the
    home's grid connection, a generation meter solar, a sub-meter an individual
    device; each gas and water meter is a source.
    """
    premises = simulator.copper.premises_of_enterprise(COPPER_ENTERPRISE)
    # Premise 35 has every kind: a net meter, generation, a sub-meter, gas, water.
    entry = copper_entry(simulator, sites=[premises[2].id, premises[34].id])
    parts: dict[str, list[Any]] = {"grid": [], "solar": [], "gas": [], "water": []}
    parts["devices"] = []
    for premise_id in entry.data[CONF_SITES]:
        for meter in simulator.copper.premise(premise_id).meters:
            quantity = {"electric": "energy"}.get(meter.kind, meter.kind)
            stat_id = (
                f"{DOMAIN}:{slugify(f'copper_{premise_id}_{meter.id}_{quantity}')}"
            )
            if meter.type in ("power", "power_net", "electric"):
                parts["grid"].append((stat_id, None))
            elif quantity == "energy":
                parts["solar" if meter.type == "power_gen" else "devices"].append(
                    stat_id
                )
            else:
                parts[quantity].append(stat_id)
    assert all(parts.values())  # every part is tested
    return entry, parts


def _locus(simulator: Simulator) -> tuple[MockConfigEntry, dict[str, list[Any]]]:
    """Return a Locus entry: each site's production total, not its meters'."""
    return locus_entry_for(simulator), {
        "solar": [f"{DOMAIN}:locus_{site}_production" for site in LOCUS_SMALL_SITES]
    }


def _flexmeasures(simulator: Simulator) -> tuple[MockConfigEntry, dict[str, list[Any]]]:
    """Return a FlexMeasures entry: two-way sensors split by their role.

    The grid's import and export make one connection; the battery's charging and
    discharging one battery; every other sensor's consumption is a device and its
    production a producer.
    """
    server = sim_server(simulator)

    def stat_id(sensor: int, way: str) -> str:
        return f"{DOMAIN}:{slugify(f'flexmeasures_{server}_{sensor}_{way}')}"

    loads = (ENERGY_METER, SOLAR_POWER, HA_POWER, HA_ENERGY)
    return flexmeasures_sim_entry(simulator), {
        "grid": [(stat_id(GRID_POWER, "in"), stat_id(GRID_POWER, "out"))],
        "battery": [(stat_id(BATTERY_POWER, "in"), stat_id(BATTERY_POWER, "out"))],
        "solar": [stat_id(sensor, "out") for sensor in loads],
        "devices": [stat_id(sensor, "in") for sensor in loads],
    }


def _energydata(simulator: Simulator) -> tuple[MockConfigEntry, dict[str, list[Any]]]:
    """Return an Energydata.dk entry: energy where the user said, water, gas.

    The main meter was described as energy bought from the grid, the PV yield as
    solar production: a datastream's role is the user's answer, not the cloud's.
    """
    entry = energydata_entry_for(
        simulator,
        streams=[65603, 65607, 70001, 70003],
        roles={65603: "grid_import", 65607: "production"},
    )

    def stat_id(stream: int, word: str) -> str:
        return f"{DOMAIN}:energydata_{EDK_ACCOUNT_ID}_{stream}_{word}"

    return entry, {
        "grid": [(stat_id(65603, "energy"), None)],
        "solar": [stat_id(65607, "energy")],
        "water": [stat_id(70001, "volume")],
        "gas": [stat_id(70003, "gas")],
    }


def _prefs_of(parts: dict[str, list[Any]]) -> tuple[list[Any], list[Any]]:
    """Return the sources and devices the parts make."""
    sources: list[dict[str, Any]] = [grid(*pair) for pair in parts.get("grid", [])]
    sources += [
        {"type": "solar", "stat_energy_from": i, "config_entry_solar_forecast": None}
        for i in parts.get("solar", [])
    ]
    sources += [
        {"type": "battery", "stat_energy_to": into, "stat_energy_from": out}
        for into, out in parts.get("battery", [])
    ]
    sources += [
        {
            "type": kind,
            "stat_energy_from": i,
            "stat_cost": None,
            "entity_energy_price": None,
            "number_energy_price": None,
        }
        for kind in ("gas", "water")
        for i in parts.get(kind, [])
    ]
    return sources, [{"stat_consumption": i} for i in parts.get("devices", [])]


@pytest.mark.parametrize("cloud", [_copper, _locus, _flexmeasures, _energydata])
async def test_every_cloud_offers_by_role(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    setup_entry: SetupEntry,
    cloud: Callable[[Simulator], tuple[MockConfigEntry, dict[str, list[Any]]]],
) -> None:
    """Each cloud's statistics land in the part their role says, counted once."""
    entry, parts = cloud(simulator)
    assert await setup_entry(entry)
    issue = offer_of(hass, entry)
    assert issue is not None
    _, result = await fix(hass, hass_client, issue.issue_id)
    assert result["type"] == "create_entry"
    sources, devices = _prefs_of(stored(entry, parts))
    prefs = (await async_get_manager(hass)).data
    assert prefs is not None
    assert same(prefs["energy_sources"], sources)  # type: ignore[arg-type]
    assert same(prefs["device_consumption"], devices)  # type: ignore[arg-type]
    ENERGY_SOURCE_SCHEMA(prefs["energy_sources"])


async def test_a_copper_entry_of_the_previous_layout_offers_its_grid(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """An inventory saved while electric meters were devices is listed anew.

    A restart restores the saved inventory rather than asking the cloud again: one
    saved by the previous layout would keep the old roles until the next listing.
    """
    entry = copper_entry(simulator)
    assert await setup_entry(entry)
    store = inventory_store(hass, entry.entry_id)
    saved = await store.async_load()
    assert saved is not None
    # As the previous layout saved it: every electric meter consumed, as a device.
    saved[LAYOUT] = 2  # the layout before these roles
    for channel in saved["channels"]:
        if channel["role"] == Role.GRID_IMPORT:
            channel["role"] = Role.CONSUMPTION
    await store.async_save(saved)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await settle(hass)
    electric = [
        c.role
        for c in entry.runtime_data.channels
        if c.statistic and c.quantity is Quantity.ENERGY
    ]
    assert electric
    assert set(electric) == {Role.GRID_IMPORT}  # no sub-meter or generation here


async def test_the_offer_waits_for_its_entry(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """An entry not running cannot say what it offers: the fix flow stops."""
    assert await setup_entry(climkit_entry)
    issue = offer_of(hass, climkit_entry)
    assert issue is not None
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    assert offer_of(hass, climkit_entry) is not None  # an unload is no removal
    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue.issue_id}
    )
    assert (await response.json())["reason"] == "not_loaded"
    assert (await async_get_manager(hass)).data is None


def _channel(key: str, role: Role, device: str | None = None, **kw: Any) -> Channel:
    """Return a history channel of site `s` with a statistic of its own key."""
    return Channel(
        **{
            "key": key,
            "site_id": "s",
            "name": key,
            "label": None,
            "quantity": Quantity.ENERGY,
            "kind": Kind.INTERVAL,
            "unit": "kWh",
            "role": role,
            "history": True,
            "statistic": key,
            "device_id": device,
            **kw,
        }
    )


def _plan(*channels: Channel, devices: tuple[Device, ...] = ()) -> Offer:
    inventory = Inventory(
        account=Account("a", "a"),
        sites=(Site("s", "Site"),),
        channels=channels,
        devices=devices,
    )
    stored = {f"{DOMAIN}:test_{c.key}": f"{DOMAIN}:test_{c.key}" for c in channels}
    return plan("test", inventory, stored)


def test_a_meter_under_a_taken_meter_is_left_out() -> None:
    """Without a site total, a PV meter counts and the inverters under it do not.

    An inverter whose parent has no statistic of that part still counts.
    """
    devices = (
        Device("pv", "s", "PV meter"),
        Device("inv", "s", "Inverter", parent_id="pv"),
        Device("box", "s", "Box"),
        Device("inv2", "s", "Inverter 2", parent_id="box"),
    )
    offer = _plan(
        _channel("pv", Role.PRODUCTION, "pv"),
        _channel("inv", Role.PRODUCTION, "inv"),
        _channel("inv2", Role.PRODUCTION, "inv2"),
        devices=devices,
    )
    assert offer.solar == (f"{DOMAIN}:test_pv", f"{DOMAIN}:test_inv2")


def test_half_a_battery_and_gas_produced_are_not_offered() -> None:
    """The dashboard needs both sides of a battery; gas or water is only used."""
    offer = _plan(
        _channel("in", Role.BATTERY_CHARGE),
        _channel("gas", Role.PRODUCTION, quantity=Quantity.GAS, unit="m³"),
        _channel("gas_kwh", Role.CONSUMPTION, quantity=Quantity.GAS),
        _channel("w", Role.CONSUMPTION, quantity=Quantity.WATER, unit="kWh"),
    )
    assert offer == Offer(gas=(f"{DOMAIN}:test_gas_kwh",))


def test_a_user_connection_with_both_sides_is_not_changed() -> None:
    """Our import in a connection whose export the user set: our export goes apart."""
    full = Offer(grid=(("imp", "exp"),))
    user = {
        "type": "grid",
        "stat_energy_from": "imp",
        "stat_energy_to": "sensor.export",
        "cost_adjustment_day": 0.0,
    }
    prefs: Any = {"energy_sources": [user], "device_consumption": []}
    offer = full.without(statistics_in(prefs))
    assert offer.grid == ((None, "exp"),)
    added = merged(prefs, full, offer)
    assert added["energy_sources"] == [user, grid(None, "exp")]
    assert prefs["energy_sources"] == [user]  # the manager's data is not touched
