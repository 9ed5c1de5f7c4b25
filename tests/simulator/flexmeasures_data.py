"""FlexMeasures in the simulator, part 1: demo data, units, time, beliefs, schedules.

The HTTP side lives in flexmeasures.py; this module holds what a real server keeps
in its database and computes, written to answer like FlexMeasures 1.0.1 does
(shared/providers/FLEXMEASURES-REAL.md):

* Demo accounts, assets and sensors (ids fixed, see the constants). Every demo
  value is a pure function of (sensor, event start) in Europe/Amsterdam local
  time, so DST days have 23 or 25 hours of data by themselves. Data starts at
  2025-01-01 local; measurements exist for events that ENDED by now (their
  belief time is the event end), day-ahead prices up to the end of tomorrow
  (belief time: local midnight of the day before). About one day in five loses
  one local hour of a measured sensor (null gap, ``gap_hour``). The two
  "… from Home Assistant" sensors have no data until a client posts.
* Beliefs: a POST stores one belief per event (belief time = ``prior`` or now
  truncated to the second); a read answers the most recent belief. A different
  value with the same belief time is a replacement (refused); the same value as
  the most recent belief is skipped ("already received").
* Reading resamples like the real server: native resolution = exact events
  (an off-grid start gives nulls), coarser = mean of the events whose start lies
  in the bucket, finer = the value of the covering event; with a resolution
  other than the native one only events starting in the first
  floor(duration / resolution) buckets are searched. kW read as energy is
  mean kW x the OUTPUT resolution's hours; energy is never summed.
* Writing: an off-grid start is floored to the sensor's grid, coarser values
  are repeated, finer ones averaged (nulls skipped), and units converted with
  the SENSOR's resolution after resampling (2 kWh for PT1H into a 15-minute kW
  sensor stores 8 kW four times, as the real server does).
* Schedules: a dynamic programme over quarter-power steps and state-of-charge
  levels gives the cheapest charge/discharge plan within soc-min/soc-max, the
  power capacities and soc-targets (100 % efficiency, no terminal value). It is
  deterministic, physically valid and kept as ground truth.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
import hashlib
import json
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

ZONE_NAME = "Europe/Amsterdam"
ZONE = ZoneInfo(ZONE_NAME)
EPOCH = datetime(2025, 1, 1, tzinfo=ZONE)
EA_AUTHORITY = "ea1.2027-01.localhost"

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-1"
OTHER_EMAIL = "other@example.com"
OTHER_PASSWORD = "other-password-1"

DEMO_ACCOUNT_ID = 1
OTHER_ACCOUNT_ID = 2
HOUSE_ID = 4
BATTERY_ASSET_ID = 5
GARAGE_ID = 6
OTHER_ASSET_ID = 7

GRID_POWER = 7
ENERGY_METER = 8
PRICE = 9
TEMPERATURE = 10
SOLAR_POWER = 11
HA_POWER = 12
HA_ENERGY = 13
BATTERY_POWER = 14
STATE_OF_CHARGE = 15
CHARGER_POWER = 16
OTHER_POWER = 17

BATTERY_CAPACITY_KWH = 10.0
BATTERY_POWER_KW = 5.0

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)

ASSET_TYPES = {"battery": 5, "building": 6}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class SimUser:
    """A user: id, e-mail, password, account."""

    id: int
    email: str
    password: str
    account_id: int


@dataclass(frozen=True, slots=True)
class SimSensor:
    """A sensor: id, asset, name, unit, native resolution, attributes, data kind."""

    id: int
    asset_id: int
    name: str
    unit: str
    resolution: timedelta
    attributes: Mapping[str, Any] = field(default_factory=dict)
    kind: str = ""

    @property
    def entity_address(self) -> str:
        """The v3 entity address (host-derived on a real server)."""
        return f"{EA_AUTHORITY}:fm1.{self.id}"

    @property
    def consumption_is_positive(self) -> bool:
        """Whether stored values count consumption positive (attribute, default False)."""
        return bool(self.attributes.get("consumption_is_positive", False))

    def as_json(self) -> dict[str, Any]:
        """Return the sensor as the API serialises it."""
        return {
            "attributes": json.dumps(dict(self.attributes)),
            "entity_address": self.entity_address,
            "event_resolution": format_duration(self.resolution),
            "generic_asset_id": self.asset_id,
            "id": self.id,
            "name": self.name,
            "timezone": ZONE_NAME,
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class SimAsset:
    """An asset of an account (``parent_id`` for a child asset)."""

    id: int
    account_id: int
    name: str
    type_name: str
    parent_id: int | None = None
    latitude: float = 52.37
    longitude: float = 4.89


ACCOUNTS = {DEMO_ACCOUNT_ID: "Demo Prosumer", OTHER_ACCOUNT_ID: "Other Company"}
USERS = (
    SimUser(1, DEMO_EMAIL, DEMO_PASSWORD, DEMO_ACCOUNT_ID),
    SimUser(2, OTHER_EMAIL, OTHER_PASSWORD, OTHER_ACCOUNT_ID),
)
ASSETS = (
    SimAsset(HOUSE_ID, DEMO_ACCOUNT_ID, "Demo house", "building"),
    SimAsset(BATTERY_ASSET_ID, DEMO_ACCOUNT_ID, "Home battery", "battery", HOUSE_ID),
    SimAsset(GARAGE_ID, DEMO_ACCOUNT_ID, "Garage", "building"),
    SimAsset(OTHER_ASSET_ID, OTHER_ACCOUNT_ID, "Other battery", "battery", None, 51.92),
)
_CONSUMPTION = {"consumption_is_positive": True}
SENSORS = (
    SimSensor(GRID_POWER, HOUSE_ID, "grid power", "kW", QUARTER, _CONSUMPTION, "grid"),
    SimSensor(ENERGY_METER, HOUSE_ID, "energy meter", "kWh", HOUR, {}, "energy"),
    SimSensor(PRICE, HOUSE_ID, "day-ahead price", "EUR/MWh", HOUR, {}, "price"),
    SimSensor(TEMPERATURE, HOUSE_ID, "indoor temperature", "°C", QUARTER, {}, "temp"),
    SimSensor(
        SOLAR_POWER,
        HOUSE_ID,
        "solar power",
        "kW",
        QUARTER,
        {"consumption_is_positive": False},
        "solar",
    ),
    SimSensor(HA_POWER, HOUSE_ID, "power from Home Assistant", "kW", QUARTER),
    SimSensor(HA_ENERGY, HOUSE_ID, "energy from Home Assistant", "kWh", HOUR),
    SimSensor(
        BATTERY_POWER,
        BATTERY_ASSET_ID,
        "battery power",
        "kW",
        QUARTER,
        _CONSUMPTION,
        "battery",
    ),
    SimSensor(
        STATE_OF_CHARGE, BATTERY_ASSET_ID, "state of charge", "%", QUARTER, {}, "soc"
    ),
    SimSensor(
        CHARGER_POWER,
        GARAGE_ID,
        "charger power",
        "kW",
        QUARTER,
        _CONSUMPTION,
        "charger",
    ),
    SimSensor(
        OTHER_POWER,
        OTHER_ASSET_ID,
        "battery power",
        "kW",
        QUARTER,
        _CONSUMPTION,
        "other",
    ),
)


# --------------------------------------------------------------------------- time


class FieldError(ValueError):
    """A field that does not validate: the API's message for it."""


