"""Every id the integration gives: unique ids, device identifiers, statistic ids.

One place, imported by the entities, the coordinator and the statistics alike. No
credential, nor a hash or fragment of one, is ever part of an id: ids are made of the
cloud's ids of sites, meters and sensors (or of an id made when an entry was created).
"""

from homeassistant.util import slugify

from .const import DOMAIN
from .providers.model import Channel, Device, Inventory, Site

ADDRESS_KEY = "address"
ZONE_KEY = "timezone"
SITE_TEXTS = (ADDRESS_KEY, ZONE_KEY)
"""Site fields shown as a text sensor of the site (the key is the field's name)."""
PROBLEM_KEY = "problem"
HISTORY_IMPORT_KEY = "history_import"
"""The entry's history import progress, shown on its first site's device."""


def channel_unique_id(provider_key: str, channel: Channel) -> str:
    """Return a channel entity's unique id; it contains the meter's or sensor's id."""
    return f"{provider_key}:{channel.key}"


def site_unique_id(provider_key: str, site: Site, what: str) -> str:
    """Return the unique id of a site-level entity (its address, say)."""
    return f"{provider_key}:{site.id}:{what}"


def device_unique_id(provider_key: str, device: Device, what: str) -> str:
    """Return the unique id of an equipment entity (its problem state, say)."""
    return f"{provider_key}:{device.id}:{what}"


def expected_unique_ids(provider_key: str, inventory: Inventory) -> set[str]:
    """Return every unique id this inventory's entities have (any other is gone)."""
    ids = {channel_unique_id(provider_key, channel) for channel in inventory.channels}
    ids.update(
        site_unique_id(provider_key, site, key)
        for site in inventory.sites
        for key in SITE_TEXTS
        if getattr(site, key)
    )
    ids.update(
        site_unique_id(provider_key, site, HISTORY_IMPORT_KEY)
        for site in inventory.sites[:1]
    )
    ids.update(
        device_unique_id(provider_key, device, PROBLEM_KEY)
        for device in inventory.devices
        if device.alerts
    )
    return ids


def channel_device(channel: Channel) -> str:
    """Return the identifier of the device a channel's entity belongs to."""
    return channel.device_id or channel.site_id


def device_identifier(device_id: str) -> tuple[str, str]:
    """Return the device registry identifier of a site or piece of equipment."""
    return (DOMAIN, device_id)


def statistic_prefix(provider_key: str, site_id: str) -> str:
    """Return the start every statistic id of a site shares."""
    return f"{DOMAIN}:{slugify(f'{provider_key}_{site_id}')}_"


def statistic_id_of(provider_key: str, channel: Channel) -> str:
    """Return the stable key of the statistic a channel's history feeds.

    Made of the cloud's ids, it never changes. Statistics were stored under it until
    they got readable ids (see `readable_statistic_id`); it still names them in the
    entry's record of pinned ids and in the import schedule.
    """
    assert channel.statistic is not None
    return f"{DOMAIN}:{slugify(f'{provider_key}_{channel.statistic}')}"


STATISTIC_ID_LENGTH = 200
"""Longest readable part of a statistic id (the recorder stores 255 characters)."""


def readable_statistic_id(provider_key: str, site_name: str, channel_name: str) -> str:
    """Return a statistic id made of the words people type to find it.

    The cloud, the site and what the statistic is: Home Assistant's statistic picker
    searches an external statistic by its id, not by its name (see statistic_names).
    """
    words = slugify(f"{provider_key} {site_name} {channel_name}")
    words = words[:STATISTIC_ID_LENGTH].strip("_")
    return f"{DOMAIN}:{words}"
