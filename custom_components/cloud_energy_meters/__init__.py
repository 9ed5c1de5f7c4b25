"""Cloud Energy Meters: sites, meters and their history from energy-data clouds."""

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval

from .const import CONF_PROVIDER, CONF_SITES, DOMAIN, STATISTICS_INTERVAL
from .coordinator import CloudEnergyConfigEntry, CloudEnergyCoordinator, inventory_store
from .statistics import async_clear_statistics, statistic_prefix

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]


async def async_setup_entry(hass: HomeAssistant, entry: CloudEnergyConfigEntry) -> bool:
    """Prove the credentials and create the entities; values and history follow."""
    coordinator = CloudEnergyCoordinator(hass, entry)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(
        async_track_time_interval(
            hass, coordinator.async_schedule_import, STATISTICS_INTERVAL
        )
    )
    coordinator.async_start()
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry
) -> bool:
    """Stop polling and importing (background imports are cancelled with the entry)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry
) -> None:
    """Remove what the entry left: its statistics, saved inventory and repair issue."""
    await async_clear_statistics(
        hass,
        [
            statistic_prefix(entry.data[CONF_PROVIDER], site_id)
            for site_id in entry.data[CONF_SITES]
        ],
    )
    await inventory_store(hass, entry.entry_id).async_remove()
    ir.async_delete_issue(hass, DOMAIN, f"sites_missing_{entry.entry_id}")


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a site's device once the site is gone from the account."""
    if entry.state is not ConfigEntryState.LOADED:
        return True  # nothing is known of the account now: the user decides
    inventory = entry.runtime_data.inventory
    sites = {(DOMAIN, site.id) for site in inventory.sites} if inventory else set()
    return not device.identifiers & sites
