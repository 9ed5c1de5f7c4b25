"""The simulated Climkit cloud (API v1), written from the Climkit API document.

Served below ``/climkit/api/v1``. The shapes, paths, methods, status codes, the
15-minute token lifetime and the 1 request/s limit follow the document; the
quirks real servers show (shared/providers/NOTES.md) live on site 2.

Data is synthetic and deterministic: every 15-minute value is derived with
hashlib from (meter id, interval start epoch), in integer thousandths, so sums
and registers are exact and every test run sees the same numbers. Data exists
from 2025-01-01 UTC up to the simulator's "now".

Decisions where the document is silent (tests and clients may rely on them):

* ``sampling_frequency`` accepts ``15T`` (alias ``15min``), ``H`` (``h``) and
  ``D`` (``d``); ``M`` and ``Y`` answer 400 "not supported by the simulator".
* Bounds are inclusive on both ends: a row is returned when its timestamp
  label lies in [t_s, t_e]. At 15T the label is the interval END, at H/D the
  START of the local hour/day; H/D rows sum the published 15-minute intervals
  of their bucket (a partly published bucket gives a partial sum; a bucket
  with none is absent).
* Defaults: t_e = now, t_s = t_e - 1 day, sampling 15T. ``max_span`` (off by
  default) makes longer or open-ended POST data requests answer 400.
* Rule meters (``is_rule_meter``/``virtual``) have meter_data, but
  meter_data_raw answers 400 "raw data is only available for physical meters".
* meter_data rows: electricity consumption and introduction meters carry
  total/self/ext (introduction: self 0, ext = total = grid import); production,
  battery (total = energy charged), heating and water meters carry total only.
* Registers (meter_data_raw) are the raw, unvalidated meter: ``correct()`` does
  not change them; they never decrease. en_im grows with the total of
  consumption, introduction and battery meters, en_ex with production meters'
  total and the battery's discharge; the other register stays constant.
* site_data: conso_total is the sum of the electricity consumption meters
  (rule meters included; site 3 has none and reports its unmetered load),
  self = min(conso, prod), from_ext = conso - self, to_ext = prod - self; the
  introduction meter's total is from_ext. A meter gap counts as 0 there. Site 1
  adds storage_charging_total/storage_discharging_total, site 2 the per-meter
  keys total_<id>/self_<id>/ext_<id>.
* Sensor readings are points every 15 minutes; ``publish_late`` hides those
  whose timestamp lies in the window, ``publication_delay`` those newer than
  now - delay. Site 1 reports seconds, site 2 milliseconds.
* The rate limit applies to every request of an account, /auth included
  (account = the posted username); a refused request does not move the window.
* Ground truth (``truth_*``) ignores publish_late and publication_delay but
  only covers intervals that ended by now.
"""

from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
import hashlib
import json
import math
import secrets
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web

from .clock import QUARTER, Now, as_utc, epoch_ms, parse_iso
from .faults import Faults, as_number, drop_required_fields
from .ratelimit import SpacingLimiter
from .requestlog import ACCOUNT, ARRIVAL

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"

PREFIX = "/climkit/api/v1"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_S = int(EPOCH.timestamp())
PER_DAY = 96
DAY = timedelta(days=1)
IDENTITY_KEYS = ("id", "timestamp", "access_token", "timezone")
SITE_DATA_TYPES = frozenset(
    {"electricity", "heating", "cooling", "cold_water", "hot_water", "charge_point"}
)
SAMPLING_ALIASES = {
    "15T": "15T",
    "15min": "15T",
    "H": "H",
    "h": "H",
    "D": "D",
    "d": "D",
}
UNSUPPORTED_SAMPLING = frozenset({"M", "MS", "Y", "YS", "A"})
REGISTER_FIELDS: dict[str, tuple[str, ...]] = {
    "electricity": ("en_im", "en_ex"),
    "heating": ("heat_energy_kwh",),
    "cooling": ("heat_energy_kwh",),
    "cold_water": ("vol_m3",),
    "hot_water": ("vol_m3",),
}

type MeterType = Literal["electricity", "heating", "cold_water", "hot_water"]
type MeterMode = Literal["consumption", "production", "introduction", "battery"]
type Sampling = Literal["15T", "H", "D"]
type Fields = dict[str, int]


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class SimMeter:
    """One meter of a site; ``profile`` names the synthetic series it follows.

    ``scale`` is in thousandths of the unit per 15 minutes; ``im_start`` and
    ``ex_start`` are the register values at the data epoch, in thousandths.
    """

    id: str
    name: str
    type: MeterType
    mode: MeterMode
    prim_ad: int
    profile: str
    scale: int = 0
    is_rule_meter: bool = False
    im_start: int = 0
    ex_start: int = 0
    gap: bool = False

    @property
    def is_physical(self) -> bool:
        """Rule/virtual meters are computed, so they have no raw registers."""
        return not self.is_rule_meter


@dataclass(frozen=True, slots=True)
class SimSensor:
    """One ambient sensor of a site."""

    id: str
    name: str
    type: str
    unit: str
    model: str


@dataclass(frozen=True, slots=True)
class SimSite:
    """One Climkit site with its meters, sensors and the API quirks it shows."""

    id: str
    name: str
    site_ref: str
    timezone: str
    street_name: str
    street_number: str
    city: str
    postal_code: int
    creation_date: str
    latitude: float
    longitude: float
    meters: tuple[SimMeter, ...]
    sensors: tuple[SimSensor, ...] = ()
    city_ref: str = ""
    old_address_keys: bool = False
    prim_ad_as_string: bool = False
    rule_key: str = "is_rule_meter"
    sensor_ms: bool = False
    per_meter_keys: bool = False
    unmetered_load: int = 0

    @property
    def zone(self) -> ZoneInfo:
        """The site's time zone, in which response timestamps are written."""
        return ZoneInfo(self.timezone)

    def meter(self, meter_id: str) -> SimMeter | None:
        """Return the meter with this id, or None."""
        return next((meter for meter in self.meters if meter.id == meter_id), None)

    def sensor(self, sensor_id: str) -> SimSensor | None:
        """Return the sensor with this id, or None."""
        return next((sensor for sensor in self.sensors if sensor.id == sensor_id), None)

    def has_type(self, meter_type: str) -> bool:
        """Tell whether site_data has rows for ``meter_type`` on this site."""
        return any(meter.type == meter_type for meter in self.meters)


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One meter's validated 15-minute values, in thousandths."""

    total: int
    solar: int | None = None
    grid: int | None = None
    discharge: int = 0


