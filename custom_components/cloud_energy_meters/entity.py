"""Base entity: it belongs to a site's device or to one of its equipment devices."""

from typing import TYPE_CHECKING

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .providers.model import Channel, Device, Inventory, Site

if TYPE_CHECKING:
    from .coordinator import CloudEnergyCoordinator

ADDRESS_KEY = "address"
PROBLEM_KEY = "problem"


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
    """Return every unique id the platforms create for this inventory.

    Entities of the entry outside this set belong to channels, equipment or sites that
    are gone.
    """
    ids = {channel_unique_id(provider_key, channel) for channel in inventory.channels}
    ids.update(
        site_unique_id(provider_key, site, ADDRESS_KEY)
        for site in inventory.sites
        if site.address
    )
    ids.update(
        device_unique_id(provider_key, device, PROBLEM_KEY)
        for device in inventory.devices
        if device.alerts
    )
    return ids


def device_key(channel: Channel) -> str:
    """Return the identifier of the device a channel's entity belongs to."""
    return channel.device_id or channel.site_id


class CloudEnergyEntity(CoordinatorEntity["CloudEnergyCoordinator"]):
    """An entity of a site, or of a piece of equipment of a site.

    Devices are registered by the coordinator at discovery (sites first, then their
    equipment linked to its parent), so an entity only names its device.
    """

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: CloudEnergyCoordinator, device: str, unique_id: str
    ) -> None:
        """Attach the entity to its device (a site id or an equipment key)."""
        super().__init__(coordinator)
        self.device_key = device
        self._attr_unique_id = unique_id
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, device)})
