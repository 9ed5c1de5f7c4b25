"""Cloud Energy Meters: sites, meters and their history from energy-data clouds."""

from collections.abc import Callable
import ssl
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from .const import CONF_PROVIDER, CONF_SITES, DOMAIN, STATISTICS_INTERVAL
from .coordinator import CloudEnergyConfigEntry, CloudEnergyCoordinator, inventory_store
from .energy_offer import offer_store
from .extras import EXTRAS, extras_of
from .ids import statistic_prefix
from .migration import async_migrate
from .pacing import requests_store
from .providers import PROVIDERS
from .statistics import ImportedStatistics, async_clear_statistics

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the clouds' actions (they check their entry when called)."""
    for extras in EXTRAS.values():
        if extras.async_setup_actions is not None:
            extras.async_setup_actions(hass, config)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: CloudEnergyConfigEntry) -> bool:
    """Prove the credentials and create the entities; values and history follow."""
    context: ssl.SSLContext | None = None
    if PROVIDERS[entry.data[CONF_PROVIDER]].push:
        # Loading the trust store reads files: not in the event loop.
        context = await hass.async_add_executor_job(ssl.create_default_context)
    coordinator = CloudEnergyCoordinator(hass, entry, context)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(
        async_track_time_interval(
            hass, coordinator.async_schedule_import, STATISTICS_INTERVAL
        )
    )
    entry.async_on_unload(_reload_when_subentries_change(hass, entry))
    coordinator.async_start()
    if (start := extras_of(entry.data[CONF_PROVIDER]).async_start_entry) is not None:
        await start(hass, entry)
    return True


def _reload_when_subentries_change(
    hass: HomeAssistant, entry: ConfigEntry
) -> Callable[[], None]:
    """Reload the entry when the user adds, edits or removes a subentry.

    Without an update listener: flows here reload entries themselves, and Home
    Assistant refuses both on one entry. What is compared is each subentry's
    content: an edit changes the subentry object in place.
    """
    loaded = _subentries_of(entry)

    @callback
    def changed(change: ConfigEntryChange, changed_entry: ConfigEntry) -> None:
        if (
            change is ConfigEntryChange.UPDATED
            and changed_entry.entry_id == entry.entry_id
            and _subentries_of(changed_entry) != loaded
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)

    return async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, changed)


def _subentries_of(entry: ConfigEntry) -> dict[str, tuple[str, dict[str, Any]]]:
    """Return each subentry's title and data, by id."""
    return {
        subentry_id: (subentry.title, dict(subentry.data))
        for subentry_id, subentry in entry.subentries.items()
    }


async def async_unload_entry(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry
) -> bool:
    """Stop polling, importing and listening (background tasks end with the entry)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an entry made by an earlier version to this one's ids."""
    return await async_migrate(hass, entry)


async def async_remove_entry(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry
) -> None:
    """Remove every statistic the entry ever wrote, its saved inventory, its issues."""
    imported = ImportedStatistics(hass, entry.entry_id)
    await async_clear_statistics(
        hass,
        await imported.async_load(),
        [
            statistic_prefix(entry.data[CONF_PROVIDER], site_id)
            for site_id in entry.data[CONF_SITES]
        ],
    )
    await imported.async_remove()
    await inventory_store(hass, entry.entry_id).async_remove()
    await requests_store(hass, entry.entry_id).async_remove()
    await offer_store(hass, entry.entry_id).async_remove()
    if (remove := extras_of(entry.data[CONF_PROVIDER]).async_remove_entry) is not None:
        await remove(hass, entry)
    for issue in (
        "sites_missing",
        "listing_truncated",
        "push_unreachable",
        "budget_too_small",
        "energy_offer",
    ):
        ir.async_delete_issue(hass, DOMAIN, f"{issue}_{entry.entry_id}")


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a site's device once the site is gone from the account."""
    if entry.state is not ConfigEntryState.LOADED:
        return True  # nothing is known of the account now: the user decides
    inventory = entry.runtime_data.inventory
    known = (
        {(DOMAIN, site.id) for site in inventory.sites}
        | {(DOMAIN, device.id) for device in inventory.devices}
        if inventory
        else set()
    )
    return not device.identifiers & known
