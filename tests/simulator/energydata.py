"""The simulated Energydata.dk cloud (DTU), written from the Energydata.dk API document.

The REST API is served below ``/energydata/api/v1`` (the real one lives at
https://admin.energydata.dk/api/v1); the S3 inbox that batch imports upload to
(https://s3.energydata.dk on the real service) lives at the server ROOT, below
``/energydata-s3``, and is attributed to this cloud in the request log and by
fault filters (its log and fault path is the full path, ``/energydata-s3/…``).
MQTT is not simulated here.

Data is synthetic and deterministic: every reading derives from (datastream id,
reading index) through blake2b noise and closed-form models, computed on demand
(registers are integrals in closed form, never running sums), so a year of
minute data streams without being precomputed. Data exists from 2025-01-01 UTC
up to the simulator's "now"; imported and overwritten readings may lie anywhere.

Decisions where the document is silent, contradicts itself or has typos
(shared/providers/NOTES.md resolves the typos; tests and clients may rely on
the rest):

* Auth: ``Authorization: Bearer <token>`` on every API request; a missing or
  unknown token is 401 ``Unauthenticated.``. Errors are JSON ``{"message": …}``
  when the ``Accept`` header mentions ``json`` (the document says to send
  ``Accept: application/json``), otherwise the same status with the message as
  ``text/plain``. Unknown paths and wrong methods are JSON 404/405 always.
* Order of checks: token (401) → fault → parameters (400) → unknown datastream
  (404, first unknown id) → unreadable datastream (403, first one) → answer.
* Values: ``ids`` is a comma-separated list of integers (spaces around ids are
  tolerated, duplicates served once). Exactly one of ``latest`` (its presence
  counts, whatever its value, as the document says) or both ``from`` and
  ``to`` (strictly ``YYYY-MM-DDTHH:MM:SS``, UTC, ``to >= from``) else 400.
  Bounds are inclusive to the millisecond: ``from <= ts <= to`` with ``to``
  taken at ``.000``. No span limit.
* CSV: no header, ``id,epoch_ms,value`` lines ended by LF (as PHP's
  fputcsv writes them), grouped by datastream in the order of ``ids``,
  chronological within a group, written in chunks of ``CHUNK_ROWS`` rows while
  generated. Doubles are printed by Python ``repr`` with a trailing ``.0``
  dropped (the document's example prints the double 24 as ``24``), integers
  as digits, strings quoted only when they contain ``,``, ``"``, CR or LF
  (RFC 4180, quotes doubled). ``latest=true`` writes one line per datastream
  that has a visible reading and nothing for the others.
* Datastream values: see ``DEMO_DATASTREAMS``. Registers never decrease; PV is
  ``0`` at night. A reading's timestamp is ``EPOCH + offset + n·period +
  jitter(n)`` with ``jitter < period``, so readings stay in order.
* ``overwrite``/ingested readings replace a generated reading with the same
  timestamp ("a reading with a duplicate timestamp overwrites the old one") or
  add one; ``late`` windows ``[start, end)`` hide every reading of their
  datastream (None: of all) until ``release_late``; ``garbage(id, n)`` makes
  the next values answer that serves the stream interleave ``n`` unparsable
  lines after its real lines, cycling through ``GARBAGE_KINDS``; ``shuffle``
  makes every values answer serve its lines in a random order (seeded, a new
  order each answer), across datastreams and write chunks: the document does
  not promise sorted rows.
* Batch import (section 4.1), all of one demo user (``USER_ID``, inbox folder
  ``USER_NAME``); every import endpoint needs a token with ``may_import``, else
  403. Create (POST ``/import?importname=…``, also read from a form body) →
  201 with the document's keys, status ``stored``; ids count up from 1340.
  GET adds ``errors`` (list of strings). DELETE → 204 (409 while ingesting).
  ``upload_url`` (only in ``stored``/``invalid``, else 409) issues a presigned
  URL below ``/energydata-s3`` on the host the client used, the document's
  query keys spelled as AWS spells them, valid ``X-Amz-Expires=7200`` s of
  simulator time. ``PUT …/validate`` (from stored/invalid/ready) and ``PUT
  …/ingest`` (from ready only) answer 202 with the import in ``validating`` /
  ``ingesting``; the step completes at the first observation of the cloud
  (any request, ``readings``, ``latest``, ``imports``) at least
  ``step_delay`` real seconds later, or at ``settle()``. Validation reads the
  uploaded object then: ``ready`` or ``invalid`` with ``errors``; ingestion
  turns the rows into data (``done``). Others are 409.
* File format: UTF-8 (BOM ignored), delimiter ``;`` unless the header line has
  ``,`` but no ``;``; RFC 4180 quoting; blank lines skipped; first header cell
  ignored, the others a datastream id or its full topic ``prefix/suffix``,
  each at most once and readable by the token that created the import;
  timestamps ``YYYY-MM-DDTHH:mm:ss.SSSZ``; doubles as decimal/exponent
  numbers, integers as digits (a ``.`` is a type error); an empty numeric
  field imports nothing, an empty string field imports ``""``; a file without
  data rows is invalid. At most ``MAX_ERRORS`` errors are listed.
* S3 (path style, bucket ``import``): only ``PUT`` of a presigned URL issued by
  this simulator; a request carrying an ``Authorization`` header is 400
  ``InvalidArgument`` (only one auth mechanism allowed, as real S3 answers; it
  proves clients do not leak the API token to S3); a missing, altered or
  never-issued signature is 403 ``SignatureDoesNotMatch``, an expired URL 403
  ``AccessDenied``. S3 errors are S3's XML, not JSON. 200 with an ``ETag``.
* Log: ``account`` is a token fingerprint (``account_of``), never the token;
  S3 requests have no account; ``X-Amz-Signature`` is masked in the log.
* Faults (cloud ``"energydata"``): the values endpoint answers
  ``malformed_json`` with 200, CSV headers and an HTML page as body, and
  ``missing_fields`` with rows lacking their timestamp (even rows) or value
  (odd rows); JSON endpoints use the shared shapes. No rate limit is
  documented, none is enforced.
"""

from collections.abc import Awaitable, Callable, Iterable, Iterator
import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
import hashlib
import hmac
import io
import math
import random
import re
import struct
import time
from typing import Any, Literal
from urllib.parse import quote, urlencode
import uuid
import xml.sax.saxutils

from aiohttp import web

from .clock import Now, as_utc, epoch_ms
from .faults import FaultKind, Faults, drop_required_fields
from .requestlog import ACCOUNT

DEMO_TOKEN = "edk-demo-token-0123456789"  # noqa: S105
READ_ONLY_TOKEN = "edk-readonly-token"  # noqa: S105
DEMO_PREFIX = "dtu-b101"

