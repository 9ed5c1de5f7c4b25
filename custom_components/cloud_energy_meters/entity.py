"""Base entity: it belongs to a site's device or to one of its equipment devices."""

import asyncio
from collections.abc import Sequence

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import CloudEnergyCoordinator
from .ids import device_identifier

ADD_STEP = 50
"""Entities added in one go. Each is a registry event, and its state a message, to
every open frontend: added all at once, a large account's thousands of them queue
up before Home Assistant sends any, and past 4,096 it drops the connection."""


async def async_add_in_steps(
    add: AddConfigEntryEntitiesCallback,
    entities: Sequence[Entity],
    group: str | None = None,
) -> None:
    """Add entities a step at a time, letting what each step said be sent."""
    for start in range(0, len(entities), ADD_STEP):
        add(entities[start : start + ADD_STEP], config_subentry_id=group)
        await asyncio.sleep(0)  # the websocket writers run now


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
