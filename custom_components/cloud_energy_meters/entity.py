"""Base entity: one device per site, unique ids made of the cloud's own ids."""

from typing import TYPE_CHECKING

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .providers.model import Channel, Inventory, Site

if TYPE_CHECKING:
    from .coordinator import CloudEnergyCoordinator

ADDRESS_KEY = "address"


def channel_unique_id(provider_key: str, channel: Channel) -> str:
    """Return a channel entity's unique id; it contains the meter's or sensor's id."""
    return f"{provider_key}:{channel.key}"


def site_unique_id(provider_key: str, site: Site, what: str) -> str:
    """Return the unique id of a site-level entity (its address, say)."""
    return f"{provider_key}:{site.id}:{what}"


def expected_unique_ids(provider_key: str, inventory: Inventory) -> set[str]:
    """Return every unique id the platforms create for this inventory.

    Entities of the entry outside this set belong to channels or sites that are gone.
    """
    ids = {channel_unique_id(provider_key, channel) for channel in inventory.channels}
    ids.update(
        site_unique_id(provider_key, site, ADDRESS_KEY)
        for site in inventory.sites
        if site.address
    )
    return ids


def site_device_info(manufacturer: str, site: Site) -> DeviceInfo:
    """Describe a site's device; it is identified by the cloud's site id."""
    return DeviceInfo(
        identifiers={(DOMAIN, site.id)},
        name=site.name,
        manufacturer=manufacturer,
        model=site.model,
        serial_number=site.reference,
        configuration_url=site.configuration_url,
    )


class CloudEnergyEntity(CoordinatorEntity["CloudEnergyCoordinator"]):
    """An entity of one site of a cloud account."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: CloudEnergyCoordinator, site: Site, unique_id: str
    ) -> None:
        """Attach the entity to its site's device."""
        super().__init__(coordinator)
        self.site_id = site.id
        self._attr_unique_id = unique_id
        self._attr_device_info = site_device_info(coordinator.provider.name, site)
