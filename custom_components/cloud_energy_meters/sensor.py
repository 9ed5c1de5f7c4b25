"""Sensors: one per channel, described from what the channel is, in one table."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, override

from homeassistant.components.sensor import (
    DEVICE_CLASS_STATE_CLASSES,
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import CloudEnergyConfigEntry, CloudEnergyCoordinator
from .entity import CloudEnergyEntity, async_add_in_steps
from .ids import (
    HISTORY_IMPORT_KEY,
    SITE_TEXTS,
    channel_device,
    channel_unique_id,
    expected_unique_ids,
    site_unique_id,
)
from .providers.model import Channel, Kind, Quantity, Site, Unit

# Entities only read the coordinator's data: no request of their own.
PARALLEL_UPDATES = 0

DEVICE_CLASSES: dict[Quantity, SensorDeviceClass] = {
    Quantity.ENERGY: SensorDeviceClass.ENERGY,
    Quantity.POWER: SensorDeviceClass.POWER,
    Quantity.VOLUME_FLOW_RATE: SensorDeviceClass.VOLUME_FLOW_RATE,
    Quantity.WATER: SensorDeviceClass.WATER,
    Quantity.GAS: SensorDeviceClass.GAS,
    Quantity.TEMPERATURE: SensorDeviceClass.TEMPERATURE,
    Quantity.HUMIDITY: SensorDeviceClass.HUMIDITY,
    Quantity.CO2: SensorDeviceClass.CO2,
    Quantity.PRESSURE: SensorDeviceClass.PRESSURE,
    Quantity.ILLUMINANCE: SensorDeviceClass.ILLUMINANCE,
    Quantity.VOLTAGE: SensorDeviceClass.VOLTAGE,
    Quantity.CURRENT: SensorDeviceClass.CURRENT,
    Quantity.FREQUENCY: SensorDeviceClass.FREQUENCY,
    Quantity.POWER_FACTOR: SensorDeviceClass.POWER_FACTOR,
    Quantity.APPARENT_POWER: SensorDeviceClass.APPARENT_POWER,
    Quantity.REACTIVE_POWER: SensorDeviceClass.REACTIVE_POWER,
    Quantity.IRRADIANCE: SensorDeviceClass.IRRADIANCE,
    Quantity.STATE_OF_CHARGE: SensorDeviceClass.BATTERY,
    Quantity.DATE: SensorDeviceClass.DATE,
}

# A register only grows (the Energy dashboard accepts it as a meter); an interval amount
# has no state class: its history is imported as statistics instead, hour by hour.
STATE_CLASSES: dict[Kind, SensorStateClass | None] = {
    Kind.REGISTER: SensorStateClass.TOTAL_INCREASING,
    Kind.INTERVAL: None,
    Kind.INSTANT: SensorStateClass.MEASUREMENT,
    Kind.FACT: None,
}

# Digits shown, by unit: a 15-minute amount and a measured kW to the watt(-hour),
# whole watts, litres, percents and ppm; a stated size (a fact) keeps one decimal.
PRECISIONS: dict[str, int] = {
    Unit.KWH: 3,
    "MWh": 3,
    Unit.WH: 0,
    Unit.KW: 3,
    Unit.W: 0,
    Unit.CUBIC_METER: 3,
    Unit.CUBIC_METER_PER_HOUR: 3,
    Unit.LITER: 0,
    Unit.CELSIUS: 1,
    Unit.FAHRENHEIT: 1,
    Unit.PERCENT: 0,
    Unit.PPM: 0,
    Unit.HPA: 0,
    Unit.LUX: 0,
    Unit.VOLT: 1,
    Unit.AMPERE: 2,
    Unit.HERTZ: 2,
    Unit.VOLT_AMPERE: 0,
    Unit.VAR: 0,
    Unit.W_PER_M2: 0,
}
QUANTITY_PRECISIONS: dict[Quantity, int] = {
    # A price per kWh (0.1085 EUR/kWh) is read to the hundredth of a cent.
    Quantity.PRICE: 4,
    Quantity.POWER_FACTOR: 2,
}
DEFAULT_PRECISION = 1
"""For a unit the table does not know (one a cloud or the user named)."""


def display_precision(channel: Channel) -> int:
    """Return how many decimals a numeric channel's value shows."""
    if channel.kind is Kind.FACT:
        return 1
    if channel.quantity in QUANTITY_PRECISIONS:
        return QUANTITY_PRECISIONS[channel.quantity]
    return PRECISIONS.get(channel.unit, DEFAULT_PRECISION)


