"""What every cloud's data becomes: the shared vocabulary of providers.

These frozen dataclasses say what a value *is* (a register, an amount per interval, a
measurement; energy, volume, temperature …), never how Home Assistant shows it: that
mapping lives in one table above this package.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .parse import MAX_ID_LENGTH, text


class Quantity(StrEnum):
    """The physical quantity of a channel."""

    ENERGY = "energy"
    POWER = "power"
    VOLUME_FLOW_RATE = "volume_flow_rate"
    WATER = "water"
    GAS = "gas"
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    CO2 = "co2"
    PRESSURE = "pressure"
    ILLUMINANCE = "illuminance"
    VOLTAGE = "voltage"
    CURRENT = "current"
    FREQUENCY = "frequency"
    POWER_FACTOR = "power_factor"
    APPARENT_POWER = "apparent_power"
    REACTIVE_POWER = "reactive_power"
    IRRADIANCE = "irradiance"
    PRICE = "price"
    """A price per unit of energy (EUR/kWh): what the Energy dashboard takes."""
    STATE_OF_CHARGE = "state_of_charge"
    DATE = "date"
    TEXT = "text"
    OTHER = "other"


class Kind(StrEnum):
    """How a channel's values relate to time."""

    REGISTER = "register"
    """A cumulative index (a meter reading); it only grows, except when a meter resets."""
    INTERVAL = "interval"
    """An amount accumulated over one interval (kWh in 15 minutes)."""
    INSTANT = "instant"
    """A measurement at one instant (°C, W)."""
    FACT = "fact"
    """Something the cloud states about a site (its installer, its size): no history."""


class Role(StrEnum):
    """What a channel counts for the site's energy balance."""

    CONSUMPTION = "consumption"
    PRODUCTION = "production"
    GRID_IMPORT = "grid_import"
    GRID_EXPORT = "grid_export"
    SELF_CONSUMPTION = "self_consumption"
    BATTERY_CHARGE = "battery_charge"
    BATTERY_DISCHARGE = "battery_discharge"
    HEAT = "heat"
    """Heat or cold delivered (a heat meter's kWh): energy, but not electricity."""
    MEASUREMENT = "measurement"


class Unit(StrEnum):
    """Units providers normalise to (the same strings Home Assistant uses)."""

    KWH = "kWh"
    WH = "Wh"
    W = "W"
    KW = "kW"
    CUBIC_METER = "m³"
    CUBIC_METER_PER_HOUR = "m³/h"
    LITER = "L"
    CELSIUS = "°C"
    FAHRENHEIT = "°F"
    PERCENT = "%"
    PPM = "ppm"
    HPA = "hPa"
    LUX = "lx"
    VOLT = "V"
    AMPERE = "A"
    HERTZ = "Hz"
    VOLT_AMPERE = "VA"
    VAR = "var"
    W_PER_M2 = "W/m²"


class Label(StrEnum):
    """What a channel's value is, in a vocabulary shared by every provider.

    Providers pick from this list; the layer above names and draws each one (one
    translation and one icon per label). A channel without a label is named by the
    cloud (a sensor the user named there).
    """

    IMPORT_REGISTER = "import_register"
    EXPORT_REGISTER = "export_register"
    HEAT_REGISTER = "heat_register"
    VOLUME_REGISTER = "volume_register"
    INTERVAL_ENERGY = "interval_energy"
    INTERVAL_VOLUME = "interval_volume"
    INTERVAL_SELF = "interval_self"
    INTERVAL_EXT = "interval_ext"
    ENERGY_REGISTER = "energy_register"
    """A meter's energy register, on the meter's own device (it needs no source)."""
    GAS_REGISTER = "gas_register"
    WATER_REGISTER = "water_register"
    INTERVAL_GAS = "interval_gas"
    INTERVAL_WATER = "interval_water"
    FLOW_RATE = "flow_rate"
    SITE_CONSUMPTION = "site_consumption"
    SITE_ELECTRICITY_CONSUMPTION = "site_electricity_consumption"
    SITE_HEATING_CONSUMPTION = "site_heating_consumption"
    SITE_COOLING_CONSUMPTION = "site_cooling_consumption"
    SITE_COLD_WATER_CONSUMPTION = "site_cold_water_consumption"
    SITE_HOT_WATER_CONSUMPTION = "site_hot_water_consumption"
    SITE_GRID_IMPORT = "site_grid_import"
    SITE_GRID_EXPORT = "site_grid_export"
    SITE_PRODUCTION = "site_production"
    SITE_SELF_CONSUMPTION = "site_self_consumption"
    SITE_BATTERY_CHARGE = "site_battery_charge"
    SITE_BATTERY_DISCHARGE = "site_battery_discharge"
    POWER = "power"
    ENERGY = "energy"
    PHASE_POWER_A = "phase_power_a"
    PHASE_POWER_B = "phase_power_b"
    PHASE_POWER_C = "phase_power_c"
    CURRENT = "current"
    FREQUENCY = "frequency"
    POWER_FACTOR = "power_factor"
    VOLTAGE_LINE = "voltage_line"
    VOLTAGE_PHASE = "voltage_phase"
    APPARENT_POWER = "apparent_power"
    REACTIVE_POWER = "reactive_power"
    IRRADIANCE = "irradiance"
    AMBIENT_TEMPERATURE = "ambient_temperature"
    MODELED_POWER = "modeled_power"
    MODELED_ENERGY = "modeled_energy"
    SITE_POWER = "site_power"
    SITE_ENERGY = "site_energy"
    SITE_MODELED_POWER = "site_modeled_power"
    SITE_MODELED_ENERGY = "site_modeled_energy"
    SYSTEM_SIZE = "system_size"
    INSTALLER = "installer"
    INSTALL_DATE = "install_date"
    PTO_DATE = "pto_date"
    STARTUP_DATE = "startup_date"


