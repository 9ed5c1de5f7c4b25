"""Config entry migrations.

Version 2: no credential, nor a hash of one, in any id. Energydata.dk entries of
version 1 were named after a hash of their token (a new token would have orphaned
their history); they get an id of their own, and their statistics, entities and
devices move to it with every stored hour. Every entry also starts its record of
the statistics it has written, so removing it clears them all.
"""

from collections.abc import Mapping
from functools import partial
import hashlib
import logging
from typing import Any

from homeassistant.components.recorder.statistics import get_metadata
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.recorder import get_instance

from .claims import sites_taken
from .const import (
    CONF_ACCOUNT_ID,
    CONF_API_URL,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from .coordinator import inventory_store
from .providers.energydata import EnergydataProvider
from .statistics import ImportedStatistics, async_move_statistic, statistic_prefix

_LOGGER = logging.getLogger(__name__)

VERSION = 2


async def async_migrate(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an entry to the current version; False for one made by a newer version."""
    if entry.version > VERSION:
        return False
    if entry.version == 1:
        moved: list[str] = []
        if entry.data[CONF_PROVIDER] == EnergydataProvider.key:
            moved = await _async_energydata_own_id(hass, entry)
        await _async_record_statistics(hass, entry, moved)
        hass.config_entries.async_update_entry(entry, version=VERSION)
        _LOGGER.debug("Migrated %s to version %s", entry.title, VERSION)
    return True


async def _async_energydata_own_id(
    hass: HomeAssistant, entry: ConfigEntry
) -> list[str]:
    """Move an Energydata.dk entry from its token's hash to an id of its own.

    Return the statistic ids its history moved to.
    """
    token = str(entry.data["api_token"])
    old = hashlib.sha256(token.encode()).hexdigest()[:12]  # what version 1 used
    new = EnergydataProvider.new_account_id()
    old_prefix = statistic_prefix(EnergydataProvider.key, old)
    new_prefix = statistic_prefix(EnergydataProvider.key, new)
    moved: list[str] = []
    for statistic_id in await _async_ours(hass, [old_prefix]):
        new_id = new_prefix + statistic_id.removeprefix(old_prefix)
        if await async_move_statistic(hass, statistic_id, new_id):
            moved.append(new_id)

    # Entities keep their entity ids (and so names, areas, dashboards, history).
    old_entity, new_entity = (
        f"{EnergydataProvider.key}:{old}:",
        f"{EnergydataProvider.key}:{new}:",
    )

    @callback
    def new_unique_id(entity: er.RegistryEntry) -> dict[str, Any] | None:
        if not entity.unique_id.startswith(old_entity):
            return None
        return {"new_unique_id": new_entity + entity.unique_id.removeprefix(old_entity)}

    await er.async_migrate_entries(hass, entry.entry_id, new_unique_id)
    devices = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        identifiers = {_new_identifier(ident, old, new) for ident in device.identifiers}
        if identifiers != device.identifiers:
            devices.async_update_device(device.id, new_identifiers=identifiers)
    await inventory_store(hass, entry.entry_id).async_remove()
    title = entry.title
    if title == f"{EnergydataProvider.name} {old}":
        title = EnergydataProvider.name
    hass.config_entries.async_update_entry(
        entry,
        title=title,
        unique_id=f"{EnergydataProvider.key}_{new}",
        data={
            **entry.data,
            CONF_ACCOUNT_ID: new,
            CONF_SITES: [new],
            CONF_KNOWN_SITES: [new],
        },
    )
    return moved


def _new_identifier(identifier: tuple[str, str], old: str, new: str) -> tuple[str, str]:
    """Return a version 2 device identifier of an Energydata.dk entry."""
    domain, value = identifier
    if domain != DOMAIN:
        return identifier
    if value == old:  # the account's site
        return domain, new
    if value.startswith("datastream-"):  # unique per server only: now per site
        return domain, f"{new}:datastream:{value.removeprefix('datastream-')}"
    return identifier


async def _async_ours(hass: HomeAssistant, prefixes: list[str]) -> list[str]:
    """Return our statistics in the database whose id starts with one of `prefixes`."""
    found: Mapping[str, Any] = await get_instance(hass).async_add_executor_job(
        partial(get_metadata, hass, statistic_source=DOMAIN)
    )
    return sorted(i for i in found if i.startswith(tuple(prefixes)))


async def _async_record_statistics(
    hass: HomeAssistant, entry: ConfigEntry, moved: list[str]
) -> None:
    """Start the record of what the entry wrote: its sites' statistics, and `moved`.

    Sites the user chose and dropped since are among the known ones: theirs are the
    entry's too, unless another entry holds the site now.
    """
    provider_key = entry.data[CONF_PROVIDER]
    sites = set(entry.data[CONF_SITES]) | (
        set(entry.data.get(CONF_KNOWN_SITES, ()))
        - sites_taken(hass, provider_key, entry.data[CONF_API_URL], entry.entry_id)
    )
    ids = await _async_ours(
        hass, [statistic_prefix(provider_key, site) for site in sorted(sites)]
    )
    await ImportedStatistics(hass, entry.entry_id).async_set([*ids, *moved])