PREFIX = "/energydata/api/v1"
S3_PREFIX = "/energydata-s3"
S3_BUCKET = "import"
S3_ACCESS_KEY = "edk-s3root"
S3_SECRET = b"energydata-simulator-s3-secret"
UPLOAD_EXPIRES = 7200
USER_ID = 11
USER_NAME = "example-user"
FIRST_IMPORT_ID = 1340
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_MS = epoch_ms(EPOCH)
DAY_S = 86_400
YEAR_S = 365.25 * DAY_S
CHUNK_ROWS = 2000
MAX_ERRORS = 100
MAX_UPLOAD = 256 * 1024 * 1024
IDENTITY_KEYS = ("id", "status", "upload_url")
BROKEN_CSV_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>\n"
GARBAGE_KINDS = (
    "{id},notatime,1.0",  # timestamp is not a number
    "{id},{ts}",  # no value field
    "",  # empty line
    ",,",  # every field empty
    "{id}x,{ts},1.0",  # datastream id is not a number
    "{id},{ts},1.0,2.0",  # one field too many
)

type Datatype = Literal["double", "integer", "string"]
type Behaviour = Literal["register", "interval", "sample", "state", "none"]
type Value = float | int | str
type Reading = tuple[int, Value]
type ImportStatus = Literal[
    "stored", "validating", "ready", "invalid", "ingesting", "done"
]

# Set on a request that drew the ``missing_fields`` fault.
_DAMAGED = web.RequestKey("energydata_damaged", bool)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_IMPORT_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_DOUBLE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class RegisterModel:
    """A cumulative register: the closed-form integral of a positive flow, plus noise.

    The flow is ``rate + Σ amp·cos(2π(t - phase)/period)`` units per second
    (``rate`` exceeds the amplitudes, so the register rises); the value is
    ``start`` plus the integral up to the reading, in integer units, plus a
    small per-reading noise that never makes it go backwards. ``scale``
    units make one served unit (1000 Wh = 1 kWh, 1000 L = 1 m³).
    """

    start: int
    rate: float
    terms: tuple[tuple[float, float, float], ...]
    scale: int = 1


@dataclass(frozen=True, slots=True)
class PvModel:
    """Energy per interval of a PV array: clear-sky sun times clouds, 0 at night."""

    peak_w: float
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class SampleModel:
    """A sampled quantity: mean, daily and seasonal cosines, noise; ``decimals`` kept."""

    mean: float
    daily_amp: float
    peak_hour: float
    season_amp: float
    noise: float
    decimals: int = 2


@dataclass(frozen=True, slots=True)
class StateModel:
    """A state by UTC hour, scheduled states at fixed minutes of the day, rare faults."""

    hours: tuple[tuple[int, int, str], ...]
    default: str
    scheduled: tuple[tuple[int, str], ...] = ()
    rare: str = ""
    rare_probability: float = 0.0


type Model = RegisterModel | PvModel | SampleModel | StateModel | None


@dataclass(frozen=True, slots=True)
class SimDatastream:
    """One datastream: identity, MQTT topic parts, type, unit and how it behaves.

    Reading ``n`` is at ``EPOCH + offset_ms + n·period_s·1000 + jitter(n)``
    with ``0 <= jitter(n) < jitter_ms``; ``behaviour`` "none" has no generated
    readings (only overwritten or imported ones).
    """

    id: int
    name: str
    prefix: str
    suffix: str
    datatype: Datatype
    unit: str
    behaviour: Behaviour = "none"
    period_s: int = 60
    offset_ms: int = 0
    jitter_ms: int = 0
    model: Model = None

    def __post_init__(self) -> None:
        """Keep readings in order: the jitter must stay below the period."""
        if not 0 <= self.jitter_ms <= self.period_s * 1000:
            raise ValueError("jitter_ms must lie in [0, period]")

    @property
    def topic(self) -> str:
        """The MQTT topic: ``<dataset prefix>/<topic suffix>``."""
        return f"{self.prefix}/{self.suffix}"

    @property
    def period_ms(self) -> int:
        """Milliseconds between two readings."""
        return self.period_s * 1000

    def nominal_ms(self, n: int) -> int:
        """Return reading ``n``'s timestamp before jitter."""
        return EPOCH_MS + self.offset_ms + n * self.period_ms


MAIN_METER_ID = 65603
PV_YIELD_ID = 65607
ROOM_TEMPERATURE_ID = 65863
HEATING_VOLUME_ID = 70001
BATTERY_STATE_ID = 70002
GAS_METER_ID = 70003

# What a user enters for the demo datastreams (the datastream form of the
# integration): the tests and scripts/bench configure entries with it.
USER_DATASTREAMS: dict[int, dict[str, Any]] = {
    65603: {
        "name": "Main meter",
        "quantity": "energy",
        "unit": "kWh",
        "meaning": "register",
        "topic": "dtu-b101/meter/main/energy",
    },
    65607: {
        "name": "PV yield",
        "quantity": "energy",
        "unit": "Wh",
        "meaning": "amount_end",
        "topic": "dtu-b101/pv/yield",
    },
    65863: {
        "name": "Room temperature",
        "quantity": "temperature",
        "unit": "°C",
        "meaning": "measurement",
        "topic": "dtu-b101/room/12/temperature",
    },
    70001: {
        "name": "District heating",
        "quantity": "water",
        "unit": "m³",
        "meaning": "register",
        "topic": "",
    },
    70002: {
        "name": "Battery state",
        "quantity": "text",
        "unit": "",
        "meaning": "measurement",
        "topic": "",
    },
    70003: {
        "name": "Gas meter",
        "quantity": "gas",
        "unit": "L",
        "meaning": "register",
        "topic": "",
    },
}

_JAN15 = 14 * DAY_S  # seasonal peak (heating, gas) in seconds after EPOCH

