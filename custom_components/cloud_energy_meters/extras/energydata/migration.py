"""Energydata.dk entries of version 1 move to an id of their own.

Version 1 named an entry after a hash of its token (a new token would have orphaned
its history): statistics, entities and devices move to an id made now, with every
stored hour.
"""

import hashlib
from typing import Any

from custom_components.cloud_energy_meters.const import (
    CONF_ACCOUNT_ID,
    CONF_KNOWN_SITES,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.coordinator import inventory_store
from custom_components.cloud_energy_meters.ids import statistic_prefix
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.statistics import (
    async_move_statistic,
    async_stored_statistics,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er


async def async_migrate_from(
    hass: HomeAssistant, entry: ConfigEntry, version: int
) -> list[str]:
    """Bring an entry of `version` to the next; return the statistic ids it moved to."""
    if version != 1:
        return []
    return await _async_own_id(hass, entry)


async def _async_own_id(hass: HomeAssistant, entry: ConfigEntry) -> list[str]:
    """Move the entry from its token's hash to an id of its own (statistics too)."""
    token = str(entry.data["api_token"])
    old = hashlib.sha256(token.encode()).hexdigest()[:12]  # what version 1 used
    new = EnergydataProvider.new_account_id()
    old_prefix = statistic_prefix(EnergydataProvider.key, old)
    new_prefix = statistic_prefix(EnergydataProvider.key, new)
    moved: list[str] = []
    for statistic_id in await async_stored_statistics(hass, [old_prefix]):
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