def channel_description(channel: Channel) -> SensorEntityDescription:
    """Return how Home Assistant shows a channel.

    Text has no unit and no state class; a state class the device class does not
    allow (a measured energy, say, from an entry made before the forms refused it)
    is left out rather than refused by Home Assistant at every update.
    """
    numeric = channel.quantity not in (Quantity.DATE, Quantity.TEXT)
    device_class = DEVICE_CLASSES.get(channel.quantity)
    state_class = STATE_CLASSES[channel.kind] if numeric else None
    if device_class in DEVICE_CLASS_STATE_CLASSES and (
        state_class not in DEVICE_CLASS_STATE_CLASSES[device_class]
    ):
        state_class = None
    return SensorEntityDescription(
        key=channel.key,
        translation_key=None if channel.label is None else str(channel.label),
        device_class=device_class,
        state_class=state_class,
        native_unit_of_measurement=(str(channel.unit) or None) if numeric else None,
        suggested_display_precision=display_precision(channel) if numeric else None,
        entity_category=EntityCategory.DIAGNOSTIC
        if channel.kind is Kind.FACT or channel.diagnostic
        else None,
        entity_registry_enabled_default=channel.common,
    )


def cloud_name(name: str) -> str:
    """Return a name the cloud gave, starting with a capital as entity names do."""
    return name[:1].upper() + name[1:] if name[:1].islower() else name


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CloudEnergyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a sensor per channel, and more as discovery finds new channels."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    def new_entities() -> dict[str | None, list[SensorEntity]]:
        """Return the entities not added yet, by subentry."""
        inventory = coordinator.inventory
        assert inventory is not None  # set before the first refresh
        # Entities of channels that vanished were removed; if they come back, re-add.
        known.intersection_update(
            expected_unique_ids(coordinator.provider.key, inventory)
        )
        new: list[SensorEntity] = [
            SiteTextSensor(coordinator, site, key)
            for site in inventory.sites
            for key in SITE_TEXTS
            if getattr(site, key)
            and site_unique_id(coordinator.provider.key, site, key) not in known
        ]
        new.extend(
            ImportProgressSensor(coordinator, site)
            for site in inventory.sites[:1]
            if site_unique_id(coordinator.provider.key, site, HISTORY_IMPORT_KEY)
            not in known
        )
        devices = {device.id: device for device in inventory.devices}
        grouped: dict[str | None, list[SensorEntity]] = {None: new}
        for channel in inventory.channels:
            if channel_unique_id(coordinator.provider.key, channel) in known:
                continue
            device = devices.get(channel.device_id or "")
            group = (
                device.group if device and device.group in entry.subentries else None
            )
            grouped.setdefault(group, []).append(
                ChannelSensor(
                    coordinator,
                    channel,
                    main=device is not None and device.name == channel.name,
                )
            )
        for entities in grouped.values():
            known.update(entity.unique_id for entity in entities if entity.unique_id)
        return grouped

    @callback
    def add_new_entities() -> None:
        for group, entities in new_entities().items():
            if entities:
                async_add_entities(entities, config_subentry_id=group)

    for group, entities in new_entities().items():
        await async_add_in_steps(async_add_entities, entities, group)
    entry.async_on_unload(coordinator.async_add_listener(add_new_entities))


