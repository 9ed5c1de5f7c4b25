"""A device per Climkit meter, under its site's; site totals stay on the site.

Entries made before meters had devices kept every entity on the site's device: after
an update their entities move to their meter's device with the same entity ids,
unique ids, the names the user gave, and the history they had.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import CONF_API_URL, CONF_SITES, DOMAIN
from custom_components.cloud_energy_meters.coordinator import (
    DISCOVERED_AT,
    inventory_store,
)
from custom_components.cloud_energy_meters.providers.model import Inventory
from custom_components.cloud_energy_meters.statistics import (
    async_import_series,
    series_for,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import slugify
from tests.conftest import SetupEntry, climkit_entry_for
from tests.helpers import stored
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_LAC

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = [
    pytest.mark.freeze_time(NOW, tick=True),
    pytest.mark.usefixtures("entity_registry_enabled_by_default"),
]


def _devices(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, dr.DeviceEntry]:
    """Return the entry's devices by their identifier."""
    return {
        ident: device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        for _, ident in device.identifiers
    }


def _entities(hass: HomeAssistant, entry: MockConfigEntry) -> list[er.RegistryEntry]:
    return er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)


def _meter_of(unique_id: str) -> str | None:
    """Return the meter id in a Climkit unique id (None: the site's or a sensor's)."""
    _, site, part, *what = unique_id.split(":")
    return None if part in ("site", "sensor") or not what else f"{site}:meter:{part}"


async def _leave_what_the_old_code_left(
    hass: HomeAssistant, entry: MockConfigEntry
) -> Inventory:
    """Import a day of history, register and save the inventory as before meters.

    Every entity was on its site's device, named `<site> <meter> <what>`; the saved
    inventory had no devices and its channels named none.
    """
    provider = build_provider(
        "climkit", async_get_clientsession(hass), api_url=entry.data[CONF_API_URL]
    )
    inventory = await provider.async_discover(entry.data[CONF_SITES])
    for channel in inventory.channels:
        site = inventory.site(channel.site_id)
        if channel.statistic and site:
            await async_import_series(
                hass,
                series_for(provider.key, site, channel),
                partial(provider.async_history, channel),
                now=NOW,
                backfill=timedelta(days=1),
            )
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    on_site = {
        site.id: devices.async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={(DOMAIN, site.id)},
            name=site.name,
            manufacturer="Climkit",
        ).id
        for site in inventory.sites
    }
    for site in inventory.sites:
        for key in ("address", "timezone"):
            entities.async_get_or_create(
                "sensor",
                DOMAIN,
                f"climkit:{site.id}:{key}",
                config_entry=entry,
                device_id=on_site[site.id],
                suggested_object_id=slugify(f"{site.name} {key}"),
                has_entity_name=True,
            )
    for channel in inventory.channels:
        site = inventory.site(channel.site_id)
        assert site
        entities.async_get_or_create(
            "sensor",
            DOMAIN,
            f"climkit:{channel.key}",
            config_entry=entry,
            device_id=on_site[site.id],
            suggested_object_id=slugify(f"{site.name} {channel.name}"),
            has_entity_name=True,
            original_name=channel.name,
        )
    old = replace(
        inventory,
        devices=(),
        channels=tuple(replace(c, device_id=None) for c in inventory.channels),
    )
    await inventory_store(hass, entry.entry_id).async_save(
        {**old.as_dict(), DISCOVERED_AT: NOW.isoformat()}
    )
    return inventory


