"""The simulated Copper Labs cloud (API v2) and its Auth0 tenant.

Written from shared/seeds/copper-labs-cloud-api.txt and the Copper section of
shared/providers/NOTES.md (which carries what the official example clients
show). The API is served below ``/copper/api/v2`` (real:
https://api.copperlabs.com/api/v2); the Auth0 tenant (real:
https://auth.copperlabs.com) at the server root below ``/copper-auth``:
``/copper-auth/authorize`` and ``/copper-auth/oauth/token``.

Data is synthetic and deterministic: every meter's register is a closed form
of (meter id, 15-minute slot since 2025-01-01 UTC) in integer thousandths of
its unit (Wh, milli-CCF, milli-gallon), so any reading costs O(1), sums are
exact and registers never decrease. Between slot boundaries registers are
interpolated linearly (the document: "linearly interpolated").

Decisions where the documents are silent (tests and clients may rely on them):

* Accounts: a consumer token acts for the Auth0 user (its e-mail), an
  enterprise token for its client id; that string is the request log's
  ``account`` and the unit of the rate budget. Auth0 requests are not counted.
* Order of checks: token (401; a consumer token on ``/partner`` or an
  enterprise token on ``/app`` or another enterprise 403) → budget (429 with
  Retry-After) → fault → endpoint. Every admitted request counts, 4xx included.
* Budgets are rolling windows of the simulator clock: ``hourly_limit`` (100)
  per hour and ``daily_limit`` (1000) per day; Retry-After is the exact wait
  until the window has room. ``spend()`` counts the user's phone app.
* Auth0 answers errors as ``{"error", "error_description"}``: invalid_grant
  403 (unknown/used/expired code, PKCE mismatch, unknown/revoked refresh
  token), access_denied 401 (wrong client secret), access_denied 403 (wrong
  audience), unauthorized_client 403, invalid_request 400. The token endpoint
  takes JSON or a form. Codes are single use and live ``code_lifetime``.
* Refresh tokens rotate (``rotate_refresh_tokens``): each exchange answers a
  new one and retires the old; presenting a retired one (after
  ``reuse_interval``) revokes its whole family (Auth0 reuse detection). With
  rotation off the answer carries no refresh token (the official script).
* The sign-in stand-in: GET /authorize checks the query and shows a form;
  POST /authorize with ``email`` and ``otp`` (``email_code``) redirects 302 to
  ``redirect_uri?code=…[&state=…]``. Any e-mail may sign in (Auth0
  passwordless signs new users up); unknown ones own no premises.
* API errors are ``{"message": …}``. Meter ids containing ``:`` must arrive
  percent-encoded (``require_encoded_ids``); a raw ``:`` answers 404.
* Usage (``/app/usage``, ``/partner/…/usage``): ``start`` required, ``end``
  default now, ``granularity`` default hour; minute/fifteenminute/hour are
  UTC-aligned, bihour is 2 hours, day/month local midnights of the premise;
  ``auto`` picks fifteenminute up to 1 day, hour up to 7, day up to 92, else
  month. One row per grid point in [start, end] (both ends; ``include_start=
  false`` drops the start row) whose bucket has begun. ``usage_label`` "end"
  (default, the document's "delta in energy from previous bucket"): the row
  at t carries the bucket (t - g, t]; "start": [t, t + g). ``value`` is the
  normalised register at t, ``actual`` the raw one (``value`` x the meter's
  ``raw_scale``), ``power`` usage per hour. A bucket missing any reading has
  null usage and power; a register not published is null. More than
  ``max_points`` rows is 400. ``sum_usage`` sums the non-null usages.
* Readings are transmitted every 15 minutes at slot boundaries; bulk and
  instant show the newest published one; ``instant_power`` is the rate of the
  last complete slot (kW, CCF/h, gal/h). Bulk lists meters heard within
  ``recent`` (1 day); ``meter`` pages by offset/limit (plain list, page
  shorter than limit = last), ``bulk`` by ``next`` (a path from the server
  root, null on the last page; at most ``bulk_page_cap`` rows a page).
  ``last_reading.value`` is the RAW register (the known bug).
* ``register_jump`` multiplies a meter's register fields by 100 in a window
  (value, actual, bulk value, last_reading); usage and power stay true.
* Every 200 from the API carries ``Cache-Control: max-age=<cache_max_age>``.
* Ground truth (``truth_*``) ignores publication delay, late windows and
  register jumps.
"""

from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
import hashlib
import html
import json
import math
import secrets
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from .clock import QUARTER, Now, as_utc, parse_iso
from .faults import FaultKind, Faults, drop_required_fields
from .ratelimit import RollingWindowLimiter
from .requestlog import ACCOUNT

PREFIX = "/copper/api/v2"
AUTH_PREFIX = "/copper-auth"
AUTHORIZE_PATH = f"{AUTH_PREFIX}/authorize"
TOKEN_PATH = f"{AUTH_PREFIX}/oauth/token"

PUBLIC_CLIENT_ID = "RvXeGVUtzcz9iWnP4QJFwnVwCHVUoMIA"
OLD_PUBLIC_CLIENT_ID = "s2FKWj80rK2HfBwOeacICoLGhbBxHCEl"
REDIRECT_URI = "https://api.copperlabs.com/api/v2/app"
AUDIENCE = "https://api.copperlabs.com"
APP_SCOPE = "app offline_access"

DEMO_EMAIL = "demo@copper.example"
DEMO_EMAIL_CODE = "424242"
EMPTY_EMAIL = "new@copper.example"
ENTERPRISE_CLIENT_ID = "copper-enterprise-demo"
ENTERPRISE_CLIENT_SECRET = "copper-enterprise-secret"
ENTERPRISE_ID = "demo-enterprise"
OTHER_ENTERPRISE_ID = "other-enterprise"

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_S = int(EPOCH.timestamp())
SLOT_S = 900
WEEK_SLOTS = 7 * 96
IDENTITY_KEYS = ("id", "meter_id", "time", "timestamp", "access_token", "premise_id")

type MeterType = Literal[
    "power",
    "power_net",
    "power_gen",
    "power_sub",
    "electric",
    "gas",
    "water",
    "water_indoor",
    "water_outdoor",
]
ELECTRIC_TYPES = frozenset({"power", "power_net", "power_gen", "power_sub", "electric"})
UOM = {"electric": "kwh", "gas": "ccf", "water": "gal"}

GRANULARITY_MINUTES = {"minute": 1, "fifteenminute": 15, "hour": 60, "bihour": 120}
GRANULARITIES = frozenset({*GRANULARITY_MINUTES, "day", "month", "auto"})