_DURATION = re.compile(
    r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration: calendar months plus a fixed part, and its sign."""

    months: int
    fixed: timedelta
    negative: bool = False

    def end(self, start: datetime) -> datetime:
        """Return ``start`` plus this duration (months on the start's own clock)."""
        if not self.months:
            return start + self.fixed
        months = start.year * 12 + start.month - 1 + self.months
        year, month = divmod(months, 12)
        day = min(start.day, _month_days(year, month + 1))
        return start.replace(year=year, month=month + 1, day=day) + self.fixed

    def echo(self) -> str:
        """How the server echoes it: calendar durations become "PT0H" (a real quirk)."""
        return "PT0H" if self.months else format_duration(self.fixed)


def _month_days(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def parse_duration(text: Any) -> Duration:
    """Parse an ISO 8601 duration, or raise FieldError with the real message."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "-P") or str(text).endswith("T"):
        raise FieldError(
            f"Cannot parse {text} as ISO8601 duration: "
            f"Unable to parse duration string '{text}'"
        )
    years, months, weeks, days, hours, minutes, seconds = (
        float(part) if part else 0.0 for part in match.groups()[1:]
    )
    return Duration(
        int(years) * 12 + int(months),
        timedelta(
            weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds
        ),
        match.group(1) is not None,
    )


def parse_fixed_duration(text: Any) -> timedelta:
    """Parse a duration without calendar parts (a resolution), else FieldError."""
    duration = parse_duration(text)
    if duration.months or duration.negative or duration.fixed <= timedelta(0):
        raise FieldError(
            f"Cannot parse {text} as ISO8601 duration: "
            f"Unable to parse duration string '{text}'"
        )
    return duration.fixed


def format_duration(value: timedelta) -> str:
    """Format like FlexMeasures' duration_isoformat: PT24H, PT1H30M, PT15M."""
    total = int(abs(value).total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(
        f"{number}{unit}"
        for number, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
        if number
    )
    return f"PT{text or '0H'}"


def parse_aware(text: Any) -> datetime:
    """Parse an aware ISO 8601 datetime (``Z`` ok; a ``+`` read as space too)."""
    if not isinstance(text, str):
        raise FieldError("Not a valid datetime.")
    cleaned = text.strip()
    # An unescaped "+" in a query string arrives as a space: the server still parses it.
    if re.search(r"\d \d\d:?\d\d$", cleaned):
        cleaned = (
            f"{cleaned[: cleaned.rindex(' ')]}+{cleaned[cleaned.rindex(' ') + 1 :]}"
        )
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise FieldError("Not a valid datetime.") from None
    if value.tzinfo is None:
        raise FieldError("Not a valid aware datetime.")
    return value


def floor_to(at: datetime, step: timedelta) -> datetime:
    """Floor an instant to a multiple of ``step`` since the Unix epoch (UTC grid)."""
    seconds = int(at.timestamp())
    span = int(step.total_seconds())
    return datetime.fromtimestamp(seconds - seconds % span, UTC)


# --------------------------------------------------------------------------- units

_POWER = {"W": -3, "kW": 0, "MW": 3, "GW": 6}
_ENERGY = {"Wh": -3, "kWh": 0, "MWh": 3, "GWh": 6}
_PRICE = {"EUR/MWh": 0, "EUR/kWh": 3}


def _scale(value: float, exponent: int) -> float:
    """Multiply by 10**exponent without float noise (1.25 kW -> 1250.0 W)."""
    factor = float(10 ** abs(exponent))
    return value * factor if exponent >= 0 else value / factor


def unit_error(sensor: SimSensor, unit: str) -> str | None:
    """Return the real 422 text when ``unit`` cannot express the sensor, else None."""
    if unit == sensor.unit:
        return None
    family = (
        {**_POWER, **_ENERGY}
        if sensor.unit in _POWER
        else next((f for f in (_ENERGY, _PRICE) if sensor.unit in f), {})
    )
    if unit in family:
        return None
    return (
        f"Required unit for this sensor is {sensor.unit}, got incompatible unit: {unit}"
    )


def from_sensor_unit(
    sensor: SimSensor, value: float, unit: str, resolution: timedelta
) -> float:
    """Convert a value in the sensor's unit to ``unit`` (energy over ``resolution``)."""
    if unit == sensor.unit:
        return value
    if sensor.unit in _POWER and unit in _ENERGY:
        kw = _scale(value, _POWER[sensor.unit])
        return _scale(kw * (resolution / HOUR), -_ENERGY[unit])
    for family in (_POWER, _ENERGY, _PRICE):
        if sensor.unit in family:
            return _scale(value, family[sensor.unit] - family[unit])
    return value


def to_sensor_unit(
    sensor: SimSensor, value: float, unit: str, resolution: timedelta
) -> float:
    """Convert a posted value in ``unit`` to the sensor's unit."""
    if unit == sensor.unit:
        return value
    if sensor.unit in _POWER and unit in _ENERGY:
        kwh = _scale(value, _ENERGY[unit])
        return _scale(kwh / (resolution / HOUR), -_POWER[sensor.unit])
    for family in (_POWER, _ENERGY, _PRICE):
        if sensor.unit in family:
            return _scale(value, family[unit] - family[sensor.unit])
    return value


# --------------------------------------------------------------------------- demo values


def _h(*parts: object) -> int:
    """Return a stable 64-bit integer of ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def _local(at: datetime, offset: timedelta = timedelta(0)) -> tuple[float, date]:
    """Local (Amsterdam) clock hour as a float and date of ``at + offset``."""
    local = (at + offset).astimezone(ZONE)
    return local.hour + local.minute / 60, local.date()


def _season(day: date) -> float:
    """0 at the winter solstice, 1 at the summer one."""
    return 0.5 + 0.5 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 172) / 365.25)


def solar_kw(at: datetime) -> float:
    """Solar production of the quarter starting at ``at`` (kW, >= 0)."""
    hour, day = _local(at, QUARTER / 2)
    season = _season(day)
    x = (hour - 13.5) / (4 + 3 * season)
    if abs(x) >= 1:
        return 0.0
    return round(4.2 * (0.3 + 0.7 * season) * math.cos(x * math.pi / 2), 3)


def house_kw(at: datetime) -> float:
    """Return the house's own consumption of the quarter (kW, > 0)."""
    hour, _ = _local(at, QUARTER / 2)
    noise = (_h("house", int(at.timestamp())) % 100) / 400
    return round(
        0.35 + 0.9 * _bump(hour, 7.5, 1.2) + 1.6 * _bump(hour, 19, 2.2) + noise, 3
    )


def battery_kw(at: datetime) -> float:
    """Return the home battery's power: +1.5 kW from 10 to 14 h, -2 kW from 17 to 20 h local."""
    hour, _ = _local(at)
    if 10 <= hour < 14:
        return 1.5
    if 17 <= hour < 20:
        return -2.0
    return 0.0


def battery_soc_percent(at: datetime) -> float:
    """State of charge at the start of the quarter, consistent with battery_kw."""
    hour, _ = _local(at)
    charged = min(max((hour - 10) * 4, 0), 16)
    discharged = min(max((hour - 17) * 4, 0), 12)
    return round((2 + 0.375 * charged - 0.5 * discharged) * 10, 3)


def grid_kw(at: datetime) -> float:
    """Grid exchange, consumption positive: house - solar + battery."""
    return round(house_kw(at) - solar_kw(at) + battery_kw(at), 3)


def energy_kwh(at: datetime) -> float:
    """Return the imported energy of the hour starting at ``at`` (kWh, >= 0)."""
    quarters = (grid_kw(at + QUARTER * n) for n in range(4))
    return round(sum(max(value, 0.0) for value in quarters) * 0.25, 4)


def price_eur_mwh(at: datetime) -> float:
    """Day-ahead price of the hour (cheap at night and midday, dear at 8 and 19 h)."""
    hour, day = _local(at, HOUR / 2)
    shape = (
        70
        + 45 * _bump(hour, 8, 1.5)
        + 80 * _bump(hour, 19, 2)
        - 35 * _bump(hour, 13.5, 2.5)
    )
    return round(shape + (_h("price", day) % 2000) / 100, 2)


def temperature_c(at: datetime) -> float:
    """Indoor temperature (°C)."""
    hour, _ = _local(at, QUARTER / 2)
    return round(20.5 + 1.5 * math.sin(2 * math.pi * (hour - 10) / 24), 2)


def charger_kw(at: datetime) -> float:
    """Return the garage charger's power: 7.4 kW from 18 to 21 h local on weekdays."""
    local = at.astimezone(ZONE)
    return 7.4 if local.weekday() < 5 and 18 <= local.hour < 21 else 0.0


def other_kw(at: datetime) -> float:
    """Return the other account's battery power: it charges at night, discharges in the evening."""
    hour, _ = _local(at)
    if 1 <= hour < 5:
        return 3.0
    return -3.0 if 18 <= hour < 22 else 0.0


_FUNCTIONS = {
    "grid": grid_kw,
    "energy": energy_kwh,
    "price": price_eur_mwh,
    "temp": temperature_c,
    "solar": solar_kw,
    "battery": battery_kw,
    "soc": battery_soc_percent,
    "charger": charger_kw,
    "other": other_kw,
}


def gap_hour(sensor_id: int, day: date) -> int | None:
    """Return the local hour a measured sensor misses on ``day`` (about one day in five)."""
    if _h("gap", sensor_id, day) % 5:
        return None
    return _h("gap-hour", sensor_id, day) % 24


def base_value(sensor: SimSensor, at: datetime) -> float | None:
    """Return the demo value of the event starting at ``at`` (None: gap, none, off grid)."""
    function = _FUNCTIONS.get(sensor.kind)
    if function is None or at < EPOCH or at != floor_to(at, sensor.resolution):
        return None
    if sensor.kind != "price":
        local = at.astimezone(ZONE)
        if gap_hour(sensor.id, local.date()) == local.hour:
            return None
    return function(at)


def base_recorded(sensor: SimSensor, at: datetime) -> datetime:
    """Belief time of a demo value: event end; prices at local midnight the day before."""
    if sensor.kind == "price":
        day = at.astimezone(ZONE).date() - timedelta(days=1)
        return datetime.combine(day, time(), ZONE).astimezone(UTC)
    return (at + sensor.resolution).astimezone(UTC)


# --------------------------------------------------------------------------- beliefs


@dataclass(frozen=True, slots=True)
class Belief:
    """One stored belief: value in the sensor's unit and its belief time (UTC)."""

    value: float
    recorded: datetime


class Replacement(Exception):
    """A posted value would replace one with the same belief time."""


@dataclass(frozen=True, slots=True)
class Ingested:
    """The outcome of an accepted POST: how many events were new or unchanged."""

    new: int
    unchanged: int

    @property
    def status(self) -> str:
        """FlexMeasures' internal status: success or one of the 'already' ones."""
        if self.unchanged:
            return (
                "success_with_unchanged_beliefs_skipped"
                if self.new
                else ("success_but_nothing_new")
            )
        return "success" if self.new else "success_but_nothing_new"


class BeliefStore:
    """Demo data plus posted beliefs, read and written with the real server's rules."""

    def __init__(self) -> None:
        """Start with the demo data only."""
        self.sensors = {sensor.id: sensor for sensor in SENSORS}
        self.posted: dict[int, dict[datetime, list[Belief]]] = {}

    def beliefs(self, sensor: SimSensor, at: datetime, now: datetime) -> list[Belief]:
        """Every belief about the event at ``at`` known at ``now`` (demo one included)."""
        found = list(self.posted.get(sensor.id, {}).get(at, ()))
        value = base_value(sensor, at)
        # Prices for tomorrow are "recorded" at midnight today, so this also serves them.
        if value is not None and base_recorded(sensor, at) <= now:
            found.append(Belief(value, base_recorded(sensor, at)))
        return found

    def value(
        self,
        sensor: SimSensor,
        at: datetime,
        now: datetime,
        prior: datetime | None = None,
    ) -> float | None:
        """Return the most recent belief (recorded at or before ``prior``), else None."""
        beliefs = [
            b
            for b in self.beliefs(sensor, at.astimezone(UTC), now)
            if prior is None or b.recorded <= prior
        ]
        if not beliefs:
            return None
        return max(beliefs, key=lambda belief: belief.recorded).value

    def read(
        self,
        sensor: SimSensor,
        start: datetime,
        end: datetime,
        resolution: timedelta,
        now: datetime,
        prior: datetime | None = None,
    ) -> list[float | None]:
        """Values in the sensor's unit, one per ``resolution`` step from ``start``."""
        if end <= start:
            return []
        count = math.ceil((end - start) / resolution)
        native = sensor.resolution
        if resolution == native:
            return [
                self.value(sensor, start + native * n, now, prior)
                if start + native * n == floor_to(start + native * n, native)
                else None
                for n in range(count)
            ]
        searched_end = start + resolution * ((end - start) // resolution)
        events: dict[datetime, float] = {}
        at = floor_to(start, native)
        at = at if at >= start else at + native
        while at < searched_end:
            value = self.value(sensor, at, now, prior)
            if value is not None:
                events[at] = value
            at += native
        buckets: dict[int, list[float]] = {}
        for at, value in events.items():
            buckets.setdefault((at - start) // resolution, []).append(value)
        values: list[float | None] = []
        for n in range(count):
            inside = buckets.get(n)
            if inside:
                values.append(sum(inside) / len(inside))
            elif resolution < native:
                values.append(events.get(floor_to(start + resolution * n, native)))
            else:
                values.append(None)
        return values

    def store(
        self,
        sensor: SimSensor,
        events: Mapping[datetime, float],
        recorded: datetime,
        now: datetime,
    ) -> Ingested:
        """Store beliefs; raise Replacement (storing nothing) on a same-time change."""
        fresh: dict[datetime, float] = {}
        unchanged = 0
        for at, value in events.items():
            existing = self.beliefs(sensor, at, now)
            same_time = [b for b in existing if b.recorded == recorded]
            if same_time:
                if same_time[0].value != value:
                    raise Replacement
                unchanged += 1
            elif existing and max(existing, key=lambda b: b.recorded).value == value:
                unchanged += 1
            else:
                fresh[at] = value
        for at, value in fresh.items():
            self.posted.setdefault(sensor.id, {}).setdefault(at, []).append(
                Belief(value, recorded)
            )
        return Ingested(len(fresh), unchanged)


def resample_posted(
    sensor: SimSensor,
    values: Iterable[float | None],
    start: datetime,
    step: timedelta,
    unit: str,
) -> dict[datetime, float]:
    """Turn posted values into events of the sensor (floored, resampled, converted)."""
    native = sensor.resolution
    origin = floor_to(start, native)
    groups: dict[datetime, list[float]] = {}
    for n, value in enumerate(values):
        if value is None:
            continue
        at = origin + step * n
        if step >= native:
            for k in range(step // native):
                groups.setdefault(at + native * k, []).append(value)
        else:
            groups.setdefault(floor_to(at, native), []).append(value)
    return {
        at: to_sensor_unit(sensor, sum(group) / len(group), unit, native)
        for at, group in groups.items()
    }


def resolution_error(step: timedelta, native: timedelta) -> str | None:
    """Return the real 422 text when posted values' resolution does not fit the sensor's."""
    if step > timedelta(0) and (
        step % native == timedelta(0) or native % step == timedelta(0)
    ):
        return None
    return (
        f"Resolution of {step} is incompatible with the sensor's required "
        f"resolution of {native}."
    )


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True)
class StorageModel:
    """A flex-model in kW/kWh: start and bounds, capacities, targets by step index."""

    soc_at_start: float
    soc_min: float
    soc_max: float
    power_kw: float
    charge_kw: float
    discharge_kw: float
    targets: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    """A computed schedule: power per step (kW, charging positive), SOC per boundary."""

    start: datetime
    resolution: timedelta
    power_kw: tuple[float, ...]
    soc_kwh: tuple[float, ...]
    cost_eur: float


class Infeasible(Exception):
    """The flex-model cannot be satisfied (the job fails with this message)."""


_MAX_STATES = 3_000_000


def plan_storage(
    start: datetime,
    resolution: timedelta,
    consumption_prices: list[float],
    production_prices: list[float],
    model: StorageModel,
) -> Plan:
    """Return the cheapest plan: charge when cheap, discharge when dear, within every bound.

    Power moves in quarters of ``power_kw`` (finer when the state space allows),
    so SOC levels are ``soc_at_start + k * quantum``. A tiny cost per step of
    activity keeps the battery idle when prices tie.
    """
    hours = resolution / HOUR
    steps = len(consumption_prices)
    for division in (4, 2, 1):
        quantum = model.power_kw * hours / division
        low = math.ceil((model.soc_min - model.soc_at_start) / quantum - 1e-9)
        high = math.floor((model.soc_max - model.soc_at_start) / quantum + 1e-9)
        up = math.floor(model.charge_kw / model.power_kw * division + 1e-9)
        down = math.floor(model.discharge_kw / model.power_kw * division + 1e-9)
        if (high - low + 1) * (up + down + 1) * steps <= _MAX_STATES:
            break
    if low > 0 or high < 0:
        raise Infeasible("soc-at-start lies outside soc-min and soc-max.")
    targets = {
        index: round((value - model.soc_at_start) / quantum)
        for index, value in model.targets.items()
    }
    if any(not low <= level <= high for level in targets.values()):
        raise Infeasible("a soc-target lies outside soc-min and soc-max.")
    inf = math.inf
    levels = range(low, high + 1)
    cost_to_go = dict.fromkeys(levels, 0.0)
    if steps in targets:
        cost_to_go = {k: (0.0 if k == targets[steps] else inf) for k in levels}
    choices: list[dict[int, int]] = []
    for t in range(steps - 1, -1, -1):
        buy = consumption_prices[t] * quantum / 1000
        sell = production_prices[t] * quantum / 1000
        now_cost: dict[int, float] = {}
        choice: dict[int, int] = {}
        for k in levels:
            best, best_a = inf, 0
            for a in range(-down, up + 1):
                after = cost_to_go.get(k + a, inf)
                if after == inf:
                    continue
                total = after + (a * buy if a > 0 else a * sell) + abs(a) * 1e-9
                if total < best - 1e-12:
                    best, best_a = total, a
            now_cost[k], choice[k] = best, best_a
        if t in targets:
            now_cost = {k: (v if k == targets[t] else inf) for k, v in now_cost.items()}
        cost_to_go = now_cost
        choices.append(choice)
    choices.reverse()
    if cost_to_go.get(0, inf) == inf:
        raise Infeasible("the soc-targets cannot be reached.")
    level, power, soc = 0, [], [model.soc_at_start]
    for choice in choices:
        action = choice[level]
        level += action
        power.append(round(action * quantum / hours, 6))
        soc.append(round(model.soc_at_start + level * quantum, 6))
    cost = sum(
        p * hours * (consumption_prices[i] if p > 0 else production_prices[i]) / 1000
        for i, p in enumerate(power)
    )
    return Plan(start, resolution, tuple(power), tuple(soc), round(cost, 6))