@dataclass(frozen=True, slots=True)
class SiteInterval:
    """Everything a site published for one 15-minute interval, in thousandths."""

    meters: dict[str, MeterSample]
    site: dict[str, Fields]


@dataclass(frozen=True, slots=True)
class _Token:
    """An issued access token: who it belongs to and when it stops working."""

    username: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class _LateWindow:
    """Intervals starting in [start, end) (epoch s) are withheld until release."""

    start: int
    end: int
    site_id: str | None

    def hides(self, site_id: str, start: int) -> bool:
        """Tell whether the interval or reading at ``start`` of ``site_id`` is withheld."""
        return self.start <= start < self.end and self.site_id in (None, site_id)


class ApiError(Exception):
    """An error answer of the API: status and the documented ``{"message": …}`` body."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status and message for ``response()``."""
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        """Render the error as the JSON answer Climkit gives."""
        headers = {"Retry-After": "1"} if self.status == 429 else None
        return web.json_response(
            {"message": self.message}, status=self.status, headers=headers
        )


# --------------------------------------------------------------------------- sites

_S1 = "64f1c2a9e3b5d7f900a2b301"
_S2 = "64f1c2a9e3b5d7f900a2b302"
_S3 = "64f1c2a9e3b5d7f900a2b303"

SITE_LAC = SimSite(
    id=_S1,
    name="Résidence du Lac",
    site_ref="LAC-1007-01",
    timezone="Europe/Zurich",
    street_name="Avenue de Rhodanie",
    street_number="58",
    city="Lausanne",
    postal_code=1007,
    creation_date="2024-11-15T09:30:00",
    latitude=46.5069,
    longitude=6.6233,
    meters=(
        SimMeter(
            "64f1c2a9e3b5d7f901a2c010",
            "Introduction",
            "electricity",
            "introduction",
            10,
            "introduction",
            im_start=54_321_098,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c011",
            "Appartement 1",
            "electricity",
            "consumption",
            11,
            "apartment",
            120,
            im_start=12_345_678,
            gap=True,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c012",
            "Appartement 2",
            "electricity",
            "consumption",
            12,
            "apartment",
            150,
            im_start=8_765_432,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c013",
            "Appartement 3",
            "electricity",
            "consumption",
            13,
            "apartment",
            100,
            im_start=23_456_789,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c101",
            "Photovoltaïque toiture",
            "electricity",
            "production",
            101,
            "pv",
            2500,
            im_start=3_210,
            ex_start=45_678_901,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c201",
            "Batterie",
            "electricity",
            "battery",
            201,
            "battery",
            600,
            im_start=1_234_567,
            ex_start=1_098_765,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c301",
            "Communs",
            "electricity",
            "consumption",
            0,
            "common",
            60,
            is_rule_meter=True,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c401",
            "Chauffage",
            "heating",
            "consumption",
            20,
            "heating",
            1500,
            im_start=98_765_432,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c501",
            "Eau froide",
            "cold_water",
            "consumption",
            30,
            "water",
            12,
            im_start=1_234_567,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f901a2c502",
            "Eau chaude",
            "hot_water",
            "consumption",
            31,
            "water",
            6,
            im_start=456_789,
        ),
    ),
    sensors=(
        SimSensor(
            "64f1c2a9e3b5d7f901a2d001",
            "Température séjour",
            "temperature",
            "°C",
            "Elsys ERS",
        ),
        SimSensor(
            "64f1c2a9e3b5d7f901a2d002", "Humidité séjour", "humidity", "%", "Elsys ERS"
        ),
        SimSensor(
            "64f1c2a9e3b5d7f901a2d003", "CO2 séjour", "co2", "ppm", "Elsys ERS CO2"
        ),
    ),
)

SITE_CENTRALE = SimSite(
    id=_S2,
    name="Immeuble Rue Centrale",
    site_ref="ZRH-8001-42",
    timezone="Europe/Zurich",
    street_name="Zentralstrasse",
    street_number="12a",
    city="Zürich",
    city_ref="261",
    postal_code=8001,
    creation_date="2023-06-01T08:00:00",
    latitude=47.3717,
    longitude=8.5392,
    meters=(
        SimMeter(
            "64f1c2a9e3b5d7f902a2c010",
            "Hausanschluss",
            "electricity",
            "introduction",
            10,
            "introduction",
            im_start=76_543_210,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f902a2c011",
            "Wohnung 1",
            "electricity",
            "consumption",
            11,
            "apartment",
            140,
            im_start=11_111_111,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f902a2c012",
            "Wohnung 2",
            "electricity",
            "consumption",
            12,
            "apartment",
            180,
            im_start=22_222_222,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f902a2c101",
            "Solaranlage",
            "electricity",
            "production",
            101,
            "pv",
            1500,
            im_start=1_000,
            ex_start=33_333_333,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f902a2c301",
            "Allgemeinstrom",
            "electricity",
            "consumption",
            0,
            "common",
            50,
            is_rule_meter=True,
        ),
    ),
    sensors=(
        SimSensor(
            "64f1c2a9e3b5d7f902a2d001",
            "Temperatur Treppenhaus",
            "temperature",
            "degC",
            "Milesight EM300-TH",
        ),
    ),
    old_address_keys=True,
    prim_ad_as_string=True,
    rule_key="virtual",
    sensor_ms=True,
    per_meter_keys=True,
)