async def test_an_entry_made_before_meter_devices_keeps_ids_names_and_history(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Entities move to their meter's device; nothing else about them changes."""
    entry = climkit_entry_for(simulator, sites=[SITE_LAC.id])
    entry.add_to_hass(hass)
    inventory = await _leave_what_the_old_code_left(hass, entry)
    entities = er.async_get(hass)
    renamed = f"{DOMAIN}_meter_renamed"
    mine = next(e for e in _entities(hass, entry) if "en_im" in e.unique_id)
    kitchen = ar.async_get(hass).async_create("Kitchen")
    entities.async_update_entity(
        mine.entity_id, name="My flat's meter", area_id=kitchen.id
    )
    entities.async_update_entity(mine.entity_id, new_entity_id=f"sensor.{renamed}")
    before = {
        e.unique_id: (e.entity_id, e.name, e.area_id) for e in _entities(hass, entry)
    }
    (lac,) = inventory.sites
    series = [
        series_for("climkit", lac, channel).statistic_id
        for channel in inventory.channels
        if channel.statistic
    ]
    history = {sid: await stored(hass, sid) for sid in series}
    assert all(history.values())

    assert await setup_entry(entry)
    assert entry.state is ConfigEntryState.LOADED

    after = _entities(hass, entry)
    kept = {e.unique_id: (e.entity_id, e.name, e.area_id) for e in after}
    new = set(kept) - set(before)
    assert new == {f"climkit:{lac.id}:history_import"}  # the one entity added since
    assert {key: kept[key] for key in before} == before
    assert hass.states.get(f"sensor.{renamed}").name == "My flat's meter"
    devices = _devices(hass, entry)
    site = devices[SITE_LAC.id]
    by_id = {device.id: device for device in devices.values()}
    for registered in after:
        meter = _meter_of(registered.unique_id)
        device = by_id[str(registered.device_id)]
        if meter is None:  # a site total or a sensor of the site: on the site
            assert device.id == site.id, registered.entity_id
        else:
            assert (DOMAIN, meter) in device.identifiers, registered.entity_id
            assert device.via_device_id == site.id
    # No device is left without entities: the old layout leaves no orphan.
    assert {e.device_id for e in after} == set(by_id)
    for sid, rows in history.items():
        kept = await stored(hass, sid)
        # Each hour's amount is still there (the import may add earlier hours).
        complete = [hour for hour in rows if hour < max(rows)]
        assert {hour: kept[hour][0] for hour in complete} == {
            hour: rows[hour][0] for hour in complete
        }, sid
    # Full names read as before: the site's, the meter's, what it is.
    state = hass.states.get("sensor.residence_du_lac_appartement_1_energy_imported")
    assert state is not None
    assert state.name == "Résidence du Lac Appartement 1 Energy imported"


async def test_a_new_entry_has_a_device_per_meter_under_its_site(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Each meter is a device linked to its site; site totals stay on the site.

    A meter's device says what the meter is; entity names do not repeat the
    meter's, and their ids read as `<site> <meter> <what>`.
    """
    entry = climkit_entry_for(simulator, sites=[SITE_LAC.id])
    assert await setup_entry(entry)
    devices = _devices(hass, entry)
    site = devices[SITE_LAC.id]
    meters = {i: d for i, d in devices.items() if ":meter:" in i}
    assert {m.id for m in SITE_LAC.meters} == {i.rsplit(":", 1)[1] for i in meters}
    assert all(d.via_device_id == site.id for d in meters.values())
    models = {d.name: d.model for d in meters.values()}
    assert models["Résidence du Lac Appartement 1"] == (
        "Electricity meter, consumption"
    )
    assert models["Résidence du Lac Introduction"] == (
        "Electricity meter, grid connection"
    )
    assert models["Résidence du Lac Eau froide"] == "Cold water meter"
    assert models["Résidence du Lac Chauffage"] == "Heat meter"
    assert any(model.startswith("Virtual ") for model in models.values())
    by_id = {device.id: device for device in devices.values()}
    names: dict[str, str] = {}
    for registered in _entities(hass, entry):
        state = hass.states.get(registered.entity_id)
        assert state is not None
        device = by_id[str(registered.device_id)]
        on_site = _meter_of(registered.unique_id) is None
        assert (device.id == site.id) is on_site, registered.entity_id
        names[registered.entity_id] = state.name
        words = state.name.removeprefix(str(device.name)).split()
        assert str(device.name).split()[-1] not in words, state.name
    assert names["sensor.residence_du_lac_eau_froide_water_volume"] == (
        "Résidence du Lac Eau froide Water volume"
    )
    assert names["sensor.residence_du_lac_grid_import_last_interval"] == (
        "Résidence du Lac Grid import (last interval)"
    )