class ChannelSensor(CloudEnergyEntity, RestoreSensor):
    """The latest value of one channel: a register, an amount, a measurement, a fact.

    After a reload or a restart it shows the value it had, and when that was true,
    until the cloud's values are read again (never unknown for a minute).
    """

    # They change with every value: recorded, each state would store new attributes.
    _unrecorded_attributes = frozenset({"interval_start", "measured_at"})
    _restored: StateType | date = None
    _restored_times: dict[str, Any] = {}  # noqa: RUF012 (replaced, never changed)

    def __init__(
        self,
        coordinator: CloudEnergyCoordinator,
        channel: Channel,
        *,
        main: bool = False,
    ) -> None:
        """Describe the entity; a `main` one (a datastream) takes its device's name."""
        super().__init__(
            coordinator,
            channel_device(channel),
            channel_unique_id(coordinator.provider.key, channel),
        )
        self.channel = channel
        self.entity_description = channel_description(channel)
        if main:
            self._attr_name = None
        elif channel.label is None:  # named by the cloud (a sensor the user named)
            self._attr_name = cloud_name(channel.name)

    @override
    async def async_added_to_hass(self) -> None:
        """Take back the value shown before the reload, if it is still in this unit."""
        await super().async_added_to_hass()
        if self.channel.kind is Kind.FACT or self.coordinator.values_read:
            return
        last = await self.async_get_last_sensor_data()
        state = await self.async_get_last_state()
        if (
            last is None
            or state is None
            or last.native_unit_of_measurement
            != self.entity_description.native_unit_of_measurement
        ):
            return
        value = last.native_value
        if isinstance(value, datetime):  # no channel shows a time: not ours
            return
        self._restored = float(value) if isinstance(value, Decimal) else value
        self._restored_times = {
            key: state.attributes[key]
            for key in ("interval_start", "measured_at")
            if key in state.attributes
        }

    @property
    @override
    def native_value(self) -> StateType | date:
        """Return the channel's latest value (unknown when the cloud has none)."""
        if self.channel.kind is Kind.FACT:
            if self.channel.quantity is Quantity.DATE:
                return date.fromisoformat(str(self.channel.fact))
            return self.channel.fact
        if not self.coordinator.values_read:
            return self._restored
        reading = self.coordinator.data.get(self.channel.key)
        return None if reading is None else reading.value

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the cloud's ids for the channel and when its value was true."""
        # A discovery may describe the channel anew (a new schedule's span).
        channel = next(
            (c for c in self.coordinator.channels if c.key == self.channel.key),
            self.channel,
        )
        attributes: dict[str, Any] = dict(channel.attributes)
        if not self.coordinator.values_read:
            return attributes | self._restored_times
        reading = self.coordinator.data.get(self.channel.key)
        if reading is not None and reading.start is not None:
            attributes["interval_start"] = reading.start.isoformat()
        if reading is not None and reading.time is not None:
            attributes["measured_at"] = reading.time.isoformat()
        return attributes


class SiteTextSensor(CloudEnergyEntity, SensorEntity):
    """What the cloud says of a site (its address, its time zone): rarely wanted."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_entity_registry_enabled_default = False

    def __init__(
        self, coordinator: CloudEnergyCoordinator, site: Site, key: str
    ) -> None:
        """Attach the text (`key`: a Site field, see SITE_TEXTS) to the site's device."""
        super().__init__(
            coordinator,
            site.id,
            site_unique_id(coordinator.provider.key, site, key),
        )
        self.site_id = site.id
        self.key = key
        self._attr_translation_key = key

    @property
    @override
    def native_value(self) -> str | None:
        """Return the text from the latest discovery."""
        inventory = self.coordinator.inventory
        site = inventory.site(self.site_id) if inventory else None
        value = getattr(site, self.key) if site else None
        return value if isinstance(value, str) else None


class ImportProgressSensor(CloudEnergyEntity, RestoreSensor):
    """How far the entry's history import has come, in percent (progress.py).

    After a reload or restart it shows its last value until the importer reports
    again: it counts from nothing, and would otherwise fall to 0 in between.
    """

    _restored: int | None = None

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_native_unit_of_measurement = PERCENTAGE
    _attr_suggested_display_precision = 0
    _attr_translation_key = HISTORY_IMPORT_KEY
    _unrecorded_attributes = frozenset({"statistics", "statistics_imported"})

    def __init__(self, coordinator: CloudEnergyCoordinator, site: Site) -> None:
        """Attach the entry's progress to its first site's device."""
        super().__init__(
            coordinator,
            site.id,
            site_unique_id(coordinator.provider.key, site, HISTORY_IMPORT_KEY),
        )

    @override
    async def async_added_to_hass(self) -> None:
        """Show each whole percent the import gains."""
        await super().async_added_to_hass()
        if (
            (last := await self.async_get_last_sensor_data()) is not None
            and isinstance(last.native_value, int | float)
            and 0 <= last.native_value <= 100
        ):
            self._restored = int(last.native_value)
        self.async_on_remove(
            self.coordinator.import_progress.async_add_listener(
                self.async_write_ha_state
            )
        )

    @property
    @override
    def available(self) -> bool:
        """Stay available: the import goes on while the latest values fail."""
        return True

    @property
    @override
    def native_value(self) -> int:
        """Return the share of the backfill stored, 0 to 100."""
        progress = self.coordinator.import_progress
        if not progress.reported and self._restored is not None:
            return self._restored
        return progress.percent

    @property
    @override
    def extra_state_attributes(self) -> dict[str, int]:
        """Return how many statistics there are and how many are complete."""
        progress = self.coordinator.import_progress
        return {
            "statistics": len(progress.expected),
            "statistics_imported": progress.done,
        }
