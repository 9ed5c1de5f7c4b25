"""Config entry migrations.

Version 2: no credential, nor a hash of one, in any id (a cloud whose ids held one
moves them, see its extras). Every entry also starts its record of the statistics it
has written, so removing it clears them all.
"""

import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .claims import sites_taken
from .const import CONF_API_URL, CONF_KNOWN_SITES, CONF_PROVIDER, CONF_SITES
from .extras import extras_of
from .ids import statistic_prefix
from .statistics import ImportedStatistics, async_stored_statistics

_LOGGER = logging.getLogger(__name__)

VERSION = 2


async def async_migrate(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an entry to the current version; False for one made by a newer version."""
    if entry.version > VERSION:
        return False
    if entry.version == 1:
        moved: list[str] = []
        extras = extras_of(entry.data[CONF_PROVIDER])
        if extras.async_migrate_from is not None:
            moved = await extras.async_migrate_from(hass, entry, entry.version)
        await _async_record_statistics(hass, entry, moved)
        hass.config_entries.async_update_entry(entry, version=VERSION)
        _LOGGER.debug("Migrated %s to version %s", entry.title, VERSION)
    return True


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
    ids = await async_stored_statistics(
        hass, [statistic_prefix(provider_key, site) for site in sorted(sites)]
    )
    await ImportedStatistics(hass, entry.entry_id).async_set([*ids, *moved])
