"""Problem sensors: on while the cloud reports an open alert on a piece of equipment."""

from typing import Any, override

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CloudEnergyConfigEntry, CloudEnergyCoordinator
from .entity import CloudEnergyEntity, async_add_in_steps
from .ids import PROBLEM_KEY, device_unique_id, expected_unique_ids
from .providers.model import Alert, Device

# Entities only read the coordinator's data: no request of their own.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CloudEnergyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a problem sensor per piece of equipment the cloud reports alerts for."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    def new_entities() -> list[ProblemSensor]:
        inventory = coordinator.inventory
        assert inventory is not None  # set before the first refresh
        known.intersection_update(
            expected_unique_ids(coordinator.provider.key, inventory)
        )
        new = [
            ProblemSensor(coordinator, device)
            for device in inventory.devices
            if device.alerts
            and device_unique_id(coordinator.provider.key, device, PROBLEM_KEY)
            not in known
        ]
        known.update(entity.unique_id for entity in new if entity.unique_id)
        return new

    @callback
    def add_new_entities() -> None:
        if new := new_entities():
            async_add_entities(new)

    await async_add_in_steps(async_add_entities, new_entities())
    entry.async_on_unload(coordinator.async_add_listener(add_new_entities))


def _alert_attributes(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "type": alert.type,
        "priority": alert.priority,
        "start": alert.start.isoformat(),
        "description": alert.description,
        "details": alert.details,
    }


class ProblemSensor(CloudEnergyEntity, BinarySensorEntity):
    """Whether the equipment has an open alert, and what the alerts say."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM
    _attr_translation_key = PROBLEM_KEY
    # They change with every alert, which the recorder keeps as an event already.
    _unrecorded_attributes = frozenset(
        {"alerts", "alert_type", "priority", "description", "details", "since"}
    )

    def __init__(self, coordinator: CloudEnergyCoordinator, device: Device) -> None:
        """Attach the sensor to the equipment's device."""
        super().__init__(
            coordinator,
            device.id,
            device_unique_id(coordinator.provider.key, device, PROBLEM_KEY),
        )

    @property
    def _open(self) -> list[Alert]:
        return sorted(
            (
                alert
                for alert in self.coordinator.alerts.values()
                if alert.device_id == self.device_key and alert.open
            ),
            key=lambda alert: alert.start,
        )

    @property
    @override
    def is_on(self) -> bool:
        """Return True while an alert is open."""
        return bool(self._open)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the newest open alert's type, priority and descriptions, and all."""
        alerts = self._open
        if not alerts:
            return {"alerts": []}
        newest = _alert_attributes(alerts[-1])
        return {
            "alert_type": newest["type"],
            "priority": newest["priority"],
            "description": newest["description"],
            "details": newest["details"],
            "since": newest["start"],
            "alerts": [_alert_attributes(alert) for alert in alerts],
        }