def _as_text(item: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """Make a frozen dataclass's fields text, whatever type the cloud gave."""
    for name in required:
        if not isinstance(value := getattr(item, name), str):
            object.__setattr__(item, name, text(value) or str(value)[:MAX_ID_LENGTH])
    for name in optional:
        if (value := getattr(item, name)) is not None:
            object.__setattr__(item, name, text(value))


@dataclass(frozen=True, slots=True)
class Account:
    """The account credentials belong to; `id` is stable and makes the unique id."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Site:
    """An installation, premise or asset: it becomes a device."""

    id: str
    name: str
    timezone: str | None = None
    address: str | None = None
    reference: str | None = None
    model: str | None = None
    configuration_url: str | None = None

    def __post_init__(self) -> None:
        """Keep every field text: they become the device's (a cloud may send numbers)."""
        _as_text(
            self,
            ("id", "name"),
            ("timezone", "address", "reference", "model", "configuration_url"),
        )


@dataclass(frozen=True, slots=True)
class Device:
    """A monitored piece of equipment of a site (a meter, an inverter …), a device."""

    id: str
    """Unique within the account, never equal to a site id."""
    site_id: str
    name: str
    parent_id: str | None = None
    """The device it is linked to (None: the site's)."""
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    kind: str | None = None
    alerts: bool = False
    """Whether the cloud reports problems for it."""
    group: str | None = None
    """The part of the user's configuration the device comes from, if any."""

    def __post_init__(self) -> None:
        """Keep every field text: they become the device's (a cloud may send numbers)."""
        _as_text(
            self,
            ("id", "site_id", "name"),
            ("parent_id", "manufacturer", "model", "serial_number", "kind", "group"),
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """A problem the cloud reports on a device: open while `end` is None."""

    id: str
    site_id: str
    device_id: str
    device_name: str
    source_id: str
    """The cloud's own id of the equipment (the component id at Locus)."""
    type: str
    priority: str
    start: datetime
    end: datetime | None = None
    description: str | None = None
    details: str | None = None

    @property
    def open(self) -> bool:
        """Tell whether the problem is still there."""
        return self.end is None


@dataclass(frozen=True, slots=True)
class Channel:
    """One stream of values of a site: it becomes an entity, maybe a statistic."""

    key: str
    """Unique within the account and stable: unique ids are made of it."""
    site_id: str
    name: str
    label: Label | None
    quantity: Quantity
    kind: Kind
    unit: str
    role: Role = Role.MEASUREMENT
    source: str | None = None
    """The cloud's name for the meter or sensor it belongs to, if any."""
    source_id: str | None = None
    history: bool = False
    statistic: str | None = None
    """Set when its history feeds the Energy dashboard: the series' key, unique within
    the cloud, e.g. `<site>_<meter>_energy`."""
    common: bool = True
    """Whether most people want to see it (rarer channels stay out of the way)."""
    device_id: str | None = None
    """The device the channel belongs to, when not the site itself."""
    diagnostic: bool = False
    """About the equipment or the grid rather than the energy used (a gateway's
    voltage, say): shown among the device's diagnostics."""
    fact: str | float | None = None
    """The value of a FACT channel, known from discovery: no request reads it."""
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    ref: tuple[str, ...] = ()
    """Where the provider finds the values (endpoint, ids, field): opaque above it."""


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest value of a channel."""

    value: float | str
    time: datetime | None = None
    """When the value was true: for an amount, the end of its interval."""
    start: datetime | None = None
    """For an amount, the start of its interval."""


@dataclass(frozen=True, slots=True)
class Latest:
    """What one read of the latest values found."""

    readings: Mapping[str, Reading]
    gone: frozenset[str] = frozenset()
    """Keys of channels whose meter or sensor the cloud no longer knows ("not found"):
    their values are absent and the inventory is stale."""
    alerts: tuple[Alert, ...] = ()
    """Alerts that changed since the previous read (on the first read: all known)."""


@dataclass(frozen=True, slots=True)
class Interval:
    """An amount over [start, end), both aware UTC; labelled by its start."""

    start: datetime
    end: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Inventory:
    """What an account holds now: the chosen sites and their channels."""

    account: Account
    sites: tuple[Site, ...]
    channels: tuple[Channel, ...]
    listed: tuple[str, ...] = ()
    """Every site the account may read, chosen or not, so new sites are noticed."""
    devices: tuple[Device, ...] = ()
    truncated: bool = False
    """Whether the cloud listed more sites or channels than one account may hold
    (contract.MAX_SITES, MAX_CHANNELS): the rest was left out."""

    def site(self, site_id: str) -> Site | None:
        """Return the site with this id, if the account still has it."""
        return next((site for site in self.sites if site.id == site_id), None)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible copy (kept between restarts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inventory:
        """Rebuild an inventory saved with `as_dict`."""
        return cls(
            account=Account(**data["account"]),
            sites=tuple(Site(**site) for site in data["sites"]),
            channels=tuple(
                Channel(
                    **{
                        **channel,
                        "label": Label(channel["label"]) if channel["label"] else None,
                        "quantity": Quantity(channel["quantity"]),
                        "kind": Kind(channel["kind"]),
                        "role": Role(channel["role"]),
                        "ref": tuple(channel["ref"]),
                    }
                )
                for channel in data["channels"]
            ),
            listed=tuple(data.get("listed", ())),
            devices=tuple(Device(**device) for device in data.get("devices", ())),
            truncated=data.get("truncated", False),
        )