SITE_FERME = SimSite(
    id=_S3,
    name="Ferme Solaire",
    site_ref="ORB-1350-07",
    timezone="Europe/Zurich",
    street_name="Chemin des Champs",
    street_number="3",
    city="Orbe",
    postal_code=1350,
    creation_date="2025-03-20T14:15:00",
    latitude=46.7247,
    longitude=6.5321,
    meters=(
        SimMeter(
            "64f1c2a9e3b5d7f903a2c010",
            "Introduction",
            "electricity",
            "introduction",
            10,
            "introduction",
            im_start=4_444_444,
        ),
        SimMeter(
            "64f1c2a9e3b5d7f903a2c101",
            "Centrale PV",
            "electricity",
            "production",
            101,
            "pv",
            25000,
            im_start=2_000,
            ex_start=555_555_555,
        ),
    ),
    unmetered_load=300,
)

SITES: tuple[SimSite, ...] = (SITE_LAC, SITE_CENTRALE, SITE_FERME)


# --------------------------------------------------------------------------- synthetic series


def _unit(key: str, start_s: int) -> float:
    """Return a deterministic pseudo-random number in [0, 1) for (key, instant)."""
    digest = hashlib.blake2b(f"{key}|{start_s}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def _start_s(k: int) -> int:
    """Return the epoch seconds at which interval ``k`` (counted from EPOCH) starts."""
    return EPOCH_S + k * 900


def _hour(k: int) -> float:
    """Return the UTC hour of day at the middle of interval ``k``."""
    return (k % PER_DAY) / 4 + 0.125


def _season(k: int) -> float:
    """Return 0 at the winter solstice and 1 at the summer solstice."""
    day_of_year = (k // PER_DAY + 10) % 365.25
    return (1 - math.cos(2 * math.pi * day_of_year / 365.25)) / 2


def _bump(hour: float, centre: float, width: float) -> float:
    """Return a Gaussian bump, for daily usage peaks."""
    return math.exp(-(((hour - centre) / width) ** 2))


def _in_gap(meter: SimMeter, k: int) -> bool:
    """Tell whether a gappy meter sent nothing: every 7th day 02:00-05:00 UTC."""
    return meter.gap and (k // PER_DAY) % 7 == 3 and 8 <= k % PER_DAY < 20


def _household(hour: float) -> float:
    """Return a household load shape: base, morning and evening peaks (UTC hours)."""
    return 0.4 + 0.6 * _bump(hour, 6.0, 1.2) + 1.0 * _bump(hour, 18.0, 2.0)


def _pv(scale: int, k: int, noise: float) -> int:
    """Return PV energy: zero at night, a seasonal bell around 11:30 UTC by day."""
    season = _season(k)
    half_day = 4.0 + 4.0 * season
    x = (_hour(k) - 11.5) / half_day
    if abs(x) >= 1:
        return 0
    bell = math.cos(x * math.pi / 2) ** 2
    return round(scale * (0.35 + 0.65 * season) * bell * (0.55 + 0.45 * noise))


def _apartment(scale: int, k: int, noise: float) -> int:
    """Return household consumption: a base load with morning and evening peaks."""
    return round(scale * _household(_hour(k)) * (0.5 + noise))


def _common(scale: int, k: int, noise: float) -> int:
    """Return common-area consumption: nearly flat."""
    return round(scale * (0.7 + 0.6 * noise))


def _battery_charge(scale: int, k: int, noise: float) -> int:
    """Return battery charging: from the midday PV surplus only."""
    return round(scale * (0.4 + 0.6 * noise)) if 10 <= _hour(k) < 15 else 0


def _heating(scale: int, k: int, noise: float) -> int:
    """Return heat use: large in winter, a little hot water in summer."""
    winter = max(0.0, math.cos(2 * math.pi * ((k // PER_DAY) - 15) / 365.25))
    return round(scale * (0.05 + 0.95 * winter) * (0.6 + 0.8 * noise))


def _water(scale: int, k: int, noise: float) -> int:
    """Return water volume: tiny, following household habits, often zero."""
    return round(scale * _household(_hour(k)) * noise * 1.5)


PROFILES: dict[str, Callable[[int, int, float], int]] = {
    "apartment": _apartment,
    "common": _common,
    "pv": _pv,
    "battery": _battery_charge,
    "heating": _heating,
    "water": _water,
}


def _own_total(meter: SimMeter, k: int) -> int | None:
    """Return the meter's own raw 15-minute value (thousandths), None in a gap.

    Introduction meters have no own series: they are derived from the site.
    """
    profile = PROFILES.get(meter.profile)
    if profile is None or _in_gap(meter, k):
        return None
    return profile(meter.scale, k, _unit(meter.id, _start_s(k)))


def _discharge(meter: SimMeter, k: int) -> int:
    """Return the battery's discharged energy (thousandths): evenings only."""
    if meter.mode != "battery" or not 17 <= _hour(k) < 23:
        return 0
    return round(
        meter.scale * 0.8 * (0.4 + 0.6 * _unit(f"{meter.id}|discharge", _start_s(k)))
    )


def _unmetered_load(site: SimSite, k: int) -> int:
    """Return the load of a site without consumption meters (site 3's farm)."""
    return round(
        site.unmetered_load * (0.6 + 0.8 * _unit(f"{site.id}|load", _start_s(k)))
    )


def _is_consumer(meter: SimMeter) -> bool:
    """Electricity consumption meters (rule meters included) make up conso_total."""
    return meter.type == "electricity" and meter.mode == "consumption"


def _is_producer(meter: SimMeter) -> bool:
    """Electricity production meters make up prod_total."""
    return meter.type == "electricity" and meter.mode == "production"


def compute_interval(
    site: SimSite, k: int, corrections: Mapping[tuple[str, int], int]
) -> SiteInterval:
    """Compute every meter value and site aggregate of interval ``k``.

    ``corrections`` maps (meter id, k) to a corrected total; with an empty
    mapping this is the raw meter data the registers are built from.
    """
    meters: dict[str, MeterSample] = {}
    for meter in site.meters:
        if meter.mode == "introduction":
            continue
        total = corrections.get((meter.id, k), _own_total(meter, k))
        if total is not None:
            meters[meter.id] = MeterSample(total, discharge=_discharge(meter, k))
    consumers = [meter for meter in site.meters if _is_consumer(meter)]
    if consumers:
        conso = sum(meters[m.id].total for m in consumers if m.id in meters)
    else:
        conso = _unmetered_load(site, k)
    prod = sum(
        meters[m.id].total for m in site.meters if _is_producer(m) and m.id in meters
    )
    solar = min(conso, prod)
    for meter in consumers:
        if (sample := meters.get(meter.id)) is not None:
            own = sample.total * solar // conso if conso else 0
            meters[meter.id] = MeterSample(sample.total, own, sample.total - own)
    for meter in site.meters:
        if meter.mode == "introduction":
            total = corrections.get((meter.id, k), conso - solar)
            meters[meter.id] = MeterSample(total, 0, total)
    return SiteInterval(meters, _site_fields(site, meters, conso, prod))


def _site_fields(
    site: SimSite, meters: dict[str, MeterSample], conso: int, prod: int
) -> dict[str, Fields]:
    """Build the site_data fields per meter type from the meter samples."""
    solar = min(conso, prod)
    electricity: Fields = {
        "conso_total": conso,
        "prod_total": prod,
        "from_ext": conso - solar,
        "self": solar,
        "to_ext": prod - solar,
    }
    batteries = [m for m in site.meters if m.mode == "battery" and m.id in meters]
    if batteries:
        electricity["storage_charging_total"] = sum(
            meters[m.id].total for m in batteries
        )
        electricity["storage_discharging_total"] = sum(
            meters[m.id].discharge for m in batteries
        )
    if site.per_meter_keys:
        for meter in site.meters:
            sample = meters.get(meter.id)
            if _is_consumer(meter) and sample is not None:
                electricity[f"total_{meter.id}"] = sample.total
                electricity[f"self_{meter.id}"] = sample.solar or 0
                electricity[f"ext_{meter.id}"] = sample.grid or 0
    fields = {"electricity": electricity}
    for meter_type in ("heating", "cold_water", "hot_water"):
        if site.has_type(meter_type):
            fields[meter_type] = {
                "conso_total": sum(
                    meters[m.id].total
                    for m in site.meters
                    if m.type == meter_type and m.id in meters
                )
            }
    return fields


def meter_fields(meter: SimMeter, sample: MeterSample) -> Fields:
    """Return the meter_data values of one sample (thousandths) as documented."""
    if meter.type == "electricity" and meter.mode in ("consumption", "introduction"):
        return {
            "total": sample.total,
            "self": sample.solar or 0,
            "ext": sample.grid or 0,
        }
    return {"total": sample.total}


def register_increment(
    site: SimSite, meter: SimMeter, k: int
) -> tuple[int, int] | None:
    """Return how much (en_im-like, en_ex) the meter's registers grow in interval ``k``."""
    match meter.mode:
        case "introduction":
            return _grid_import(site, k), 0
        case "production":
            total = _own_total(meter, k)
            return None if total is None else (0, total)
        case "battery":
            total = _own_total(meter, k)
            return None if total is None else (total, _discharge(meter, k))
    total = _own_total(meter, k)
    return None if total is None else (total, 0)


def _grid_import(site: SimSite, k: int) -> int:
    """Return the raw grid import (from_ext) of interval ``k``, without corrections.

    Same arithmetic as ``compute_interval`` but without building the whole
    interval: the introduction register sums it over every day since EPOCH.
    """
    consumers = [m for m in site.meters if _is_consumer(m)]
    if consumers:
        conso = sum(_own_total(m, k) or 0 for m in consumers)
    else:
        conso = _unmetered_load(site, k)
    prod = sum(_own_total(m, k) or 0 for m in site.meters if _is_producer(m))
    return conso - min(conso, prod)


@cache
def _register_days(site: SimSite, meter: SimMeter) -> list[tuple[int, int]]:
    """Cumulative register growth before each UTC day, grown on demand.

    The raw series never changes (corrections are validation only), so one cache per
    process serves every simulator instance. It is keyed by the whole site, not its
    id: a grid-intake register depends on the site's other meters, which tests change.
    """
    return [(0, 0)]


def register_before(site: SimSite, meter: SimMeter, k: int) -> tuple[int, int]:
    """Return the (im, ex) registers (thousandths) at the start of interval ``k``."""
    days = _register_days(site, meter)
    day = max(k, 0) // PER_DAY
    while len(days) <= day:
        im, ex = days[-1]
        first = (len(days) - 1) * PER_DAY
        for j in range(first, first + PER_DAY):
            if (step := register_increment(site, meter, j)) is not None:
                im, ex = im + step[0], ex + step[1]
        days.append((im, ex))
    im, ex = days[day]
    for j in range(day * PER_DAY, max(k, 0)):
        if (step := register_increment(site, meter, j)) is not None:
            im, ex = im + step[0], ex + step[1]
    return meter.im_start + im, meter.ex_start + ex


def register_row(meter: SimMeter, im: int, ex: int) -> dict[str, float]:
    """Return the raw row values for the meter's register fields."""
    names = REGISTER_FIELDS[meter.type]
    if len(names) == 2:
        return {names[0]: im / 1000, names[1]: ex / 1000}
    return {names[0]: im / 1000}


def sensor_value(sensor: SimSensor, instant_s: int) -> float:
    """Return a sensor's reading at ``instant_s``: plausible daily curves plus noise."""
    noise = _unit(sensor.id, instant_s)
    hour = (instant_s % 86400) / 3600
    daily = math.sin(2 * math.pi * (hour - 9) / 24)
    match sensor.type:
        case "humidity":
            return round(45 + 8 * daily + 4 * (noise - 0.5), 1)
        case "co2":  # whole ppm, sent as a JSON integer
            return round(450 + 250 * _household(hour) + 80 * noise)
    return round(21 + 1.2 * daily + 0.4 * (noise - 0.5), 2)


# --------------------------------------------------------------------------- helpers


def _k_floor(instant: datetime) -> int:
    """Return how many whole 15-minute steps lie between EPOCH and ``instant``."""
    return (as_utc(instant) - EPOCH) // QUARTER


def _k_ceil(instant: datetime) -> int:
    """Return the first 15-minute boundary index at or after ``instant``."""
    return -((EPOCH - as_utc(instant)) // QUARTER)


def _at(k: int) -> datetime:
    """Return the UTC instant of 15-minute boundary ``k``."""
    return EPOCH + k * QUARTER


def _label(site: SimSite, instant: datetime) -> str:
    """Format a timestamp as Climkit does: site-local time with its UTC offset."""
    return instant.astimezone(site.zone).isoformat(sep=" ")


def _scaled(values: Fields) -> dict[str, Any]:
    """Turn thousandths into the documented 3-decimal numbers."""
    return {key: value / 1000 for key, value in values.items()}


def _sum_fields(rows: list[Fields]) -> Fields:
    """Sum rows key by key (exact: thousandths are integers)."""
    total: Fields = {}
    for row in rows:
        for key, value in row.items():
            total[key] = total.get(key, 0) + value
    return total


def _buckets(
    site: SimSite, sampling: Sampling, t_s: datetime, t_e: datetime
) -> Iterator[tuple[datetime, int, int]]:
    """Yield (label, first k, end k) of every H or D bucket labelled within [t_s, t_e]."""
    if sampling == "H":
        for j in range(max(_k_ceil(t_s), 0), _k_floor(t_e) + 1):
            label = _at(j)
            if label.astimezone(site.zone).minute == 0:
                yield label, j, _k_ceil(label + timedelta(hours=1))
        return
    day = max(t_s, EPOCH - DAY).astimezone(site.zone).date()
    last = t_e.astimezone(site.zone).date()
    while day <= last:
        label = _local_midnight(site, day)
        if t_s <= label <= t_e:
            yield label, _k_ceil(label), _k_ceil(_local_midnight(site, day + DAY))
        day += DAY


def _local_midnight(site: SimSite, day: date) -> datetime:
    """Return the UTC instant at which ``day`` starts in the site's zone."""
    return datetime.combine(day, time(), tzinfo=site.zone).astimezone(UTC)


def _body_time(body: Mapping[str, Any], key: str) -> datetime | None:
    """Parse an optional t_s/t_e parameter (tz-naive UTC ISO string)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be an ISO formatted datetime string")
    try:
        return parse_iso(value)
    except ValueError as err:
        raise ApiError(400, f"invalid {key}: {value!r}") from err


def _sampling(body: Mapping[str, Any]) -> Sampling:
    """Validate ``sampling_frequency`` (default 15T)."""
    value = body.get("sampling_frequency") or "15T"
    if value in UNSUPPORTED_SAMPLING:
        raise ApiError(
            400, f"sampling_frequency {value} is not supported by the simulator"
        )
    sampling = SAMPLING_ALIASES.get(value) if isinstance(value, str) else None
    if sampling is None:
        raise ApiError(400, f"invalid sampling_frequency: {value!r}")
    return sampling  # type: ignore[return-value]


def _bearer(request: web.Request) -> str | None:
    """Return the bearer token of the request, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _jwt_like(username: str, expires: datetime) -> str:
    """Return an opaque token shaped like the JWT Climkit hands out."""

    def part(data: dict[str, Any]) -> str:
        return urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part(
        {"sub": username, "exp": int(expires.timestamp()), "jti": secrets.token_hex(8)}
    )
    return f"{header}.{payload}.{secrets.token_urlsafe(32)}"


# --------------------------------------------------------------------------- the cloud

type Endpoint = Callable[[web.Request, str], Awaitable[Any]]


@dataclass(slots=True)
class _Query:
    """A validated data request: inclusive UTC period and sampling."""

    t_s: datetime
    t_e: datetime
    sampling: Sampling = "15T"


@dataclass(eq=False)
class ClimkitCloud:
    """The Climkit cloud: accounts, tokens, data knobs, HTTP handlers and ground truth."""

    now: Now
    faults: Faults
    name: str = "climkit"
    prefix: str = PREFIX
    token_lifetime: timedelta = timedelta(minutes=15)
    min_interval: float = 1.0
    all_installations_shape: Literal["objects", "strings"] = "objects"
    max_span: timedelta | None = None
    publication_delay: timedelta = timedelta(0)
    numbers_for_text: bool = False
    """Write sites' names and references as JSON numbers: the document says
    strings, a backend may not."""
    sites: list[SimSite] = field(default_factory=lambda: list(SITES))
    users: dict[str, str] = field(
        default_factory=lambda: {DEMO_USERNAME: DEMO_PASSWORD}
    )
    _access: dict[str, frozenset[str] | None] = field(default_factory=dict)
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _late: list[_LateWindow] = field(default_factory=list)
    _corrections: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _cache: dict[tuple[str, int], SiteInterval] = field(default_factory=dict)
    _limiter: SpacingLimiter = field(default_factory=SpacingLimiter)

    # ------------------------------------------------------------------ knobs

    def add_user(
        self, username: str, password: str, site_ids: list[str] | None = None
    ) -> None:
        """Create (or reset) an account; ``site_ids`` None means every site."""
        self.users[username] = password
        self._access[username] = None if site_ids is None else frozenset(site_ids)

    def revoke(self, username: str) -> None:
        """Reject the user's password and every token already issued to them."""
        self.users.pop(username, None)
        for token in [
            t for t, info in self._tokens.items() if info.username == username
        ]:
            del self._tokens[token]

    def publish_late(
        self, start: datetime, end: datetime, site_id: str | None = None
    ) -> None:
        """Withhold every interval starting in [start, end) until ``release_late``."""
        window = _LateWindow(
            int(as_utc(start).timestamp()), int(as_utc(end).timestamp()), site_id
        )
        self._late.append(window)

    def release_late(self) -> None:
        """Publish everything ``publish_late`` withheld."""
        self._late.clear()

    def correct(
        self, site_id: str, meter_id: str, interval_start: datetime, new_total: float
    ) -> None:
        """Replace one validated 15-minute total (a late correction by Climkit).

        The site aggregates and, for consumption meters, the self/ext split are
        recomputed from it; the raw registers are not (they are the meter's).
        """
        site, meter = self._site_meter(site_id, meter_id)
        start = as_utc(interval_start)
        if (start - EPOCH) % QUARTER:
            raise ValueError("interval_start must lie on a 15-minute boundary")
        self._corrections[(site.id, meter.id, _k_floor(start))] = round(
            new_total * 1000
        )
        self._cache.clear()

    @property
    def corrections(self) -> dict[tuple[str, str, datetime], float]:
        """The corrections made so far: (site, meter, interval start) -> total."""
        return {
            (site_id, meter_id, _at(k)): value / 1000
            for (site_id, meter_id, k), value in self._corrections.items()
        }

    # ------------------------------------------------------------------ ground truth

    def truth_meter_intervals(
        self, site_id: str, meter_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, dict[str, float]]]:
        """Return the meter's intervals starting in [start, end), with their values."""
        site, meter = self._site_meter(site_id, meter_id)
        result: list[tuple[datetime, dict[str, float]]] = []
        for k in self._truth_range(start, end):
            sample = self._interval(site, k).meters.get(meter.id)
            if sample is not None:
                result.append((_at(k), _scaled(meter_fields(meter, sample))))
        return result

    def truth_meter_hourly(
        self, site_id: str, meter_id: str, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        """Return UTC hour start -> fsum of the meter's totals starting in that hour."""
        rows = self.truth_meter_intervals(site_id, meter_id, start, end)
        return _hourly((at, values["total"]) for at, values in rows)

    def truth_site_hourly(
        self, site_id: str, meter_type: str, field: str, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        """Return UTC hour start -> fsum of one site_data field over that hour."""
        site = self._site(site_id)
        values: list[tuple[datetime, float]] = []
        for k in self._truth_range(start, end):
            fields = self._interval(site, k).site.get(meter_type)
            if fields is not None and field in fields:
                values.append((_at(k), fields[field] / 1000))
        return _hourly(values)

    def truth_register(
        self, site_id: str, meter_id: str, field: str, at: datetime
    ) -> float | None:
        """Return a register's value in the last raw row ending at or before ``at``."""
        site, meter = self._site_meter(site_id, meter_id)
        names = REGISTER_FIELDS.get(meter.type, ())
        end = min(_k_floor(at), _k_floor(self.now()))
        if not meter.is_physical or field not in names or end <= 0:
            return None
        im, ex = register_before(site, meter, end)
        return register_row(meter, im, ex)[field]

    def truth_register_time(
        self, site_id: str, meter_id: str, at: datetime
    ) -> datetime | None:
        """Return the end of the last raw row at or before ``at`` (gaps send none)."""
        site, meter = self._site_meter(site_id, meter_id)
        end = min(_k_floor(at), _k_floor(self.now()))
        for k in range(end - 1, max(end - 2 * PER_DAY, -1), -1):
            if register_increment(site, meter, k) is not None:
                return _at(k + 1)
        return None

    def truth_sensor_latest(
        self, site_id: str, sensor_id: str, at: datetime
    ) -> tuple[datetime, float]:
        """Return (time, value) of the sensor's last reading at or before ``at``."""
        site = self._site(site_id)
        sensor = site.sensor(sensor_id)
        if sensor is None:
            raise KeyError(sensor_id)
        j = min(_k_floor(at), _k_floor(self.now()))
        if j < 0:
            raise LookupError("no sensor reading before the data epoch")
        return _at(j), sensor_value(sensor, _start_s(j))

    # ------------------------------------------------------------------ internals

    def _site(self, site_id: str) -> SimSite:
        """Return a site by id (KeyError for tests passing a wrong id)."""
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)

    def _site_meter(self, site_id: str, meter_id: str) -> tuple[SimSite, SimMeter]:
        """Return a site and one of its meters by id."""
        site = self._site(site_id)
        meter = site.meter(meter_id)
        if meter is None:
            raise KeyError(meter_id)
        return site, meter

    def _truth_range(self, start: datetime, end: datetime) -> range:
        """Intervals starting in [start, end) that have ended by now."""
        return range(max(_k_ceil(start), 0), min(_k_ceil(end), _k_floor(self.now())))

    def _published_limit(self) -> int:
        """Intervals with index below this have ended by now - publication_delay."""
        return _k_floor(self.now() - self.publication_delay)

    def _hidden(self, site: SimSite, k: int) -> bool:
        """Tell whether interval (or reading) ``k`` is withheld by ``publish_late``."""
        start = _start_s(k)
        return any(window.hides(site.id, start) for window in self._late)

    def _interval(self, site: SimSite, k: int) -> SiteInterval:
        """Return the validated interval ``k`` of ``site``, cached until a correction."""
        key = (site.id, k)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            corrections = {
                (meter_id, kk): value
                for (site_id, meter_id, kk), value in self._corrections.items()
                if site_id == site.id and kk == k
            }
            cached = self._cache[key] = compute_interval(site, k, corrections)
        return cached

    def _visible_sites(self, username: str) -> list[SimSite]:
        """Sites the account may see (all unless ``add_user`` restricted it)."""
        allowed = self._access.get(username)
        return [site for site in self.sites if allowed is None or site.id in allowed]

    def _visible_site(self, username: str, site_id: str) -> SimSite:
        """Return a site the account may see; unknown and forbidden both answer 404."""
        for site in self._visible_sites(username):
            if site.id == site_id:
                return site
        raise ApiError(404, f"site {site_id} not found")

    def _visible_meter(
        self, username: str, site_id: str, meter_id: str
    ) -> tuple[SimSite, SimMeter]:
        """Return a visible site and one of its meters, else 404."""
        site = self._visible_site(username, site_id)
        meter = site.meter(meter_id)
        if meter is None:
            raise ApiError(404, f"meter {meter_id} not found")
        return site, meter

    # ------------------------------------------------------------------ HTTP plumbing

    def build_app(self) -> web.Application:
        """Return the sub-application with every documented endpoint."""
        app = web.Application()
        app.router.add_post("/auth", self._handle_auth)
        routes: list[tuple[str, str, Endpoint]] = [
            ("GET", "/all_installations", self._all_installations),
            ("GET", "/installation_infos/{site_id}", self._installation_infos),
            ("GET", "/meter_info/{site_id}", self._meter_info),
            ("POST", "/site_data/{site_id}/{meter_type}", self._site_data),
            ("POST", "/meter_data/{site_id}/{meter_id}", self._meter_data),
            ("POST", "/meter_data_raw/{site_id}/{meter_id}", self._meter_data_raw),
            ("GET", "/{site_id}/sensors_list", self._sensors_list),
            ("GET", "/{site_id}/sensor_data/{sensor_id}", self._sensor_data),
        ]
        for method, path, endpoint in routes:
            app.router.add_route(method, path, self._protected(endpoint))
        return app

    def _subpath(self, request: web.Request) -> str:
        """Return the request path below the cloud prefix."""
        return request.path.removeprefix(self.prefix)

    def _check_rate(self, request: web.Request, account: str) -> None:
        """Answer 429 when the account's previous request was under min_interval ago."""
        if not self._limiter.admit(account, request[ARRIVAL], self.min_interval):
            raise ApiError(429, "Too many requests")

    def _authenticate(self, request: web.Request) -> str:
        """Return the user of a valid bearer token, else answer 401."""
        token = _bearer(request)
        if token is None:
            raise ApiError(401, "Missing Authorization Header")
        info = self._tokens.get(token)
        if info is None or info.username not in self.users:
            raise ApiError(401, "Invalid token")
        if self.now() >= info.expires:
            raise ApiError(401, "Token has expired")
        return info.username

    async def _serve(
        self, request: web.Request, *, is_auth: bool, run: Callable[[], Awaitable[Any]]
    ) -> web.Response:
        """Apply a pending fault, else run the endpoint and render its JSON."""
        kind = self.faults.take(self.name, self._subpath(request), is_auth=is_auth)
        if (
            kind is not None
            and (response := await self.faults.respond(kind)) is not None
        ):
            return response
        payload = await run()
        if kind == "missing_fields":
            payload = drop_required_fields(payload, IDENTITY_KEYS)
        return web.json_response(payload)

    def _protected(
        self, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Wrap an endpoint with token check, rate limit and faults, in that order."""

        async def handler(request: web.Request) -> web.Response:
            try:
                username = self._authenticate(request)
                request[ACCOUNT] = username
                self._check_rate(request, username)
                return await self._serve(
                    request, is_auth=False, run=lambda: endpoint(request, username)
                )
            except ApiError as err:
                return err.response()

        return handler

    async def _handle_auth(self, request: web.Request) -> web.Response:
        """POST /auth: trade username and password for a 15-minute token."""
        try:
            username, password = await self._credentials(request)
            return await self._serve(
                request, is_auth=True, run=lambda: self._login(username, password)
            )
        except ApiError as err:
            return err.response()

    async def _credentials(self, request: web.Request) -> tuple[str, str]:
        """Read the posted credentials; attribute and rate-limit by the username."""
        body = await _json_body(request)
        username, password = body.get("username"), body.get("password")
        if isinstance(username, str):
            request[ACCOUNT] = username
            self._check_rate(request, username)
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "username and password are required")
        return username, password

    async def _login(self, username: str, password: str) -> dict[str, Any]:
        """Check the credentials and issue a token."""
        if username not in self.users or not secrets.compare_digest(
            self.users[username].encode(), password.encode()
        ):
            raise ApiError(401, "Bad username or password")
        expires = self.now() + self.token_lifetime
        token = _jwt_like(username, expires)
        self._tokens[token] = _Token(username, expires)
        return {"access_token": token, "valid_until": {"$date": epoch_ms(expires)}}

    async def _query(self, request: web.Request, *, with_sampling: bool) -> _Query:
        """Read and validate the JSON body of a POST data request."""
        body = await _json_body(request)
        t_s, t_e = _body_time(body, "t_s"), _body_time(body, "t_e")
        sampling = _sampling(body) if with_sampling else "15T"
        if self.max_span is not None and (
            t_s is None or (t_e or self.now()) - t_s > self.max_span
        ):
            raise ApiError(400, "requested period too long")
        t_e = t_e or self.now()
        return _Query(t_s or t_e - DAY, t_e, sampling)

    def _text(self, value: str) -> str | int:
        """Render a text field, as a number when `numbers_for_text` says so."""
        return as_number(value) if self.numbers_for_text else value

    # ------------------------------------------------------------------ endpoints

    async def _all_installations(
        self, request: web.Request, username: str
    ) -> list[Any]:
        """GET /all_installations: the sites this account may see."""
        sites = self._visible_sites(username)
        if self.all_installations_shape == "strings":
            return [site.id for site in sites]
        return [
            {
                "id": site.id,
                "name": self._text(site.name),
                "site_ref": self._text(site.site_ref),
            }
            for site in sites
        ]

    async def _installation_infos(
        self, request: web.Request, username: str
    ) -> dict[str, Any]:
        """GET /installation_infos/<site_id>: the documented site object."""
        site = self._visible_site(username, request.match_info["site_id"])
        address: dict[str, Any] = {
            "street_name": site.street_name,
            "street_number": site.street_number,
        }
        if site.old_address_keys:
            address |= {"city_name": site.city, "city_ref": site.city_ref}
        else:
            address["city"] = site.city
        address["postal_code"] = site.postal_code
        return {
            "site_ref": self._text(site.site_ref),
            "name": self._text(site.name),
            "address": address,
            "creation_date": site.creation_date,
            "latitude": site.latitude,
            "longitude": site.longitude,
            "timezone": site.timezone,
        }

    async def _meter_info(
        self, request: web.Request, username: str
    ) -> list[dict[str, Any]]:
        """GET /meter_info/<site_id>: the meters, with site 2's key and type quirks."""
        site = self._visible_site(username, request.match_info["site_id"])
        return [
            {
                "id": meter.id,
                "type": meter.type,
                "name": meter.name,
                "mode": meter.mode,
                "prim_ad": str(meter.prim_ad)
                if site.prim_ad_as_string
                else meter.prim_ad,
                site.rule_key: meter.is_rule_meter,
            }
            for meter in site.meters
        ]

    async def _site_data(
        self, request: web.Request, username: str
    ) -> list[dict[str, Any]]:
        """POST /site_data/<site_id>/<meter_type>: validated site aggregates."""
        site = self._visible_site(username, request.match_info["site_id"])
        meter_type = request.match_info["meter_type"]
        if meter_type not in SITE_DATA_TYPES:
            raise ApiError(400, f"unknown meter type: {meter_type}")
        query = await self._query(request, with_sampling=True)
        if not site.has_type(meter_type):
            return []

        def values(k: int) -> Fields | None:
            return self._interval(site, k).site.get(meter_type)

        return self._series(site, query, values)

    async def _meter_data(
        self, request: web.Request, username: str
    ) -> list[dict[str, Any]]:
        """POST /meter_data/<site_id>/<meter_id>: validated kWh (or m³) per interval."""
        site, meter = self._visible_meter(
            username, request.match_info["site_id"], request.match_info["meter_id"]
        )
        query = await self._query(request, with_sampling=True)

        def values(k: int) -> Fields | None:
            sample = self._interval(site, k).meters.get(meter.id)
            return None if sample is None else meter_fields(meter, sample)

        return self._series(site, query, values)

    async def _meter_data_raw(
        self, request: web.Request, username: str
    ) -> list[dict[str, Any]]:
        """POST /meter_data_raw/<site_id>/<meter_id>: cumulative registers, 15-minute rows."""
        site, meter = self._visible_meter(
            username, request.match_info["site_id"], request.match_info["meter_id"]
        )
        if not meter.is_physical:
            raise ApiError(400, "raw data is only available for physical meters")
        query = await self._query(request, with_sampling=False)
        first = max(_k_ceil(query.t_s) - 1, 0)
        stop = min(_k_floor(query.t_e), self._published_limit())
        if first >= stop:
            return []
        im, ex = register_before(site, meter, first)
        rows: list[dict[str, Any]] = []
        for k in range(first, stop):
            step = register_increment(site, meter, k)
            if step is None:
                continue
            im, ex = im + step[0], ex + step[1]
            if not self._hidden(site, k):
                rows.append(
                    register_row(meter, im, ex)
                    | {"timestamp": _label(site, _at(k + 1))}
                )
        return rows

    async def _sensors_list(
        self, request: web.Request, username: str
    ) -> list[dict[str, str]]:
        """GET /<site_id>/sensors_list: the site's sensors."""
        site = self._visible_site(username, request.match_info["site_id"])
        return [
            {
                "id": s.id,
                "name": s.name,
                "type": s.type,
                "unit": s.unit,
                "model": s.model,
            }
            for s in site.sensors
        ]

    async def _sensor_data(
        self, request: web.Request, username: str
    ) -> list[dict[str, Any]]:
        """GET /<site_id>/sensor_data/<sensor_id>: readings of a period, or the latest one."""
        site = self._visible_site(username, request.match_info["site_id"])
        sensor = site.sensor(request.match_info["sensor_id"])
        if sensor is None:
            raise ApiError(404, f"sensor {request.match_info['sensor_id']} not found")
        t_s, t_e = _body_time(request.query, "t_s"), _body_time(request.query, "t_e")
        newest = self._published_limit()
        if t_s is None and t_e is None:
            latest = next(
                (j for j in range(newest, -1, -1) if not self._hidden(site, j)), None
            )
            return [] if latest is None else [self._reading(site, sensor, latest)]
        t_e = t_e or self.now()
        t_s = t_s or t_e - DAY
        return [
            self._reading(site, sensor, j)
            for j in range(max(_k_ceil(t_s), 0), min(_k_floor(t_e), newest) + 1)
            if not self._hidden(site, j)
        ]

    def _reading(self, site: SimSite, sensor: SimSensor, j: int) -> dict[str, Any]:
        """Render one sensor reading; site 2 writes its timestamps in milliseconds."""
        instant = _start_s(j)
        return {
            "timestamp": instant * 1000 if site.sensor_ms else instant,
            "value": sensor_value(sensor, instant),
        }

    def _series(
        self, site: SimSite, query: _Query, values: Callable[[int], Fields | None]
    ) -> list[dict[str, Any]]:
        """Build 15T, H or D rows of a series with inclusive label bounds."""
        limit = self._published_limit()

        def published(k: int) -> Fields | None:
            if k < 0 or k >= limit or self._hidden(site, k):
                return None
            return values(k)

        if query.sampling == "15T":
            first, stop = (
                max(_k_ceil(query.t_s) - 1, 0),
                min(_k_floor(query.t_e), limit),
            )
            return [
                _scaled(row) | {"timestamp": _label(site, _at(k + 1))}
                for k in range(first, stop)
                if (row := published(k)) is not None
            ]
        rows: list[dict[str, Any]] = []
        # Buckets labelled after now hold nothing published: stop there.
        t_e = min(query.t_e, self.now())
        for label, first, stop in _buckets(site, query.sampling, query.t_s, t_e):
            parts = [
                row
                for k in range(first, min(stop, limit))
                if (row := published(k)) is not None
            ]
            if parts:
                rows.append(
                    _scaled(_sum_fields(parts)) | {"timestamp": _label(site, label)}
                )
        return rows


def _hourly(
    values: Iterator[tuple[datetime, float]] | list[tuple[datetime, float]],
) -> dict[datetime, float]:
    """Group (interval start, value) pairs by UTC hour: the exact decimal sum.

    The cloud publishes 3-decimal numbers; an hour's truth is their exact sum (as
    the nearest float), not the float sum of their binary approximations.
    """
    hours: dict[datetime, list[Decimal]] = {}
    for at, value in values:
        hours.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(
            Decimal(repr(value))
        )
    return {hour: float(sum(parts, Decimal(0))) for hour, parts in hours.items()}


async def _json_body(request: web.Request) -> dict[str, Any]:
    """Return the JSON object body of a POST (empty body = no parameters), else 400."""
    if not request.body_exists:
        return {}
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError as err:
        raise ApiError(400, "request body is not valid JSON") from err
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body