DEMO_DATASTREAMS: tuple[SimDatastream, ...] = (
    SimDatastream(
        MAIN_METER_ID,
        "Building 101 main meter",
        DEMO_PREFIX,
        "meter/main/energy",
        "double",
        "kWh",
        "register",
        period_s=60,
        jitter_ms=2500,
        # About 40 kW on average, more by day and in winter; kWh with 3 decimals.
        model=RegisterModel(
            start=512_340_000,
            rate=11.1,
            terms=((4.2, DAY_S, 11 * 3600), (2.0, YEAR_S, _JAN15)),
            scale=1000,
        ),
    ),
    SimDatastream(
        PV_YIELD_ID,
        "Building 101 PV yield",
        DEMO_PREFIX,
        "pv/yield",
        "double",
        "Wh",
        "interval",
        period_s=300,
        # A 60 kWp roof at DTU Lyngby; each value is the energy of the 5 minutes
        # ENDING at its timestamp, in Wh with one decimal.
        model=PvModel(peak_w=60_000, latitude=55.786, longitude=12.524),
    ),
    SimDatastream(
        ROOM_TEMPERATURE_ID,
        "Room 12 temperature",
        DEMO_PREFIX,
        "room/12/temperature",
        "double",
        "°C",
        "sample",
        period_s=60,
        offset_ms=20_000,
        jitter_ms=2000,
        model=SampleModel(
            mean=21.0, daily_amp=1.2, peak_hour=14.0, season_amp=0.5, noise=0.3
        ),
    ),
    SimDatastream(
        HEATING_VOLUME_ID,
        "District heating volume",
        DEMO_PREFIX,
        "heating/volume",
        "double",
        "m³",
        "register",
        period_s=900,
        # About 1.2 m³/h, mostly in winter and in the morning; m³ with 3 decimals.
        model=RegisterModel(
            start=48_213_000,
            rate=0.3333,
            terms=((0.25, YEAR_S, _JAN15), (0.05, DAY_S, 6 * 3600)),
            scale=1000,
        ),
    ),
    SimDatastream(
        BATTERY_STATE_ID,
        "Battery state",
        DEMO_PREFIX,
        "battery/state",
        "string",
        "",
        "state",
        period_s=900,
        model=StateModel(
            hours=((9, 15, "charging"), (16, 21, "discharging")),
            default="idle",
            scheduled=((180, "balancing cells 3,4"),),  # 03:00 UTC every day
            rare='fault "E42"',
            rare_probability=0.01,
        ),
    ),
    SimDatastream(
        GAS_METER_ID,
        "Gas meter",
        DEMO_PREFIX,
        "meter/gas/volume",
        "integer",
        "L",
        "register",
        period_s=3600,
        # A cumulative register in whole litres (integer), one reading an hour.
        model=RegisterModel(
            start=7_654_321,
            rate=0.83,
            terms=((0.5, YEAR_S, _JAN15), (0.15, DAY_S, 7 * 3600)),
        ),
    ),
)


# --------------------------------------------------------------------------- synthetic values


_UNPACK_8Q = struct.Struct(">8Q").unpack


@lru_cache(maxsize=256)
def _block(stream_id: int, block: int) -> tuple[float, ...]:
    """Return 8 uniforms in [0, 1): two for each reading ``4·block … 4·block + 3``."""
    digest = hashlib.blake2b(f"edk|{stream_id}|{block}".encode(), digest_size=64)
    return tuple(value / 2**64 for value in _UNPACK_8Q(digest.digest()))


def _draws(stream_id: int, n: int) -> tuple[float, float]:
    """Return reading ``n``'s two uniforms: (timestamp jitter, value noise)."""
    block = _block(stream_id, n >> 2)
    index = (n & 3) << 1
    return block[index], block[index + 1]


@lru_cache(maxsize=512)
def _day_draw(stream_id: int, day: int) -> float:
    """Return one uniform per datastream and day (a cloudy or a sunny day)."""
    digest = hashlib.blake2b(f"edk-day|{stream_id}|{day}".encode(), digest_size=8)
    return int.from_bytes(digest.digest()) / 2**64


type ValueFunction = Callable[[int, float], Value]