# --------------------------------------------------------------------------- hierarchy


@dataclass(frozen=True, slots=True)
class SimMeter:
    """One meter: id (contains ``:``), type, premise, raw register scale, size, silence."""

    id: str
    type: MeterType
    premise_id: str
    raw_scale: int
    size: int
    tz_slots: int
    silent_from: datetime | None = None

    @property
    def kind(self) -> str:
        """electric, gas or water: decides the unit."""
        if self.type in ELECTRIC_TYPES:
            return "electric"
        return "gas" if self.type == "gas" else "water"

    @property
    def uom(self) -> str:
        """The unit the API names for the normalised value (kwh, ccf, gal)."""
        return UOM[self.kind]


@dataclass(frozen=True, slots=True)
class SimPremise:
    """One premise (home) with its gateway and meters."""

    id: str
    name: str
    street_address: str
    city_town: str
    postal_code: str
    county_district: str
    state_region: str
    timezone: str
    gateway_id: str
    meters: tuple[SimMeter, ...]

    @property
    def zone(self) -> ZoneInfo:
        """The premise's time zone."""
        return ZoneInfo(self.timezone)

    def as_json(self) -> dict[str, Any]:
        """Return the premise as /partner/{id}/premise lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "street_address": self.street_address,
            "suite_apartment_unit": "",
            "city_town": self.city_town,
            "postal_code": self.postal_code,
            "county_district": self.county_district,
            "state_region": self.state_region,
            "timezone": self.timezone,
            "created_at": _iso(EPOCH),
        }


_ZONES = {
    "America/Denver": ("Littleton", "80125", "Jefferson", "CO", -28),
    "America/New_York": ("Albany", "12203", "Albany", "NY", -20),
}


def _h(*parts: object) -> int:
    """Return a stable 64-bit integer from ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


_SIZE = {"electric": 500, "gas": 100, "water": 30000}


def _meter(
    meter_id: str,
    meter_type: MeterType,
    premise_id: str,
    zone: str,
    raw_scale: int = 1,
    silent_from: datetime | None = None,
) -> SimMeter:
    """Build a meter whose size varies +-30 % around its kind's default."""
    kind = "electric" if meter_type in ELECTRIC_TYPES else meter_type.split("_")[0]
    base = 1000 if meter_type == "power_gen" else _SIZE[kind]
    size = base * (70 + _h(meter_id, "size") % 61) // 100
    return SimMeter(
        meter_id,
        meter_type,
        premise_id,
        raw_scale,
        size,
        _ZONES[zone][4],
        silent_from,
    )


def _premise(
    premise_id: str,
    name: str,
    street: str,
    zone: str,
    gateway_id: str,
    meters: tuple[tuple[str, MeterType, int], ...],
    silent: frozenset[str] = frozenset(),
) -> SimPremise:
    """Build a premise in ``zone`` with ``meters`` (id, type, raw scale)."""
    city, postal, county, state, _ = _ZONES[zone]
    silent_from = EPOCH + timedelta(days=30)
    return SimPremise(
        premise_id,
        name,
        street,
        city,
        postal,
        county,
        state,
        zone,
        gateway_id,
        tuple(
            _meter(
                mid,
                mtype,
                premise_id,
                zone,
                scale,
                silent_from if mid in silent else None,
            )
            for mid, mtype, scale in meters
        ),
    )


HOME_PREMISE_ID = "5f2b1c0e9a7d4e3b8c6a1d2e"
CABIN_PREMISE_ID = "5f2b1c0e9a7d4e3b8c6a1d2f"
HOME_ELECTRIC_ID = "07:1552395084"
HOME_GAS_ID = "12:0130690611"
HOME_WATER_ID = "IQ:22188666"
CABIN_ELECTRIC_ID = "07:1552395090"
CABIN_SOLAR_ID = "07:1552395091"

HOME_PREMISES = (
    _premise(
        HOME_PREMISE_ID,
        "Home",
        "9120 Rio Blanco St",
        "America/Denver",
        "246f28c78644",
        (
            (HOME_ELECTRIC_ID, "power_net", 1),
            (HOME_GAS_ID, "gas", 100),
            (HOME_WATER_ID, "water_indoor", 100),
        ),
    ),
    _premise(
        CABIN_PREMISE_ID,
        "Cabin",
        "12 Lark St",
        "America/New_York",
        "246f28c78645",
        ((CABIN_ELECTRIC_ID, "power", 1), (CABIN_SOLAR_ID, "power_gen", 1)),
    ),
)

_EXTRA_TYPES: tuple[tuple[int, MeterType], ...] = (
    (3, "water_outdoor"),
    (5, "power_gen"),
    (7, "power_sub"),
    (11, "electric"),
    (13, "water"),
)


def _enterprise_premises(count: int) -> tuple[SimPremise, ...]:
    """Return ``count`` premises alternating Denver and New York, ~3.7 meters each.

    Every premise has power_net, gas and water_indoor; every 3rd adds
    water_outdoor, 5th power_gen, 7th power_sub, 11th electric, 13th water.
    Gas and water meters of odd premises report raw registers x100; the gas
    meter of every 17th premise went silent 30 days after the epoch.
    """
    premises = []
    for n in range(1, count + 1):
        zone = "America/Denver" if n % 2 else "America/New_York"
        scale = 100 if n % 2 else 1
        meters: list[tuple[str, MeterType, int]] = [
            (f"07:20{n:06d}01", "power_net", 1),
            (f"12:30{n:06d}02", "gas", scale),
            (f"IQ:40{n:06d}03", "water_indoor", scale),
        ]
        meters += [
            (f"{'IQ' if t.startswith('water') else '07'}:5{n:06d}{every:03d}", t, 1)
            for every, t in _EXTRA_TYPES
            if n % every == 0
        ]
        premises.append(
            _premise(
                f"e{n:023x}",
                f"Premise {n}",
                f"{100 + n} Main St",
                zone,
                f"84cca8{n:06x}",
                tuple(meters),
                frozenset({meters[1][0]}) if n % 17 == 0 else frozenset(),
            )
        )
    return tuple(premises)


# --------------------------------------------------------------------------- registers


def _bump(hour: float, centre: float, width: float) -> float:
    """Return a smooth daily peak."""
    return math.exp(-(((hour - centre) / width) ** 2))


