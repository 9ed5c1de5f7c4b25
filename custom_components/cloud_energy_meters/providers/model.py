"""What every cloud's data becomes: the shared vocabulary of providers.

These frozen dataclasses say what a value *is* (a register, an amount per interval, a
measurement; energy, volume, temperature …), never how Home Assistant shows it: that
mapping lives in one table above this package.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Quantity(StrEnum):
    """The physical quantity of a channel."""

    ENERGY = "energy"
    POWER = "power"
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
    OTHER = "other"


class Kind(StrEnum):
    """How a channel's values relate to time."""

    REGISTER = "register"
    """A cumulative index (a meter reading); it only grows, except when a meter resets."""
    INTERVAL = "interval"
    """An amount accumulated over one interval (kWh in 15 minutes)."""
    INSTANT = "instant"
    """A measurement at one instant (°C, W)."""


class Role(StrEnum):
    """What a channel counts for the site's energy balance."""

    CONSUMPTION = "consumption"
    PRODUCTION = "production"
    GRID_IMPORT = "grid_import"
    GRID_EXPORT = "grid_export"
    SELF_CONSUMPTION = "self_consumption"
    BATTERY_CHARGE = "battery_charge"
    BATTERY_DISCHARGE = "battery_discharge"
    MEASUREMENT = "measurement"


class Unit(StrEnum):
    """Units providers normalise to (the same strings Home Assistant uses)."""

    KWH = "kWh"
    WH = "Wh"
    W = "W"
    KW = "kW"
    CUBIC_METER = "m³"
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


@dataclass(frozen=True, slots=True)
class Channel:
    """One stream of values of a site: it becomes an entity, maybe a statistic.

    `key` is unique within an account and stable across restarts: unique ids are made of
    it. `label` names what the value is in snake_case (the entity's translation key);
    `source` is the cloud's name for the meter or sensor it belongs to, if any.
    `statistic` is set when the channel's history feeds the Energy dashboard: it is the
    statistic id's object part after the provider key, e.g. `<site>_<meter>_energy`.
    """

    key: str
    site_id: str
    name: str
    label: str
    quantity: Quantity
    kind: Kind
    unit: str
    role: Role = Role.MEASUREMENT
    source: str | None = None
    source_id: str | None = None
    history: bool = False
    statistic: str | None = None
    enabled: bool = True
    diagnostic: bool = False
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    ref: tuple[str, ...] = ()
    """Where the provider finds the values (endpoint, ids, field): opaque above it."""


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest value of a channel.

    `time` is when the value was true: the end of the interval for amounts, the moment of
    the measurement otherwise. `start` is the interval's start for amounts.
    """

    value: float | str
    time: datetime | None = None
    start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    """An amount over [start, end), both aware UTC; labelled by its start."""

    start: datetime
    end: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Inventory:
    """What an account holds now: its sites and their channels."""

    account: Account
    sites: tuple[Site, ...]
    channels: tuple[Channel, ...]

    def site(self, site_id: str) -> Site | None:
        """Return the site with this id, if the account still has it."""
        return next((site for site in self.sites if site.id == site_id), None)