def _register(stream: SimDatastream, model: RegisterModel) -> ValueFunction:
    """Return the register's value function: strictly increasing in ``n``.

    The value is ``start + floor(∫flow) + noise`` with the noise below half the
    least a period can add, so no reading is below its predecessor.
    """
    slowest = (
        model.rate - sum(abs(amp) for amp, _, _ in model.terms)
    ) * stream.period_s
    if slowest <= 0:
        raise ValueError("a register's rate must exceed its amplitudes")
    noise_span = max(1, int(slowest) // 2)
    terms = tuple(
        (
            amp * period / (2 * math.pi),
            2 * math.pi / period,
            phase,
            math.sin(2 * math.pi * -phase / period),
        )
        for amp, period, phase in model.terms
    )
    offset_s, period_s = stream.offset_ms / 1000, stream.period_s
    integer = stream.datatype == "integer"
    sin, floor = math.sin, math.floor

    def value(n: int, u: float) -> Value:
        t = offset_s + n * period_s
        total = model.rate * t
        for factor, omega, phase, sin0 in terms:
            total += factor * (sin(omega * (t - phase)) - sin0)
        units = model.start + floor(total) + int(u * noise_span)
        return units // model.scale if integer else units / model.scale

    return value


def _sun(model: PvModel, t: float) -> float:
    """Return the clear-sky irradiance fraction (0…1) at ``t`` seconds after EPOCH."""
    day = t / DAY_S
    declination = math.radians(23.44) * math.sin(2 * math.pi * (day - 80) / 365.25)
    solar_hour = (t % DAY_S) / 3600 + model.longitude / 15
    angle = math.radians(15 * (solar_hour - 12))
    lat = math.radians(model.latitude)
    sin_elevation = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(
        declination
    ) * math.cos(angle)
    if sin_elevation <= 0.02:
        return 0.0
    return sin_elevation**1.15


def _pv(stream: SimDatastream, model: PvModel) -> ValueFunction:
    """Return the value function: Wh (one decimal) of the interval ending at ``n``."""

    def value(n: int, u: float) -> Value:
        end = (stream.offset_ms + n * stream.period_ms) / 1000
        sun = _sun(model, end - stream.period_s / 2)
        if sun == 0.0:
            return 0.0
        day_draw = _day_draw(stream.id, int(end // DAY_S))
        clearness = min(1.0, (0.3 + 0.7 * day_draw**0.35) * (0.8 + 0.25 * u))
        return round(model.peak_w * sun * clearness * stream.period_s / 3600, 1)

    return value


def _sample(stream: SimDatastream, model: SampleModel) -> ValueFunction:
    """Return the value function: daily and seasonal cosines plus noise."""

    def value(n: int, u: float) -> Value:
        t = (stream.offset_ms + n * stream.period_ms) / 1000
        hour = (t % DAY_S) / 3600
        sampled = (
            model.mean
            + model.daily_amp * math.cos(2 * math.pi * (hour - model.peak_hour) / 24)
            + model.season_amp * math.cos(2 * math.pi * (t - _JAN15) / YEAR_S)
            + (u - 0.5) * model.noise
        )
        return round(sampled, model.decimals)

    return value


def _state(stream: SimDatastream, model: StateModel) -> ValueFunction:
    """Return the value function: scheduled state, else rare fault, else by hour."""

    def value(n: int, u: float) -> Value:
        t = (stream.offset_ms + n * stream.period_ms) // 1000
        minute = (t % DAY_S) // 60
        for at, state in model.scheduled:
            if minute == at:
                return state
        if u < model.rare_probability:
            return model.rare
        hour = minute // 60
        for start, end, state in model.hours:
            if start <= hour < end:
                return state
        return model.default

    return value


@lru_cache(maxsize=64)
def value_function(stream: SimDatastream) -> ValueFunction:
    """Return ``f(n, u)``: the generated value of reading ``n`` with noise ``u``."""
    model = stream.model
    match model:
        case RegisterModel():
            return _register(stream, model)
        case PvModel():
            return _pv(stream, model)
        case SampleModel():
            return _sample(stream, model)
        case StateModel():
            return _state(stream, model)
    raise ValueError(f"datastream {stream.id} has no generated values")


def generated_ts(stream: SimDatastream, n: int) -> int:
    """Return reading ``n``'s timestamp in epoch milliseconds."""
    jitter, _ = _draws(stream.id, n)
    return stream.nominal_ms(n) + int(jitter * stream.jitter_ms)


def generated_reading(stream: SimDatastream, n: int) -> Reading:
    """Return reading ``n`` (timestamp, value) before any overwrite."""
    jitter, noise = _draws(stream.id, n)
    return (
        stream.nominal_ms(n) + int(jitter * stream.jitter_ms),
        value_function(stream)(n, noise),
    )


def _first_at_or_after(stream: SimDatastream, t_ms: int) -> int:
    """Return the first reading index whose timestamp is >= ``t_ms``."""
    base = EPOCH_MS + stream.offset_ms
    n = max(0, -(-(t_ms - base - max(stream.jitter_ms - 1, 0)) // stream.period_ms))
    while generated_ts(stream, n) < t_ms:
        n += 1
    return n


def _last_at_or_before(stream: SimDatastream, t_ms: int) -> int:
    """Return the last reading index whose timestamp is <= ``t_ms`` (-1: none)."""
    n = (t_ms - EPOCH_MS - stream.offset_ms) // stream.period_ms
    if n < 0:
        return -1
    while n >= 0 and generated_ts(stream, n) > t_ms:
        n -= 1
    return n


def _string_field(value: Value) -> str:
    """Render a string value, quoted only when RFC 4180 needs it."""
    text = str(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _integer_field(value: Value) -> str:
    """Render an integer value."""
    return str(int(value))


def _double_field(value: Value) -> str:
    """Render a double as the API does: ``24`` for 24.0, else Python's repr."""
    return repr(float(value)).removesuffix(".0")


def formatter(stream: SimDatastream) -> Callable[[Value], str]:
    """Return the function rendering this datastream's values as CSV fields."""
    return {
        "string": _string_field,
        "integer": _integer_field,
        "double": _double_field,
    }[stream.datatype]


def format_value(stream: SimDatastream, value: Value) -> str:
    """Render a value as the CSV field the API writes."""
    return formatter(stream)(value)


def _coerce(stream: SimDatastream, value: Any) -> Value:
    """Check a value against the datastream's type (bool is never a number)."""
    match stream.datatype:
        case "string":
            if isinstance(value, str):
                return value
        case "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        case "double":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    return float(value)
    raise TypeError(f"{value!r} is not a valid {stream.datatype} value")


# --------------------------------------------------------------------------- tokens, windows, imports


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a token may do: read datastreams (None = all), import, MQTT prefixes."""

    readable: frozenset[int] | None = None
    may_import: bool = False
    mqtt_prefixes: tuple[str, ...] = ()

    def may_read(self, stream_id: int) -> bool:
        """Tell whether the token reads this datastream."""
        return self.readable is None or stream_id in self.readable


@dataclass(frozen=True, slots=True)
class _LateWindow:
    """Readings with start <= ts < end (epoch ms) are withheld until release."""

    stream_id: int | None
    start: int
    end: int

    def hides(self, stream_id: int, ts: int) -> bool:
        """Tell whether the reading at ``ts`` of this datastream is withheld."""
        return self.start <= ts < self.end and self.stream_id in (None, stream_id)


@dataclass(slots=True)
class SimImport:
    """One batch import job and its uploaded object's key."""

    id: int
    name: str
    status: ImportStatus
    created_at: datetime
    updated_at: datetime
    key: str
    readable: frozenset[int] | None
    errors: list[str] = field(default_factory=list)
    rows: list[tuple[int, int, Value]] = field(default_factory=list)
    due: float | None = None

    def as_json(self, *, errors: bool = True) -> dict[str, Any]:
        """Render the import in the document's key order (``errors`` after them)."""
        body: dict[str, Any] = {
            "user_id": USER_ID,
            "status": self.status,
            "name": self.name,
            "updated_at": _laravel_time(self.updated_at),
            "created_at": _laravel_time(self.created_at),
            "id": self.id,
        }
        if errors:
            body["errors"] = list(self.errors)
        return body


class ApiError(Exception):
    """An API error: status and message, rendered as JSON or plain text."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status and message."""
        super().__init__(message)
        self.status = status
        self.message = message


class S3Error(Exception):
    """An S3 error: status, S3 code and message, rendered as S3's XML."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Keep the status, code and message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self, resource: str) -> web.Response:
        """Render the error as S3 does."""
        esc = xml.sax.saxutils.escape
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{esc(self.code)}</Code><Message>{esc(self.message)}</Message>"
            f"<Resource>{esc(resource)}</Resource><RequestId>simulator</RequestId></Error>"
        )
        return web.Response(
            text=body, status=self.status, content_type="application/xml"
        )


type Endpoint = Callable[[web.Request, TokenGrant], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- the cloud


@dataclass(eq=False)
class EnergydataCloud:
    """The Energydata.dk cloud: tokens, datastreams, knobs, HTTP handlers, ground truth.

    Knobs: ``tokens`` (or ``add_token``/``revoke``), ``datastreams`` (or
    ``add_datastream``), ``late``/``release_late``, ``overwrite``, ``garbage``,
    ``shuffle``,
    ``step_delay`` (seconds an import step takes) and ``settle``.
    """

    now: Now
    faults: Faults
    name: str = "energydata"
    prefix: str = PREFIX
    root_paths: tuple[str, ...] = (f"{S3_PREFIX}/",)
    step_delay: float = 0.05
    tokens: dict[str, TokenGrant] = field(
        default_factory=lambda: {
            DEMO_TOKEN: TokenGrant(None, True, (DEMO_PREFIX,)),
            READ_ONLY_TOKEN: TokenGrant(
                frozenset({MAIN_METER_ID, PV_YIELD_ID}), False, ()
            ),
        }
    )
    datastreams: dict[int, SimDatastream] = field(
        default_factory=lambda: {stream.id: stream for stream in DEMO_DATASTREAMS}
    )
    ingested: dict[int, list[Reading]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    _imports: dict[int, SimImport] = field(default_factory=dict)
    _next_import: int = FIRST_IMPORT_ID
    _overrides: dict[int, dict[int, Value]] = field(default_factory=dict)
    _late: list[_LateWindow] = field(default_factory=list)
    _garbage: dict[int, int] = field(default_factory=dict)
    _shuffle: random.Random | None = None
    _signatures: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ knobs

    def add_token(
        self,
        token: str,
        readable: Iterable[int] | None = None,
        may_import: bool = False,
        prefixes: Iterable[str] = (),
    ) -> TokenGrant:
        """Create (or replace) a token; ``readable`` None reads every datastream."""
        grant = TokenGrant(
            None if readable is None else frozenset(readable),
            may_import,
            tuple(prefixes),
        )
        self.tokens[token] = grant
        return grant

    def revoke(self, token: str) -> None:
        """Reject the token from now on."""
        self.tokens.pop(token, None)

    def add_datastream(self, stream: SimDatastream) -> None:
        """Add (or replace) a datastream, e.g. one without values (behaviour "none")."""
        self.datastreams[stream.id] = stream

    def by_topic(self, topic: str) -> SimDatastream | None:
        """Return the datastream with this full MQTT topic, if any."""
        for stream in self.datastreams.values():
            if stream.topic == topic:
                return stream
        return None

    def late(
        self,
        datastream_id: int | None,
        start: datetime | int,
        end: datetime | int,
    ) -> None:
        """Withhold readings with start <= ts < end (None: of every datastream)."""
        if datastream_id is not None:
            self._stream(datastream_id)
        self._late.append(_LateWindow(datastream_id, _ms(start), _ms(end)))

    def release_late(self) -> None:
        """Publish everything ``late`` withheld."""
        self._late.clear()

    def overwrite(self, datastream_id: int, ts_ms: int, value: Value) -> None:
        """Store a reading at ``ts_ms``, replacing any reading with that timestamp."""
        stream = self._stream(datastream_id)
        self._overrides.setdefault(stream.id, {})[int(ts_ms)] = _coerce(stream, value)

    def garbage(self, datastream_id: int, count: int) -> None:
        """Interleave ``count`` unparsable lines into the next answer serving the stream."""
        self._stream(datastream_id)
        if count < 1:
            raise ValueError("count must be at least 1")
        self._garbage[datastream_id] = self._garbage.get(datastream_id, 0) + count

    def shuffle(self, seed: int | None = 0) -> None:
        """Serve values answers in a random order from now on (None: sorted again).

        The whole answer is shuffled (held in memory: a test knob, not for a year).
        """
        self._shuffle = None if seed is None else random.Random(seed)  # noqa: S311

    def settle(self) -> None:
        """Complete every pending validation or ingestion now."""
        self._advance(force=True)

    @property
    def imports(self) -> dict[int, SimImport]:
        """Every import not deleted, by id (pending steps are advanced first)."""
        self._advance()
        return self._imports

    @staticmethod
    def account_of(token: str) -> str:
        """Return the request log's account for a token: a fingerprint, never the token."""
        return "edk-" + hashlib.sha256(token.encode()).hexdigest()[:10]

    # ------------------------------------------------------------------ ground truth

    def readings(
        self, datastream_id: int, start: datetime | int, end: datetime | int
    ) -> list[Reading]:
        """Every reading with start <= ts <= end, overwrites applied, late ones included."""
        self._advance()
        stream = self._stream(datastream_id)
        return list(self._span(stream, _ms(start), _ms(end), hide=False))

    def latest(self, datastream_id: int) -> Reading | None:
        """Return the reading ``latest=true`` serves right now (late windows respected)."""
        self._advance()
        return self._latest(self._stream(datastream_id))

    # ------------------------------------------------------------------ data

    def _stream(self, datastream_id: int) -> SimDatastream:
        """Return a datastream or raise KeyError."""
        try:
            return self.datastreams[datastream_id]
        except KeyError:
            raise KeyError(f"unknown datastream {datastream_id}") from None

    def _now_ms(self) -> int:
        """Return the simulator clock in epoch milliseconds."""
        return epoch_ms(self.now())

    def _hidden(self, stream_id: int, ts: int) -> bool:
        """Tell whether a late window withholds this reading."""
        return any(window.hides(stream_id, ts) for window in self._late)

    def _span(
        self, stream: SimDatastream, start: int, end: int, *, hide: bool
    ) -> Iterator[Reading]:
        """Yield the readings in [start, end], generated and overwritten, in order."""
        overrides = sorted(
            (ts, value)
            for ts, value in self._overrides.get(stream.id, {}).items()
            if start <= ts <= end
        )
        windows = (
            [w for w in self._late if w.stream_id in (None, stream.id)] if hide else []
        )
        generated = self._generated(stream, start, end)
        merged = _merge(generated, overrides) if overrides else generated
        if not windows:
            yield from merged
            return
        for ts, value in merged:
            if not any(w.start <= ts < w.end for w in windows):
                yield ts, value

    def _generated(
        self, stream: SimDatastream, start: int, end: int
    ) -> Iterator[Reading]:
        """Yield the generated readings in [start, min(end, now)]."""
        if stream.model is None or stream.behaviour == "none":
            return
        last = _last_at_or_before(stream, min(end, self._now_ms()))
        first = _first_at_or_after(stream, max(start, EPOCH_MS))
        value = value_function(stream)
        base, period, jitter = stream.nominal_ms(0), stream.period_ms, stream.jitter_ms
        for n in range(first, last + 1):
            block = _block(stream.id, n >> 2)
            index = (n & 3) << 1
            yield (
                base + n * period + int(block[index] * jitter),
                value(n, block[index + 1]),
            )

    def _latest(self, stream: SimDatastream) -> Reading | None:
        """Return the newest visible reading, generated or overwritten."""
        best: Reading | None = None
        if stream.model is not None and stream.behaviour != "none":
            upto = self._now_ms()
            while (n := _last_at_or_before(stream, upto)) >= 0:
                reading = generated_reading(stream, n)
                window = next(
                    (w for w in self._late if w.hides(stream.id, reading[0])), None
                )
                if window is None:
                    best = reading
                    break
                upto = window.start - 1
        overrides = self._overrides.get(stream.id, {})
        visible = [ts for ts in overrides if not self._hidden(stream.id, ts)]
        if visible and (best is None or max(visible) >= best[0]):
            newest = max(visible)
            best = (newest, overrides[newest])
        return best

    # ------------------------------------------------------------------ imports

    def _advance(self, *, force: bool = False) -> None:
        """Complete every validation or ingestion whose step time has passed."""
        clock = time.monotonic()
        for job in list(self._imports.values()):
            if job.due is None or (not force and clock < job.due):
                continue
            job.due = None
            job.updated_at = self.now()
            if job.status == "validating":
                self._validate(job)
            elif job.status == "ingesting":
                for stream_id, ts, value in job.rows:
                    self._overrides.setdefault(stream_id, {})[ts] = value
                    self.ingested.setdefault(stream_id, []).append((ts, value))
                job.status = "done"

    def _validate(self, job: SimImport) -> None:
        """Parse the uploaded object: ``ready`` with rows, or ``invalid`` with errors."""
        data = self.uploads.get(job.key)
        if data is None:
            rows, errors = [], ["The import file has not been uploaded."]
        else:
            rows, errors = self._parse_upload(data, job.readable)
        if len(errors) > MAX_ERRORS:
            errors = [
                *errors[:MAX_ERRORS],
                f"... and {len(errors) - MAX_ERRORS} more errors",
            ]
        job.errors = errors
        job.rows = [] if errors else rows
        job.status = "invalid" if errors else "ready"

    def _parse_upload(
        self, data: bytes, readable: frozenset[int] | None
    ) -> tuple[list[tuple[int, int, Value]], list[str]]:
        """Validate an import file (document section 4.1.2); return rows and errors."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [], ["The file is not valid UTF-8."]
        first_line = text.lstrip("\r\n").split("\n", 1)[0]
        if not first_line.strip():
            return [], ["The file is empty."]
        delimiter = "," if "," in first_line and ";" not in first_line else ";"
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = next(row for row in reader if row)
        except csv.Error as err:
            return [], [f"Row 1: {err}."]
        columns: list[SimDatastream] = []
        errors: list[str] = []
        for index, cell in enumerate(header[1:], start=2):
            label = cell.strip()
            stream = (
                self.datastreams.get(int(label))
                if label.isdigit()
                else self.by_topic(label)
            )
            if stream is None:
                errors.append(f"Column {index}: unknown datastream '{label}'.")
            elif readable is not None and stream.id not in readable:
                errors.append(
                    f"Column {index}: datastream {stream.id} is not accessible "
                    "with this token."
                )
            elif stream in columns:
                errors.append(f"Column {index}: datastream {stream.id} appears twice.")
            else:
                columns.append(stream)
        if not header[1:]:
            errors.append("Row 1: the header names no datastream.")
        if errors:
            return [], errors
        rows: list[tuple[int, int, Value]] = []
        line = reader.line_num
        try:
            for record in reader:
                line = reader.line_num
                if not record:
                    continue
                errors.extend(_parse_row(line, record, columns, rows))
        except csv.Error as err:
            errors.append(f"Row {line + 1}: {err}.")
        if not rows and not errors:
            errors.append("The file contains no data rows.")
        return rows, errors

    def _new_import(self, name: str, grant: TokenGrant) -> SimImport:
        """Create an import in status ``stored`` with its object key."""
        now = self.now()
        import_id = self._next_import
        self._next_import += 1
        object_id = uuid.UUID(
            bytes=hashlib.blake2b(
                f"import|{import_id}|{name}".encode(), digest_size=16
            ).digest(),
            version=4,
        )
        job = SimImport(
            import_id,
            name,
            "stored",
            now,
            now,
            f"inbox/{USER_NAME}/{object_id}.csv",
            grant.readable,
        )
        self._imports[import_id] = job
        return job

    def _upload_url(self, origin: str, job: SimImport) -> str:
        """Presign a PUT of the import's object, valid ``UPLOAD_EXPIRES`` seconds."""
        now = as_utc(self.now())
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        credential = f"{S3_ACCESS_KEY}/{now:%Y%m%d}/default/s3/aws4_request"
        resource = f"/{S3_BUCKET}/{job.key}"
        signature = _sign(resource, amz_date, credential, str(UPLOAD_EXPIRES))
        self._signatures.add(signature)
        query = urlencode(
            [
                ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                ("X-Amz-Credential", credential),
                ("X-Amz-Date", amz_date),
                ("X-Amz-SignedHeaders", "host"),
                ("X-Amz-Expires", str(UPLOAD_EXPIRES)),
                ("X-Amz-Signature", signature),
            ],
            quote_via=quote,
            safe="",
        )
        return f"{origin}{S3_PREFIX}{resource}?{query}"

    # ------------------------------------------------------------------ HTTP plumbing

    def build_app(self) -> web.Application:
        """Return the sub-application with the values and batch import endpoints."""
        app = web.Application()
        app.router.add_get(
            "/datastreams/values", self._protected(self._values, csv_answer=True)
        )
        app.router.add_post("/import", self._protected(self._create_import))
        app.router.add_get("/import/{id}", self._protected(self._show_import))
        app.router.add_delete("/import/{id}", self._protected(self._delete_import))
        app.router.add_get(
            "/import/{id}/upload_url", self._protected(self._get_upload_url)
        )
        app.router.add_put("/import/{id}/validate", self._protected(self._validate_job))
        app.router.add_put("/import/{id}/ingest", self._protected(self._ingest_job))
        return app

    def add_root_routes(self, app: web.Application) -> None:
        """Add the S3 inbox at the server root, below ``/energydata-s3``."""
        app.router.add_put(S3_PREFIX + "/{resource:.+}", self._s3_put)

    def _protected(
        self, endpoint: Endpoint, *, csv_answer: bool = False
    ) -> Callable[[web.Request], Any]:
        """Wrap an endpoint with token check (401), fault and error rendering."""

        async def handler(request: web.Request) -> web.StreamResponse:
            self._advance()
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            grant = (
                self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            )
            if grant is None:
                return _error(request, 401, "Unauthenticated.")
            request[ACCOUNT] = self.account_of(token.strip())
            kind = self.faults.take(self.name, request.path.removeprefix(self.prefix))
            if kind is not None and kind != "missing_fields":
                if kind == "malformed_json" and csv_answer:
                    return _broken_csv()
                return await self._fault(request, kind)
            request[_DAMAGED] = kind == "missing_fields"
            try:
                return await endpoint(request, grant)
            except ApiError as err:
                return _error(request, err.status, err.message)

        return handler

    async def _fault(self, request: web.Request, kind: FaultKind) -> web.Response:
        """Answer a request hit by a fault in Laravel's shapes where they differ."""
        match kind:
            case "http_500":
                return _error(request, 500, "Server Error")
            case "http_401":
                return _error(request, 401, "Unauthenticated.")
            case "http_429":
                response = _error(request, 429, "Too Many Attempts.")
                response.headers["Retry-After"] = "1"
                return response
        response = await self.faults.respond(kind)
        assert response is not None
        return response

    def _json(
        self, request: web.Request, payload: Any, status: int = 200
    ) -> web.Response:
        """Render a JSON answer, damaged when the request drew ``missing_fields``."""
        if request.get(_DAMAGED):
            payload = drop_required_fields(payload, IDENTITY_KEYS)
        return web.json_response(payload, status=status)

    # ------------------------------------------------------------------ values

    async def _values(
        self, request: web.Request, grant: TokenGrant
    ) -> web.StreamResponse:
        """GET /datastreams/values: latest values or a span, streamed as CSV."""
        query = request.query
        ids = _parse_ids(query.get("ids"))
        has_span = "from" in query or "to" in query
        if "latest" in query and has_span:
            raise ApiError(400, "Give either latest or from and to, not both.")
        if "latest" not in query and not has_span:
            raise ApiError(400, "Give latest=true, or from and to.")
        span: tuple[int, int] | None = None
        if has_span:
            start = _parse_timestamp(query, "from")
            end = _parse_timestamp(query, "to")
            if end < start:
                raise ApiError(
                    400, "The to field must be a date after or equal to from."
                )
            span = (start, end)
        streams = [self._existing(stream_id) for stream_id in ids]
        for stream in streams:
            if not grant.may_read(stream.id):
                raise ApiError(
                    403, f"Access to datastream {stream.id} is not permitted."
                )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=UTF-8",
                "Content-Disposition": "attachment; filename=data.csv",
                "Content-Description": "File Transfer",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        lines = self._lines(streams, span)
        if request.get(_DAMAGED):
            lines = _strip_fields(lines)
        if self._shuffle is not None:
            shuffled = list(lines)
            self._shuffle.shuffle(shuffled)
            lines = iter(shuffled)
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= CHUNK_ROWS:
                await response.write("".join(batch).encode())
                batch.clear()
        if batch:
            await response.write("".join(batch).encode())
        await response.write_eof()
        return response

    def _existing(self, stream_id: int) -> SimDatastream:
        """Return an existing datastream (404 otherwise); access is checked after."""
        stream = self.datastreams.get(stream_id)
        if stream is None:
            raise ApiError(404, f"Datastream {stream_id} not found.")
        return stream

    def _lines(
        self, streams: list[SimDatastream], span: tuple[int, int] | None
    ) -> Iterator[str]:
        """Yield the CSV lines of an answer, garbage interleaved where asked."""
        for stream in streams:
            if span is None:
                reading = self._latest(stream)
                readings: Iterable[Reading] = [] if reading is None else [reading]
            else:
                readings = self._span(stream, span[0], span[1], hide=True)
            garbage = self._garbage.pop(stream.id, 0)
            emitted = 0
            ts = self._now_ms()
            render = formatter(stream)
            for ts, value in readings:
                yield f"{stream.id},{ts},{render(value)}\n"
                if emitted < garbage:
                    yield _garbage_line(emitted, stream.id, ts)
                    emitted += 1
            while emitted < garbage:
                yield _garbage_line(emitted, stream.id, ts)
                emitted += 1

    # ------------------------------------------------------------------ import endpoints

    def _job(self, request: web.Request, grant: TokenGrant) -> SimImport:
        """Return the import named in the path (403 without import rights, 404 unknown)."""
        _require_import(grant)
        raw = request.match_info["id"]
        job = self._imports.get(int(raw)) if raw.isdigit() else None
        if job is None:
            raise ApiError(404, f"Import {raw} not found.")
        return job

    async def _create_import(
        self, request: web.Request, grant: TokenGrant
    ) -> web.Response:
        """POST /import?importname=…: create an import in status ``stored``."""
        _require_import(grant)
        name = request.query.get("importname")
        if name is None and request.content_type == "application/x-www-form-urlencoded":
            name = (await request.post()).get("importname")  # type: ignore[assignment]
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "The importname field is required.")
        if len(name) > 255:
            raise ApiError(
                400, "The importname may not be greater than 255 characters."
            )
        job = self._new_import(name, grant)
        return self._json(request, job.as_json(errors=False), status=201)

    async def _show_import(
        self, request: web.Request, grant: TokenGrant
    ) -> web.Response:
        """GET /import/{id}: the import with its status and errors."""
        return self._json(request, self._job(request, grant).as_json())

    async def _delete_import(
        self, request: web.Request, grant: TokenGrant
    ) -> web.Response:
        """DELETE /import/{id}: forget the import (ingested data stays)."""
        job = self._job(request, grant)
        if job.status == "ingesting":
            raise ApiError(409, "The import is being ingested and cannot be deleted.")
        del self._imports[job.id]
        return web.Response(status=204)

    async def _get_upload_url(
        self, request: web.Request, grant: TokenGrant
    ) -> web.Response:
        """GET /import/{id}/upload_url: a presigned S3 PUT URL for the import file."""
        job = self._job(request, grant)
        if job.status not in ("stored", "invalid"):
            raise ApiError(409, f"An import in status {job.status} takes no upload.")
        origin = f"{request.scheme}://{request.host}"
        return self._json(request, {"upload_url": self._upload_url(origin, job)})

    async def _validate_job(
        self, request: web.Request, grant: TokenGrant
    ) -> web.Response:
        """PUT /import/{id}/validate: accept the validation task (202)."""
        job = self._job(request, grant)
        if job.status not in ("stored", "invalid", "ready"):
            raise ApiError(
                409, f"An import in status {job.status} cannot be validated."
            )
        self._start(job, "validating")
        return self._json(request, job.as_json(), status=202)

    async def _ingest_job(
        self, request: web.Request, grant: TokenGrant
    ) -> web.Response:
        """PUT /import/{id}/ingest: accept the ingestion task (202), only when ready."""
        job = self._job(request, grant)
        if job.status != "ready":
            raise ApiError(
                409, f"Only a ready import can be ingested (status: {job.status})."
            )
        self._start(job, "ingesting")
        return self._json(request, job.as_json(), status=202)

    def _start(self, job: SimImport, status: ImportStatus) -> None:
        """Enter a step that completes ``step_delay`` seconds from now."""
        job.status = status
        job.errors = []
        job.updated_at = self.now()
        job.due = time.monotonic() + self.step_delay

    # ------------------------------------------------------------------ S3

    async def _s3_put(self, request: web.Request) -> web.Response:
        """PUT a presigned object (the body is read before any answer)."""
        self._advance()
        resource = "/" + request.match_info["resource"]
        data = bytearray()
        too_large = False
        async for chunk in request.content.iter_any():
            if len(data) + len(chunk) > MAX_UPLOAD:
                too_large = True
                data.clear()
            elif not too_large:
                data.extend(chunk)
        if "Authorization" in request.headers:
            return S3Error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                "query parameter, Signature query string parameter or the "
                "Authorization header should be specified",
            ).response(resource)
        kind = self.faults.take(self.name, request.path)
        if kind is not None and kind != "missing_fields":
            return await self._fault(request, kind)
        try:
            self._check_signature(request, resource)
        except S3Error as err:
            return err.response(resource)
        if too_large:
            return S3Error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed object size.",
            ).response(resource)
        if not resource.startswith(f"/{S3_BUCKET}/"):
            return S3Error(404, "NoSuchBucket", "The bucket does not exist").response(
                resource
            )
        self.uploads[resource.removeprefix(f"/{S3_BUCKET}/")] = bytes(data)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return web.Response(status=200, headers={"ETag": f'"{etag}"'})

    def _check_signature(self, request: web.Request, resource: str) -> None:
        """Accept only an unexpired URL this simulator presigned for ``resource``."""
        query = request.query
        expected = {
            "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-SignedHeaders": "host",
        }
        if any(query.get(key) != value for key, value in expected.items()):
            raise S3Error(403, "AccessDenied", "Access Denied.")
        amz_date = query.get("X-Amz-Date", "")
        credential = query.get("X-Amz-Credential", "")
        expires = query.get("X-Amz-Expires", "")
        signature = query.get("X-Amz-Signature", "")
        wanted = _sign(resource, amz_date, credential, expires)
        if not (
            hmac.compare_digest(signature.encode(), wanted.encode())
            and signature in self._signatures
        ):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature "
                "you provided. Check your key and signing method.",
            )
        issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if as_utc(self.now()) > issued + timedelta(seconds=int(expires)):
            raise S3Error(403, "AccessDenied", "Request has expired")


# --------------------------------------------------------------------------- helpers


def _ms(value: datetime | int) -> int:
    """Epoch milliseconds of a datetime (naive = UTC) or an int already in ms."""
    if isinstance(value, datetime):
        return epoch_ms(value)
    return int(value)


def _laravel_time(value: datetime) -> str:
    """Format a time as Laravel serialises model dates: ``…T08:20:36.000000Z``."""
    return f"{as_utc(value):%Y-%m-%dT%H:%M:%S}.000000Z"


def _merge(generated: Iterator[Reading], overrides: list[Reading]) -> Iterator[Reading]:
    """Merge two sorted reading streams; an override replaces a same-timestamp reading."""
    index = 0
    for ts, value in generated:
        while index < len(overrides) and overrides[index][0] < ts:
            yield overrides[index]
            index += 1
        if index < len(overrides) and overrides[index][0] == ts:
            yield overrides[index]
            index += 1
            continue
        yield ts, value
    yield from overrides[index:]


def _garbage_line(index: int, stream_id: int, ts: int) -> str:
    """Return the ``index``-th unparsable line of an answer (``GARBAGE_KINDS`` in turn)."""
    template = GARBAGE_KINDS[index % len(GARBAGE_KINDS)]
    return template.format(id=stream_id, ts=ts) + "\n"


def _strip_fields(lines: Iterator[str]) -> Iterator[str]:
    """Apply the ``missing_fields`` fault: even lines lose the timestamp, odd the value."""
    for index, line in enumerate(lines):
        fields = line.rstrip("\n").split(",", 2)
        if len(fields) != 3:
            yield line
        elif index % 2 == 0:
            yield f"{fields[0]},,{fields[2]}\n"
        else:
            yield f"{fields[0]},{fields[1]},\n"


def _broken_csv() -> web.Response:
    """Answer the ``malformed_json`` fault of the CSV endpoint: 200, CSV headers, HTML."""
    return web.Response(
        text=BROKEN_CSV_BODY,
        headers={
            "Content-Type": "text/csv; charset=UTF-8",
            "Content-Disposition": "attachment; filename=data.csv",
            "Content-Description": "File Transfer",
        },
    )


def _error(request: web.Request, status: int, message: str) -> web.Response:
    """Render an API error: JSON when the client accepts JSON, else plain text."""
    if "json" in request.headers.get("Accept", "").lower():
        return web.json_response({"message": message}, status=status)
    return web.Response(text=message, status=status, content_type="text/plain")


def _require_import(grant: TokenGrant) -> None:
    """Refuse import endpoints to tokens without the batch import permission."""
    if not grant.may_import:
        raise ApiError(403, "This token may not import data.")


def _parse_ids(raw: str | None) -> list[int]:
    """Parse ``ids``: comma-separated integers, duplicates dropped (400 otherwise)."""
    if raw is None or not raw.strip():
        raise ApiError(400, "The ids field is required.")
    ids: list[int] = []
    for part in raw.split(","):
        text = part.strip()
        if not text.isdigit():
            raise ApiError(
                400, "The ids field must be a comma-separated list of datastream ids."
            )
        if int(text) not in ids:
            ids.append(int(text))
    return ids


def _parse_timestamp(query: Any, key: str) -> int:
    """Parse ``from``/``to`` (``YYYY-MM-DDTHH:MM:SS``, UTC) to epoch ms, else 400."""
    raw = query.get(key)
    if raw is None:
        raise ApiError(400, f"The {key} field is required when using a time span.")
    if not _TIMESTAMP.fullmatch(raw):
        raise ApiError(400, f"The {key} field must be formatted YYYY-MM-DDTHH:MM:SS.")
    try:
        value = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, f"The {key} field is not a valid date.") from None
    return epoch_ms(value)


def _parse_row(
    line: int,
    record: list[str],
    columns: list[SimDatastream],
    rows: list[tuple[int, int, Value]],
) -> list[str]:
    """Parse one data row into ``rows``; return its errors."""
    if len(record) != len(columns) + 1:
        return [f"Row {line}: expected {len(columns) + 1} fields, found {len(record)}."]
    raw_ts = record[0].strip()
    ts: int | None = None
    if _IMPORT_TIMESTAMP.fullmatch(raw_ts):
        try:
            ts = epoch_ms(
                datetime.strptime(raw_ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            )
        except ValueError:
            ts = None
    if ts is None:
        return [
            f"Row {line}: invalid timestamp '{raw_ts}' "
            "(expected YYYY-MM-DDTHH:mm:ss.SSSZ, UTC)."
        ]
    errors: list[str] = []
    parsed: list[tuple[int, int, Value]] = []
    for column, (stream, cell) in enumerate(zip(columns, record[1:], strict=True), 2):
        if stream.datatype == "string":
            parsed.append((stream.id, ts, cell))
            continue
        text = cell.strip()
        if not text:
            continue
        if stream.datatype == "integer" and _INTEGER.fullmatch(text):
            value = int(text)
            if -(2**63) <= value < 2**63:
                parsed.append((stream.id, ts, value))
                continue
        elif stream.datatype == "double" and _DOUBLE.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                parsed.append((stream.id, ts, number))
                continue
        errors.append(
            f"Row {line}, column {column}: '{cell}' is not a valid {stream.datatype} "
            f"for datastream {stream.id}."
        )
    if not errors:
        rows.extend(parsed)
    return errors


def _sign(resource: str, amz_date: str, credential: str, expires: str) -> str:
    """Sign what a presigned URL grants (the simulator's own scheme)."""
    message = f"PUT\n{resource}\n{amz_date}\n{credential}\n{expires}".encode()
    return hmac.new(S3_SECRET, message, hashlib.sha256).hexdigest()
