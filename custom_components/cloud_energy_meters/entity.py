"""Base entity: it belongs to a site's device or to one of its equipment devices."""

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import CloudEnergyCoordinator
from .ids import device_identifier


class CloudEnergyEntity(CoordinatorEntity[CloudEnergyCoordinator]):
    """An entity of a site or of its equipment; registry.py registers its device."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: CloudEnergyCoordinator, device: str, unique_id: str
    ) -> None:
        """Attach the entity to its device (a site id or an equipment key)."""
        super().__init__(coordinator)
        self.device_key = device
        self._attr_unique_id = unique_id
        self._attr_device_info = DeviceInfo(identifiers={device_identifier(device)})