def _weight(meter_type: str, hour: float) -> float:
    """Relative consumption of a meter type at local (standard) hour ``hour``."""
    if meter_type == "power_gen":
        return max(0.0, math.sin(math.pi * (hour - 6) / 12)) * 1000
    if meter_type == "gas":
        return 100 + 400 * _bump(hour, 6.5, 1.5) + 300 * _bump(hour, 20, 2)
    if meter_type.startswith("water"):
        return 10 + 600 * _bump(hour, 7, 1) + 400 * _bump(hour, 19.5, 1.5)
    return 200 + 300 * _bump(hour, 7.5, 1.5) + 500 * _bump(hour, 19, 2.5)


_WEEKDAY_EIGHTHS = (8, 8, 8, 8, 8, 10, 10)


@dataclass(frozen=True, slots=True)
class _Table:
    """A meter's periodic weekly base usage, its prefix sums and noise bound."""

    base: tuple[int, ...]
    prefix: tuple[int, ...]
    bound: int
    initial: int


@cache
def _table(meter: SimMeter) -> _Table:
    """Build the weekly table of a meter (slot 0 = 2025-01-01 00:00 UTC, a Wednesday)."""
    base = []
    for j in range(WEEK_SLOTS):
        local = j + meter.tz_slots
        hour = (local % 96) / 4 + 0.125
        weekday = (2 + local // 96) % 7
        weight = _weight(meter.type, hour)
        base.append(int(weight * meter.size) // 1000 * _WEEKDAY_EIGHTHS[weekday] // 8)
    prefix = [0]
    for value in base:
        prefix.append(prefix[-1] + value)
    mean = prefix[-1] // WEEK_SLOTS
    initial = {"electric": 10_000_000, "gas": 1_000_000, "water": 50_000_000}[
        meter.kind
    ]
    return _Table(
        tuple(base),
        tuple(prefix),
        max(1, mean // 4),
        initial * (1 + _h(meter.id, "register") % 5),
    )


def _noise(meter: SimMeter, k: int) -> int:
    """Telescoping noise g(k): slot k gains g(k) - g(k-1), never going negative."""
    table = _table(meter)
    bound = table.bound
    if table.base[k % WEEK_SLOTS] < bound or table.base[(k + 1) % WEEK_SLOTS] < bound:
        return 0
    return _h(meter.id, k) % (bound + 1)


def slot_usage(meter: SimMeter, k: int) -> int:
    """Usage of slot ``k`` in thousandths of the unit (>= 0)."""
    return _table(meter).base[k % WEEK_SLOTS] + _noise(meter, k) - _noise(meter, k - 1)


def register_at_slot(meter: SimMeter, k: int) -> int:
    """Return the register (thousandths) at the start of slot ``k`` (k >= 0), O(1)."""
    table = _table(meter)
    weeks, j = divmod(k, WEEK_SLOTS)
    return (
        table.initial
        + weeks * table.prefix[-1]
        + table.prefix[j]
        + _noise(meter, k - 1)
        - _noise(meter, -1)
    )


def register_at(meter: SimMeter, at: datetime) -> int:
    """Return the register (thousandths) at ``at``, linear inside a slot."""
    seconds = int(as_utc(at).timestamp()) - EPOCH_S
    k, into = divmod(seconds, SLOT_S)
    return register_at_slot(meter, k) + slot_usage(meter, k) * into // SLOT_S


def _thousandths(value: int) -> float:
    """Render integer thousandths as the JSON number."""
    return float(Decimal(value) / 1000)


def _iso(at: datetime) -> str:
    """Format an instant as the API does: ``YYYY-MM-DDTHH:MM:SS.000Z``."""
    utc = as_utc(at)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _slot_floor(at: datetime) -> datetime:
    """Return the slot boundary at or before ``at``."""
    seconds = int(as_utc(at).timestamp())
    return datetime.fromtimestamp(seconds - (seconds - EPOCH_S) % SLOT_S, UTC)


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An API error answer: status and ``{"message": …}``."""

    def __init__(self, status: int, message: str) -> None:
        """Keep status and message."""
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        """Render the error."""
        return web.json_response({"message": self.message}, status=self.status)


class AuthError(Exception):
    """An Auth0 token endpoint error: status, error code and description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        """Keep status, OAuth error code and description."""
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        """Render the error as Auth0 does."""
        return web.json_response(
            {"error": self.error, "error_description": self.description},
            status=self.status,
        )


@dataclass(frozen=True, slots=True)
class _Access:
    """An access token: consumer (email) or enterprise (client id), expiry."""

    kind: Literal["app", "partner"]
    subject: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class _Code:
    """An authorization code waiting for its exchange."""

    client_id: str
    email: str
    challenge: str
    redirect_uri: str
    scope: str
    expires: datetime


@dataclass(slots=True)
class _Refresh:
    """A refresh token of a family; ``retired`` when rotated out (None: live)."""

    client_id: str
    email: str
    family: str
    scope: str
    issued: datetime
    retired: datetime | None = None


@dataclass(frozen=True, slots=True)
class _LateWindow:
    """Readings at slot boundaries in [start, end) are withheld (meter None: all)."""

    start: datetime
    end: datetime
    meter_id: str | None

    def hides(self, meter_id: str, at: datetime) -> bool:
        """Tell whether the reading of ``meter_id`` at ``at`` is withheld."""
        return self.start <= at < self.end and self.meter_id in (None, meter_id)


@dataclass(frozen=True, slots=True)
class _Grid:
    """A usage request's time grid."""

    name: str
    zone: ZoneInfo

    def step(self, at: datetime, n: int) -> datetime:
        """Move ``n`` grid steps from the grid point ``at``."""
        minutes = GRANULARITY_MINUTES.get(self.name)
        if minutes is not None:
            return at + timedelta(minutes=minutes * n)
        local = at.astimezone(self.zone).date()
        if self.name == "day":
            day = local + timedelta(days=n)
        else:
            months = local.year * 12 + local.month - 1 + n
            day = date(months // 12, months % 12 + 1, 1)
        return datetime.combine(day, time(), self.zone).astimezone(UTC)

    def ceil(self, at: datetime) -> datetime:
        """Return the first grid point at or after ``at``."""
        minutes = GRANULARITY_MINUTES.get(self.name)
        if minutes is not None:
            span = minutes * 60
            seconds = int(at.timestamp())
            up = -(-(seconds - EPOCH_S) // span) * span + EPOCH_S
            return datetime.fromtimestamp(up, UTC)
        local = at.astimezone(self.zone)
        day = local.date() if self.name == "day" else local.date().replace(day=1)
        point = datetime.combine(day, time(), self.zone).astimezone(UTC)
        return point if point >= at else self.step(point, 1)


type Endpoint = Callable[[web.Request, _Access], Any]


# --------------------------------------------------------------------------- the cloud


@dataclass(eq=False)
class CopperCloud:
    """The Copper cloud and its Auth0 tenant: accounts, tokens, knobs, truth.

    Knobs are plain attributes (lifetimes, rotation, budgets, page caps,
    publication delay, labels) plus the methods below.
    """

    now: Now
    faults: Faults
    enterprise_premise_count: int = 60
    name: str = "copper"
    prefix: str = PREFIX
    root_paths: tuple[str, ...] = (f"{AUTH_PREFIX}/",)
    token_lifetime: timedelta = timedelta(hours=24)
    client_token_lifetime: timedelta = timedelta(hours=24)
    code_lifetime: timedelta = timedelta(minutes=10)
    rotate_refresh_tokens: bool = True
    reuse_interval: timedelta = timedelta(0)
    refresh_lifetime: timedelta | None = None
    hourly_limit: int = 100
    daily_limit: int = 1000
    cache_max_age: int | None = 900
    max_points: int = 2000
    meter_page_cap: int = 1000
    bulk_page_cap: int = 100
    recent: timedelta = timedelta(days=1)
    publication_delay: timedelta = timedelta(0)
    usage_label: Literal["end", "start"] = "end"
    require_encoded_ids: bool = True
    email_code: str = DEMO_EMAIL_CODE
    public_clients: set[str] = field(default_factory=lambda: {PUBLIC_CLIENT_ID})
    redirect_uris: set[str] = field(default_factory=lambda: {REDIRECT_URI})
    enterprise_clients: dict[str, str] = field(
        default_factory=lambda: {ENTERPRISE_CLIENT_ID: ENTERPRISE_CLIENT_SECRET}
    )
    client_enterprises: dict[str, str] = field(
        default_factory=lambda: {ENTERPRISE_CLIENT_ID: ENTERPRISE_ID}
    )
    user_premises: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {DEMO_EMAIL: (HOME_PREMISE_ID, CABIN_PREMISE_ID)}
    )
    _enterprises: dict[str, tuple[SimPremise, ...]] = field(default_factory=dict)
    _premises: dict[str, SimPremise] = field(default_factory=dict)
    _meters: dict[str, SimMeter] = field(default_factory=dict)
    _tokens: dict[str, _Access] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)
    _revoked_families: set[str] = field(default_factory=set)
    _late: list[_LateWindow] = field(default_factory=list)
    _jumps: list[_LateWindow] = field(default_factory=list)
    _budget: RollingWindowLimiter = field(init=False)

    def __post_init__(self) -> None:
        """Build the hierarchy and the budget."""
        self._enterprises = {
            ENTERPRISE_ID: _enterprise_premises(self.enterprise_premise_count),
            OTHER_ENTERPRISE_ID: (),
        }
        for premise in (*HOME_PREMISES, *self._enterprises[ENTERPRISE_ID]):
            self._premises[premise.id] = premise
            for meter in premise.meters:
                self._meters[meter.id] = meter
        self._budget = RollingWindowLimiter(())

    # ------------------------------------------------------------------ knobs

    def spend(self, account: str, count: int = 1) -> None:
        """Count ``count`` requests of another client (the phone app) at now."""
        self._budget.spend(account, self.now(), count)

    def used(self, account: str, window: timedelta) -> int:
        """Return how many admitted requests of ``account`` lie in ``window`` up to now."""
        return self._budget.used(account, self.now(), window)

    def revoke_user(self, email: str) -> None:
        """Reject every token already issued to the user (sign-in stays possible)."""
        for token in [t for t, a in self._tokens.items() if a.subject == email]:
            del self._tokens[token]
        for refresh in self._refresh.values():
            if refresh.email == email:
                self._revoked_families.add(refresh.family)

    def set_client_secret(self, client_id: str, secret: str) -> None:
        """Change an enterprise client's secret and reject its tokens."""
        self.enterprise_clients[client_id] = secret
        for token in [t for t, a in self._tokens.items() if a.subject == client_id]:
            del self._tokens[token]

    def publish_late(
        self, start: datetime, end: datetime, meter_id: str | None = None
    ) -> None:
        """Withhold readings in [start, end) (all meters or one) until release_late."""
        self._late.append(_LateWindow(as_utc(start), as_utc(end), meter_id))

    def release_late(self) -> None:
        """Publish everything publish_late withheld."""
        self._late.clear()

    def register_jump(self, meter_id: str, start: datetime, end: datetime) -> None:
        """Serve the meter's register fields x100 in [start, end); usage stays true."""
        self.meter(meter_id)
        self._jumps.append(_LateWindow(as_utc(start), as_utc(end), meter_id))

    def clear_jumps(self) -> None:
        """Serve every register true again (the glitch is over)."""
        self._jumps.clear()

    def authorization_code(
        self,
        challenge: str,
        email: str = DEMO_EMAIL,
        client_id: str = PUBLIC_CLIENT_ID,
        redirect_uri: str = REDIRECT_URI,
        scope: str = APP_SCOPE,
    ) -> str:
        """Issue a code as a completed sign-in would (tests that skip the pages)."""
        code = secrets.token_urlsafe(12)
        self._codes[code] = _Code(
            client_id,
            email,
            challenge,
            redirect_uri,
            scope,
            self.now() + self.code_lifetime,
        )
        return code

    # ------------------------------------------------------------------ ground truth

    def premise(self, premise_id: str) -> SimPremise:
        """Return a premise by id (KeyError for a wrong id)."""
        return self._premises[premise_id]

    def meter(self, meter_id: str) -> SimMeter:
        """Return a meter by id (KeyError for a wrong id)."""
        return self._meters[meter_id]

    def premises_of_user(self, email: str) -> list[SimPremise]:
        """Return the consumer's premises in API order."""
        return [self.premise(pid) for pid in self.user_premises.get(email, ())]

    def premises_of_enterprise(self, enterprise_id: str) -> list[SimPremise]:
        """Return the enterprise's premises in API order."""
        return list(self._enterprises[enterprise_id])

    def meters_of_enterprise(self, enterprise_id: str) -> list[SimMeter]:
        """Return the enterprise's meters in API order (premise by premise)."""
        return [m for p in self._enterprises[enterprise_id] for m in p.meters]

    def truth_refresh_tokens(self, email: str) -> dict[str, str]:
        """Return each refresh token issued to ``email``: live, retired or revoked."""
        return {
            token: "revoked"
            if refresh.family in self._revoked_families
            else "retired"
            if refresh.retired is not None
            else "live"
            for token, refresh in self._refresh.items()
            if refresh.email == email
        }

    def truth_register(self, meter_id: str, at: datetime) -> float:
        """Return the normalised register at ``at`` (kWh, CCF or US gallons)."""
        return _thousandths(register_at(self.meter(meter_id), at))

    def truth_usage(self, meter_id: str, start: datetime, end: datetime) -> float:
        """Return the exact amount used in [start, end)."""
        meter = self.meter(meter_id)
        return _thousandths(register_at(meter, end) - register_at(meter, start))

    def truth_hourly(
        self, meter_id: str, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        """UTC hour start -> exact usage, for whole hours in [start, end) ended by now."""
        meter = self.meter(meter_id)
        hour = _Grid("hour", ZoneInfo("UTC")).ceil(max(as_utc(start), EPOCH))
        stop = min(as_utc(end), self.now())
        hours: dict[datetime, float] = {}
        while hour + timedelta(hours=1) <= stop:
            hours[hour] = _thousandths(
                register_at(meter, hour + timedelta(hours=1)) - register_at(meter, hour)
            )
            hour += timedelta(hours=1)
        return hours

    def truth_instant(self, meter_id: str) -> tuple[datetime, float]:
        """(updated_at, rate per hour) that /app/instant answers now, ignoring delays."""
        meter = self.meter(meter_id)
        last = _slot_floor(self.now())
        k = (int(last.timestamp()) - EPOCH_S) // SLOT_S
        return last, _thousandths(slot_usage(meter, k - 1) * 4)

    # ------------------------------------------------------------------ data internals

    def _published(self, meter: SimMeter, at: datetime) -> bool:
        """Tell whether the reading transmitted at slot boundary ``at`` is visible."""
        if at < EPOCH or at > self.now() - self.publication_delay:
            return False
        if meter.silent_from is not None and at >= meter.silent_from:
            return False
        return not any(window.hides(meter.id, at) for window in self._late)

    def _known(self, meter: SimMeter, at: datetime) -> bool:
        """Tell whether the register at ``at`` can be interpolated from visible readings."""
        floor = _slot_floor(at)
        if not self._published(meter, floor):
            return False
        return floor == at or self._published(meter, floor + QUARTER)

    def _bucket_known(self, meter: SimMeter, low: datetime, high: datetime) -> bool:
        """Tell whether every reading from ``low`` to ``high`` (slot bounds) is visible."""
        at = _slot_floor(low)
        while at < high:
            if not self._published(meter, at):
                return False
            at += QUARTER
        return self._known(meter, high)

    def _last_heard(self, meter: SimMeter) -> datetime | None:
        """Return the newest visible reading (up to 31 days back), else None."""
        at = _slot_floor(self.now() - self.publication_delay)
        if meter.silent_from is not None:
            at = min(at, _slot_floor(meter.silent_from - timedelta(seconds=1)))
        for _ in range(31 * 96):
            if at < EPOCH:
                return None
            if self._published(meter, at):
                return at
            at -= QUARTER
        return None

    def _factor(self, meter: SimMeter, at: datetime) -> int:
        """100 inside a register jump window, else 1."""
        return 100 if any(j.hides(meter.id, at) for j in self._jumps) else 1

    def _value(self, meter: SimMeter, at: datetime) -> float:
        """Return the normalised register as served (jumps applied)."""
        return _thousandths(register_at(meter, at) * self._factor(meter, at))

    def _actual(self, meter: SimMeter, at: datetime) -> float:
        """Return the raw register as served: value x the meter's raw scale."""
        raw = register_at(meter, at) * self._factor(meter, at) * meter.raw_scale
        return _thousandths(raw)

    # ------------------------------------------------------------------ HTTP plumbing

    def build_app(self) -> web.Application:
        """Return the sub-application with every API endpoint of NOTES."""
        app = web.Application()
        routes: list[tuple[str, Endpoint]] = [
            ("/app/state", self._app_state),
            ("/app/instant/{premise_id}", self._app_instant),
            ("/app/usage/{meter_id}", self._app_usage),
            ("/partner/{eid}/premise", self._partner_premises),
            ("/partner/{eid}/meter", self._partner_meters),
            ("/partner/{eid}/bulk", self._partner_bulk),
            ("/partner/{eid}/meter/{meter_id}/usage", self._partner_usage),
            ("/partner/{eid}/meter/{meter_id}/readings", self._partner_readings),
            ("/partner/{eid}/grid/latest", self._partner_grid_latest),
            ("/partner/{eid}/gateway", self._partner_gateways),
        ]
        for path, endpoint in routes:
            app.router.add_get(path, self._protected(endpoint))
        return app

    def add_root_routes(self, app: web.Application) -> None:
        """Add the Auth0 tenant's routes at the server root."""
        app.router.add_get(AUTHORIZE_PATH, self._authorize_page)
        app.router.add_post(AUTHORIZE_PATH, self._authorize_sign_in)
        app.router.add_post(TOKEN_PATH, self._handle_token)

    def _authenticate(self, request: web.Request) -> _Access:
        """Return the access of a valid ``<token_type> <access_token>`` header."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Unauthorized")
        access = self._tokens.get(token.strip())
        if access is None or self.now() >= access.expires:
            raise ApiError(401, "Unauthorized")
        return access

    async def _fault(self, kind: FaultKind) -> web.Response | None:
        """Answer a request hit by a fault (429 with Retry-After as the budget does)."""
        if kind == "http_429":
            return _too_many(60)
        return await self.faults.respond(kind)

    def _protected(
        self, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Wrap an endpoint: token (401/403), budget (429), fault, endpoint, headers."""

        async def handler(request: web.Request) -> web.Response:
            try:
                access = self._authenticate(request)
                request[ACCOUNT] = access.subject
            except ApiError as err:
                return err.response()
            if request.path.removeprefix(self.prefix).split("/")[1] != access.kind:
                return ApiError(403, "Forbidden").response()
            self._budget.limits = (
                (timedelta(hours=1), self.hourly_limit),
                (timedelta(days=1), self.daily_limit),
            )
            wait = self._budget.admit(access.subject, self.now())
            if wait is not None:
                return _too_many(wait)
            path = request.path.removeprefix(self.prefix)
            kind = self.faults.take(self.name, path)
            if kind is not None and (response := await self._fault(kind)) is not None:
                return response
            try:
                payload = endpoint(request, access)
            except ApiError as err:
                return err.response()
            if kind == "missing_fields":
                payload = _damage(payload)
            headers = (
                {}
                if self.cache_max_age is None
                else {"Cache-Control": f"max-age={self.cache_max_age}"}
            )
            return web.json_response(payload, headers=headers)

        return handler

    # ------------------------------------------------------------------ Auth0

    async def _authorize_page(self, request: web.Request) -> web.Response:
        """GET /authorize: check the query, then show the e-mail sign-in form."""
        query = request.query
        problem = self._authorize_problem(query)
        if problem is not None:
            return _page(400, "Error", problem)
        form = (
            f'<form method="post" action="{html.escape(request.path_qs)}">'
            '<input name="email" type="email"> <input name="otp">'
            "<button>Sign in</button></form>"
        )
        return _page(200, "Sign in to Copper", form)

    async def _authorize_sign_in(self, request: web.Request) -> web.Response:
        """POST /authorize: e-mail + one-time code -> 302 to redirect_uri?code=…."""
        query = request.query
        problem = self._authorize_problem(query)
        if problem is not None:
            return _page(400, "Error", problem)
        form = dict(parse_qsl(await request.text(), keep_blank_values=True))
        email = form.get("email", "").strip().lower()
        if not email or not secrets.compare_digest(
            form.get("otp", "").encode(), self.email_code.encode()
        ):
            return _page(403, "Sign in to Copper", "Wrong email or verification code.")
        request[ACCOUNT] = email
        code = self.authorization_code(
            query["code_challenge"],
            email,
            query["client_id"],
            query["redirect_uri"],
            query.get("scope", ""),
        )
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        # Returned, not raised: the app middleware renders raised HTTP errors as JSON.
        location = f"{query['redirect_uri']}?{urlencode(params)}"
        return web.Response(status=302, headers={"Location": location})

    def _authorize_problem(self, query: Mapping[str, str]) -> str | None:
        """Return why an /authorize query is refused, else None."""
        if query.get("client_id") not in self.public_clients:
            return "Unknown client."
        if query.get("redirect_uri") not in self.redirect_uris:
            return "Callback URL mismatch."
        if query.get("response_type") != "code":
            return "Unsupported response type."
        if query.get("code_challenge_method") != "S256":
            return "Unsupported code challenge method."
        if not query.get("code_challenge"):
            return "Missing code challenge."
        if query.get("audience") != AUDIENCE:
            return "Service not found."
        return None

    async def _handle_token(self, request: web.Request) -> web.Response:
        """POST /oauth/token: authorization_code, refresh_token, client_credentials."""
        text = await request.text()
        if request.content_type == "application/x-www-form-urlencoded":
            body: Any = dict(parse_qsl(text, keep_blank_values=True))
        else:
            try:
                body = json.loads(text)
            except ValueError:
                body = None
        if not isinstance(body, dict):
            return AuthError(400, "invalid_request", "Invalid request body").response()
        form = {key: str(value) for key, value in body.items()}
        if (account := self._token_account(form)) is not None:
            request[ACCOUNT] = account
        kind = self.faults.take(self.name, request.path, is_auth=True)
        if kind is not None and (response := await self._fault(kind)) is not None:
            return response
        try:
            answer = self._grant(form)
        except AuthError as err:
            return err.response()
        if kind == "missing_fields":
            answer = _damage(answer)
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    def _token_account(self, form: Mapping[str, str]) -> str | None:
        """Attribute a token request to a user or an enterprise client."""
        match form.get("grant_type"):
            case "authorization_code":
                code = self._codes.get(form.get("code", ""))
                return code.email if code else None
            case "refresh_token":
                refresh = self._refresh.get(form.get("refresh_token", ""))
                return refresh.email if refresh else None
            case "client_credentials":
                return form.get("client_id") or None
        return None

    def _grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Check a token request and issue tokens, or raise the Auth0 error."""
        required = {
            "authorization_code": (
                "client_id",
                "code",
                "code_verifier",
                "redirect_uri",
            ),
            "refresh_token": ("client_id", "refresh_token"),
            "client_credentials": ("client_id", "client_secret"),
        }
        grant = form.get("grant_type", "")
        if grant not in required:
            raise AuthError(
                403, "unsupported_grant_type", f"Unsupported grant type: {grant}"
            )
        for key in required[grant]:
            if not form.get(key):
                raise AuthError(
                    400, "invalid_request", f"Missing required parameter: {key}"
                )
        if grant == "client_credentials":
            return self._client_grant(form)
        if form["client_id"] not in self.public_clients:
            raise AuthError(401, "access_denied", "Unauthorized")
        if grant == "authorization_code":
            return self._code_grant(form)
        return self._refresh_grant(form)

    def _code_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Exchange a code and its PKCE verifier (single use, within its lifetime)."""
        code = self._codes.pop(form["code"], None)
        now = self.now()
        if code is None or code.client_id != form["client_id"] or now >= code.expires:
            raise AuthError(403, "invalid_grant", "Invalid authorization code")
        if code.redirect_uri != form["redirect_uri"]:
            raise AuthError(403, "invalid_grant", "Redirect URI is wrong.")
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        if urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
            raise AuthError(403, "invalid_grant", "Failed to verify code verifier")
        answer = self._app_tokens(code.client_id, code.email, code.scope, now)
        if "offline_access" in code.scope.split():
            answer["refresh_token"] = self._issue_refresh(
                code.client_id, code.email, secrets.token_hex(8), code.scope, now
            )
        return answer

    def _refresh_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Trade a refresh token; rotate it, and revoke the family on reuse."""
        token = form["refresh_token"]
        refresh = self._refresh.get(token)
        now = self.now()
        invalid = AuthError(403, "invalid_grant", "Unknown or invalid refresh token.")
        if (
            refresh is None
            or refresh.client_id != form["client_id"]
            or refresh.family in self._revoked_families
            or (
                self.refresh_lifetime is not None
                and now >= refresh.issued + self.refresh_lifetime
            )
        ):
            raise invalid
        if refresh.retired is not None and now - refresh.retired >= self.reuse_interval:
            self._revoked_families.add(refresh.family)
            raise invalid
        answer = self._app_tokens(refresh.client_id, refresh.email, refresh.scope, now)
        if self.rotate_refresh_tokens:
            if refresh.retired is None:
                refresh.retired = now
            answer["refresh_token"] = self._issue_refresh(
                refresh.client_id, refresh.email, refresh.family, refresh.scope, now
            )
        return answer

    def _client_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Serve the client-credentials grant (audience required)."""
        client_id = form["client_id"]
        secret = self.enterprise_clients.get(client_id)
        if secret is None or not secrets.compare_digest(
            secret.encode(), form["client_secret"].encode()
        ):
            raise AuthError(401, "access_denied", "Unauthorized")
        if form.get("audience") != AUDIENCE:
            raise AuthError(
                403, "access_denied", f"Service not found: {form.get('audience', '')}"
            )
        token = secrets.token_urlsafe(32)
        now = self.now()
        self._tokens[token] = _Access(
            "partner", client_id, now + self.client_token_lifetime
        )
        return {
            "access_token": token,
            "scope": "partner",
            "expires_in": int(self.client_token_lifetime.total_seconds()),
            "token_type": "Bearer",
        }

    def _app_tokens(
        self, client_id: str, email: str, scope: str, now: datetime
    ) -> dict[str, Any]:
        """Issue a consumer access token answer (no refresh token yet)."""
        del client_id
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Access("app", email, now + self.token_lifetime)
        return {
            "access_token": token,
            "scope": scope,
            "expires_in": int(self.token_lifetime.total_seconds()),
            "token_type": "Bearer",
        }

    def _issue_refresh(
        self, client_id: str, email: str, family: str, scope: str, now: datetime
    ) -> str:
        """Issue a refresh token of ``family``."""
        token = secrets.token_urlsafe(32)
        self._refresh[token] = _Refresh(client_id, email, family, scope, now)
        return token

    # ------------------------------------------------------------------ lookups

    def _user_premise(self, access: _Access, premise_id: str) -> SimPremise:
        """Return a premise the consumer owns, else 404."""
        if premise_id not in self.user_premises.get(access.subject, ()):
            raise ApiError(404, "Not Found")
        return self.premise(premise_id)

    def _meter_of(
        self, request: web.Request, premises: list[SimPremise]
    ) -> tuple[SimMeter, SimPremise]:
        """Return the meter named in the path, if among ``premises`` and sent encoded."""
        meter_id = request.match_info["meter_id"]
        raw_path = request.raw_path.split("?", 1)[0]
        if self.require_encoded_ids and ":" in meter_id and meter_id in raw_path:
            raise ApiError(404, "Not Found")
        for premise in premises:
            for meter in premise.meters:
                if meter.id == meter_id:
                    return meter, premise
        raise ApiError(404, "Not Found")

    def _enterprise(self, request: web.Request, access: _Access) -> list[SimPremise]:
        """Return the path's enterprise premises, if the token's client reads them."""
        eid = request.match_info["eid"]
        if self.client_enterprises.get(access.subject) != eid:
            raise ApiError(403, "Forbidden")
        return self.premises_of_enterprise(eid)

    # ------------------------------------------------------------------ consumer

    def _app_state(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /app/state: premise_list, each with its meter_list."""
        del request
        return {
            "premise_list": [
                {
                    **premise.as_json(),
                    "meter_list": [
                        {"id": m.id, "type": m.type, "created_at": _iso(EPOCH)}
                        for m in premise.meters
                    ],
                }
                for premise in self.premises_of_user(access.subject)
            ]
        }

    def _app_instant(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /app/instant/{premise_id}: the rate of each meter's last slot."""
        premise = self._user_premise(access, request.match_info["premise_id"])
        results = []
        for meter in premise.meters:
            heard = self._last_heard(meter)
            rate = None
            if heard is not None and self._published(meter, heard - QUARTER):
                k = (int(heard.timestamp()) - EPOCH_S) // SLOT_S
                rate = _thousandths(slot_usage(meter, k - 1) * 4)
            results.append(
                {
                    "id": meter.id,
                    "type": meter.type,
                    "instant_power": rate,
                    "updated_at": None if heard is None else _iso(heard),
                }
            )
        return {"results": results}

    def _app_usage(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /app/usage/{meter_id}?start&end&granularity."""
        meter, premise = self._meter_of(request, self.premises_of_user(access.subject))
        return self._usage(request, meter, premise)

    # ------------------------------------------------------------------ enterprise

    def _partner_premises(
        self, request: web.Request, access: _Access
    ) -> list[dict[str, Any]]:
        """GET /partner/{id}/premise (offset/limit pages, plain list)."""
        premises = self._enterprise(request, access)
        return _page_of(request, [p.as_json() for p in premises], self.meter_page_cap)

    def _partner_meters(
        self, request: web.Request, access: _Access
    ) -> list[dict[str, Any]]:
        """GET /partner/{id}/meter (offset/limit pages, plain list)."""
        rows = []
        for premise in self._enterprise(request, access):
            for meter in premise.meters:
                heard = self._last_heard(meter)
                rows.append(
                    {
                        "id": meter.id,
                        "type": meter.type,
                        "premise_id": premise.id,
                        "uom": meter.uom,
                        "state": "connected" if heard else "disconnected",
                        "created_at": _iso(EPOCH),
                        "last_reading": None
                        if heard is None
                        else {
                            "value": self._actual(meter, heard),
                            "hw_timestamp": _iso(heard),
                        },
                    }
                )
        return _page_of(request, rows, self.meter_page_cap)

    def _partner_bulk(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /partner/{id}/bulk: recently heard meters, pages linked by ``next``."""
        premises = self._enterprise(request, access)
        offset, limit = _offset_limit(request, self.bulk_page_cap)
        now = self.now()
        rows = []
        for premise in premises:
            for meter in premise.meters:
                heard = self._last_heard(meter)
                if heard is None or heard <= now - self.recent:
                    continue
                rows.append(
                    {
                        "meter_id": meter.id,
                        "meter_type": meter.type,
                        "value": self._value(meter, heard),
                        "timestamp": _iso(heard),
                    }
                )
        following = offset + limit
        link = None
        if following < len(rows):
            query = urlencode({"limit": limit, "offset": following})
            link = f"{self.prefix}/partner/{request.match_info['eid']}/bulk?{query}"
        return {"results": rows[offset:following], "next": link}

    def _partner_usage(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /partner/{id}/meter/{meter_id}/usage."""
        meter, premise = self._meter_of(request, self._enterprise(request, access))
        return self._usage(request, meter, premise)

    def _partner_readings(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /partner/{id}/meter/{meter_id}/readings?start&end: 15-minute readings."""
        meter, _ = self._meter_of(request, self._enterprise(request, access))
        start, end = self._window(request)
        at = _Grid("fifteenminute", ZoneInfo("UTC")).ceil(start)
        results = []
        while at <= end:
            if self._published(meter, at):
                results.append(
                    {
                        "time": _iso(at),
                        "actual": self._actual(meter, at),
                        "value": self._value(meter, at),
                    }
                )
            if len(results) > self.max_points:
                raise ApiError(400, "Too many data points requested")
            at += QUARTER
        return {"meter_id": meter.id, "meter_type": meter.type, "results": results}

    def _partner_grid_latest(
        self, request: web.Request, access: _Access
    ) -> list[dict[str, Any]]:
        """GET /partner/{id}/grid/latest: voltage and frequency per gateway."""
        at = _slot_floor(self.now())
        k = (int(at.timestamp()) - EPOCH_S) // SLOT_S
        return [
            {
                "gateway_id": p.gateway_id,
                "premise_id": p.id,
                "hw_timestamp": _iso(at),
                "voltage": 240 + (_h(p.gateway_id, k, "v") % 1001 - 500) / 100,
                "frequency": 60 + (_h(p.gateway_id, k, "f") % 101 - 50) / 1000,
            }
            for p in self._enterprise(request, access)
        ]

    def _partner_gateways(
        self, request: web.Request, access: _Access
    ) -> list[dict[str, Any]]:
        """GET /partner/{id}/gateway (offset/limit pages, plain list)."""
        now = self.now()
        rows = [
            {
                "id": p.gateway_id,
                "premise_id": p.id,
                "state": "connected",
                "model": "I2P1R5",
                "firmware_version": "2.4.1",
                "last_heard": _iso(_slot_floor(now)),
                "created_at": _iso(EPOCH),
            }
            for p in self._enterprise(request, access)
        ]
        return _page_of(request, rows, self.meter_page_cap)

    # ------------------------------------------------------------------ usage

    def _window(self, request: web.Request) -> tuple[datetime, datetime]:
        """Parse ``start`` (required) and ``end`` (default now); 400 when wrong."""
        try:
            start = parse_iso(request.query["start"].replace("Z", "+00:00"))
            end_text = request.query.get("end")
            end = (
                self.now()
                if end_text is None
                else parse_iso(end_text.replace("Z", "+00:00"))
            )
        except (KeyError, ValueError) as err:
            raise ApiError(400, "start and end must be ISO 8601 times") from err
        if end < start:
            raise ApiError(400, "end is before start")
        return start, end

    def _usage(
        self, request: web.Request, meter: SimMeter, premise: SimPremise
    ) -> dict[str, Any]:
        """Return the usage rows of one meter (both APIs answer the same shape)."""
        start, end = self._window(request)
        name = request.query.get("granularity", "hour")
        if name not in GRANULARITIES:
            raise ApiError(400, f"Unknown granularity: {name}")
        if name == "auto":
            span = end - start
            name = (
                "fifteenminute"
                if span <= timedelta(days=1)
                else "hour"
                if span <= timedelta(days=7)
                else "day"
                if span <= timedelta(days=92)
                else "month"
            )
        grid = _Grid(name, premise.zone)
        include_start = request.query.get("include_start", "true").lower() != "false"
        now = self.now()
        rows: list[dict[str, Any]] = []
        total = 0
        for at in self._points(grid, start, end):
            if at == start and not include_start:
                continue
            low, high = (
                (grid.step(at, -1), at)
                if self.usage_label == "end"
                else (at, grid.step(at, 1))
            )
            if low >= now:
                break
            if len(rows) >= self.max_points:
                raise ApiError(400, "Too many data points requested")
            rows.append(self._row(meter, at, low, high))
            if (used := rows[-1]["usage"]) is not None:
                total += round(Decimal(repr(used)) * 1000)
        return {
            "meter_id": meter.id,
            "meter_type": meter.type,
            "granularity": name,
            "sum_usage": _thousandths(total),
            "results": rows,
        }

    @staticmethod
    def _points(grid: _Grid, start: datetime, end: datetime) -> Iterator[datetime]:
        """Grid points in [start, end]."""
        at = grid.ceil(start)
        while at <= end:
            yield at
            at = grid.step(at, 1)

    def _row(
        self, meter: SimMeter, at: datetime, low: datetime, high: datetime
    ) -> dict[str, Any]:
        """One usage row: register at ``at``, usage and power of [low, high]."""
        known = low >= EPOCH and self._bucket_known(meter, low, high)
        usage = register_at(meter, high) - register_at(meter, low) if known else None
        hours = Decimal((high - low).total_seconds()) / 3600
        at_known = at >= EPOCH and self._known(meter, at)
        return {
            "time": _iso(at),
            "value": self._value(meter, at) if at_known else None,
            "actual": self._actual(meter, at) if at_known else None,
            "usage": None if usage is None else _thousandths(usage),
            "power": None
            if usage is None
            else float(round(Decimal(usage) / 1000 / hours, 6)),
        }


# --------------------------------------------------------------------------- helpers


def _too_many(wait: int) -> web.Response:
    """Return the 429 answer with its Retry-After."""
    return web.json_response(
        {"message": "Too many requests"},
        status=429,
        headers={"Retry-After": str(wait)},
    )


def _page(status: int, title: str, body: str) -> web.Response:
    """Return a minimal HTML page of the Auth0 stand-in."""
    heading = html.escape(title)
    text = f"<!doctype html><title>{heading}</title><h1>{heading}</h1>{body}"
    return web.Response(text=text, status=status, content_type="text/html")


def _offset_limit(request: web.Request, cap: int) -> tuple[int, int]:
    """Parse ``offset`` (default 0) and ``limit`` (default and maximum ``cap``)."""
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(cap)))
    except ValueError as err:
        raise ApiError(400, "offset and limit must be integers") from err
    if offset < 0 or limit < 1:
        raise ApiError(400, "offset must be >= 0 and limit >= 1")
    return offset, min(limit, cap)


def _page_of(
    request: web.Request, rows: list[dict[str, Any]], cap: int
) -> list[dict[str, Any]]:
    """One offset/limit page of ``rows``."""
    offset, limit = _offset_limit(request, cap)
    return rows[offset : offset + limit]


def _damage(payload: Any) -> Any:
    """Drop required fields from the rows of a payload (``missing_fields``)."""
    if isinstance(payload, dict):
        for key in ("results", "premise_list"):
            if isinstance(payload.get(key), list):
                return {
                    **payload,
                    key: drop_required_fields(payload[key], IDENTITY_KEYS),
                }
    return drop_required_fields(payload, IDENTITY_KEYS)


def quote_id(meter_id: str) -> str:
    """Percent-encode a meter id for a path segment (``:`` -> ``%3A``)."""
    return quote(meter_id, safe="")
