"""The simulated Locus Energy cloud (API v3), written from the Locus Energy API v3 document.

The API is served below ``/locus/v3``; its OAuth token endpoint lives at the
server ROOT, ``/oauth/token``, because clients derive it from the API URL's
origin, as on the real service (https://api.locusenergy.com/oauth/token).
Shapes, paths, status codes, the 3600 s token lifetime, the "one request at a
time" limit and the JSON examples follow the document verbatim where it gives
them (``statusCode`` inside every site of a list, alert timestamps written
``-00:00`` at a zero offset, ``PI_m`` without aggregations, …).

Data is synthetic and deterministic: every 15-minute value derives from
(component id, interval index) through hashlib noise and a small solar model,
in integer thousandths (mWh, mW, mV…), so sums are exact and every run sees
the same numbers. Values are computed on demand (per-day caches), never
precomputed. Data exists from 2025-01-01 UTC up to the simulator's "now".

Decisions where the document is silent or contradicts itself (tests and
clients may rely on them):

* Accounts: a password/refresh token belongs to ``"<client_id>:<username>"``, a
  client-credentials token to ``"<client_id>"``; that string is the request
  log's ``account`` and the unit of the concurrency limit. A token request is
  attributed from its form (refresh grants: to the refresh token's owner).
* Concurrency: a request arriving while ``max_concurrency`` requests of its
  account are being processed gets 429 ``{"message": "Too many requests",
  "statusCode": 429}``. Order: token check (401) → slot (429) → fault →
  ``processing_delay`` → endpoint. A request hanging in a ``timeout`` fault
  gives its slot back (the gateway dropped it).
* OAuth errors are ``{"error": …}``: unknown client or wrong secret 401
  invalid_client; wrong user or password 401 invalid_grant; a grant the client
  may not use 400 unauthorized_client; unknown, expired, rotated-out or refused
  refresh tokens 400 invalid_grant; missing fields or a non-form body 400
  invalid_request; other grant types 400 unsupported_grant_type.
* API errors are ``{"statusCode": N, "message": …}``: unknown ids 404, ids of
  partners the account may not read 403, bad parameters 400.
* Site data sums the site's *top-level* measuring GENERATION components (the PV
  revenue meters; an inverter below a meter measures the same energy again, so
  summing both would count it twice). A meter gap is left out of the sum; an
  interval where every meter is silent has no measured site value.
* data: one point per bucket whose start lies in [start, end) (start and end are
  wall times in ``tz``), as in the document's lifetime example: buckets without
  data (before 2025, in the future, in a gap) are points with only ``id`` and
  ``ts``. A bucket holds all its published 15-minute intervals even when ``end``
  cuts it. Coarser granularities aggregate the 15-minute values (sum, mean of
  the present intervals, max, min); 1min/5min split a quarter's sums evenly
  (integer remainder to the first slices) and repeat its avg/max/min.
* Window limits compare the wall-clock difference end - start: 1min < 5 days,
  5min/15min/hourly < 31 days, daily < one calendar year; ``end <= start`` is
  400. ``start``/``end`` must be naive ``YYYY-MM-DDThh:mm:ss``.
* Modeled fields (W_m, Wh_m) need every documented field parameter with an
  allowed value (``modelType=simple&irradianceSource=weatherStation&
  inverterClipping=true|false``), else 400. Wh_e only exists at daily and
  coarser, GHI_m/GHIh_m at hourly and coarser; ``latest`` only for components.
* ``latest``: the newest published 15-minute interval (up to 31 days back) in
  which any requested field has a value; ``data`` is empty when there is none.
* Net-grid meters report grid import only (load minus the site's raw PV, never
  below 0). Weather stations have no energy fields; conceptual nodes no fields.
* Alerts: ``updated`` is the end once it has happened, else the start; ``end``
  appears once it is <= now. updatedSince keeps ``updated >= updatedSince``;
  open-during keeps alerts with start <= max and (no end or end >= min).
  Partner alerts need updatedSince (at most 7 days back) or both open-during
  bounds (span at most 31 days).
* Ground truth (``truth_hourly``) ignores ``publish_late`` and
  ``publication_delay`` but only covers intervals that ended by now;
  ``truth_latest`` is what ``gran=latest`` answers right now.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache, partial
import hashlib
import math
import re
import secrets
from typing import Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from .clock import QUARTER, Now, as_utc
from .faults import FaultKind, Faults, as_number, drop_required_fields
from .requestlog import ACCOUNT

DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
DEMO_USERNAME = "demo@solar.example"
DEMO_PASSWORD = "demo-password"
DEMO_PARTNER_ID = 4242
OTHER_PARTNER_ID = 4343
SMALL_PARTNER_ID = 4444
"""A small partner of the demo user: two homes (4242 is the large one)."""
CC_CLIENT_ID = "cc-client"
CC_CLIENT_SECRET = "cc-secret"

PREFIX = "/locus/v3"
TOKEN_PATH = "/oauth/token"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_S = int(EPOCH.timestamp())
PER_DAY = 96
DAY_S = 86_400
LATEST_LOOKBACK = 31 * PER_DAY
IDENTITY_KEYS = ("id", "ts", "componentId", "siteId", "baseField", "access_token")
PASSWORD_GRANTS = frozenset({"password", "refresh_token"})
ALERT_TYPES = (
    "Device Fault",
    "Performance Index",
    "Strings Performance",
    "System Disconnect",
    "Zero Generation",
)
PRIORITIES = ("High", "Medium", "Low")

type Role = Literal["pv_meter", "inverter", "net_meter", "weather", "conceptual"]
type Effect = Literal["gap", "zero"]
type Row = dict[str, int]

# --------------------------------------------------------------------------- dataavailable

ALL_GRANULARITIES = (
    "latest",
    "1min",
    "5min",
    "15min",
    "hourly",
    "daily",
    "monthly",
    "yearly",
)
MODELED_GRANULARITIES = ALL_GRANULARITIES[1:]
SITE_POWER_GRANULARITIES = ALL_GRANULARITIES[2:]
HOURLY_UP = ALL_GRANULARITIES[4:]
DAILY_UP = ALL_GRANULARITIES[5:]
MODEL_PARAMETERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("modelType", ("simple",)),
    ("irradianceSource", ("weatherStation",)),
    ("inverterClipping", ("true", "false")),
)


def _base_field(
    base: str,
    long_name: str,
    unit: str,
    aggregations: tuple[str, ...],
    granularities: tuple[str, ...] = ALL_GRANULARITIES,
    *,
    source: str = "Measured",
    parameters: bool = False,
) -> dict[str, Any]:
    """Build one baseField object in the document's key order."""
    entry: dict[str, Any] = {
        "baseField": base,
        "longName": long_name,
        "source": source,
        "unit": unit,
    }
    if aggregations:
        entry["aggregations"] = [
            {"shortName": f"{base}_{agg}", "aggregation": agg} for agg in aggregations
        ]
    if parameters:
        entry["fieldParameters"] = [
            {"param": param, "values": list(values)}
            for param, values in MODEL_PARAMETERS
        ]
    entry["granularities"] = list(granularities)
    return entry


_AMM = ("avg", "max", "min")
_F_A = _base_field("A", "AC Current", "A", _AMM)
_F_HZ = _base_field("Hz", "AC Frequency", "Hz", _AMM)
_F_PF = _base_field("PF", "AC Power Factor", "", _AMM)
_F_PI_M = _base_field(
    "PI_m",
    "Performance Index",
    "",
    (),
    MODELED_GRANULARITIES,
    source="Modeled",
    parameters=True,
)
_F_PPV = _base_field("PPV", "AC Voltage L-L", "V", _AMM)
_F_PHV = _base_field("PhV", "AC Voltage L-N", "V", _AMM)
_F_VA = _base_field("VA", "AC Apparent Power", "VA", _AMM)
_F_VAR = _base_field("VAR", "AC Reactive Power", "VAR", _AMM)
_F_W = _base_field("W", "AC Power", "W", _AMM)
_F_W_M = _base_field(
    "W_m",
    "AC Power",
    "W",
    ("avg",),
    MODELED_GRANULARITIES,
    source="Modeled",
    parameters=True,
)
_F_WH = _base_field("Wh", "AC Energy", "Wh", ("sum",))
_F_WH_M = _base_field(
    "Wh_m",
    "AC Energy",
    "Wh",
    ("sum",),
    MODELED_GRANULARITIES,
    source="Modeled",
    parameters=True,
)
_F_PHASES = tuple(
    _base_field(f"Wph{phase}", f"AC Power {phase}", "W", _AMM) for phase in "ABC"
)
_F_POA = _base_field("POA", "Irradiance Plane of Array", "W/m²", _AMM)
_F_TMP = _base_field("TmpAmb", "Ambient Temperature", "°C", _AMM)

COMPONENT_FIELDS: dict[Role, tuple[dict[str, Any], ...]] = {
    "pv_meter": (
        _F_A,
        _F_HZ,
        _F_PF,
        _F_PPV,
        _F_PHV,
        _F_VA,
        _F_VAR,
        _F_W,
        _F_WH,
        *_F_PHASES,
    ),
    "inverter": (_F_A, _F_HZ, _F_PF, _F_PI_M, _F_PHV, _F_W, _F_W_M, _F_WH, _F_WH_M),
    "net_meter": (_F_W, _F_WH),
    "weather": (_F_POA, _F_TMP),
    "conceptual": (),
}
# The document's "Get data available for site" example, verbatim.
SITE_FIELDS: tuple[dict[str, Any], ...] = (
    _base_field(
        "GHI_m",
        "VI - Irradiance Global Horizontal",
        "W/m²",
        _AMM,
        HOURLY_UP,
        source="Modeled",
    ),
    _base_field(
        "GHIh_m",
        "VI - Insolation Global Horizontal",
        "Wh/m²",
        ("sum",),
        HOURLY_UP,
        source="Modeled",
    ),
    _base_field("W", "AC Power", "W", ("avg", "max"), SITE_POWER_GRANULARITIES),
    _base_field(
        "W_m",
        "AC Power",
        "W",
        ("avg",),
        MODELED_GRANULARITIES,
        source="Modeled",
        parameters=True,
    ),
    _base_field("Wh", "AC Energy", "Wh", ("sum",), MODELED_GRANULARITIES),
    _base_field("Wh_e", "AC Energy", "Wh", ("sum",), DAILY_UP, source="Expected"),
    _base_field(
        "Wh_m",
        "AC Energy",
        "Wh",
        ("sum",),
        MODELED_GRANULARITIES,
        source="Modeled",
        parameters=True,
    ),
)


def _bulk_field(base: str, long_name: str, source: str, unit: str, agg: str) -> Any:
    """Build one baseField of the bulk (partner sites) dataavailable answer."""
    return _base_field(base, long_name, unit, (agg,), ("monthly",), source=source)


# The document's "Get bulk dataavailable" example, verbatim.
BULK_FIELDS: tuple[dict[str, Any], ...] = (
    _bulk_field("Wh", "AC Energy", "Measured", "Wh", "sum"),
    _bulk_field("Whp", "AC Energy (prorated)", "Measured", "Wh", "sum"),
    _bulk_field("Wh_e", "AC Energy", "Expected", "Wh", "sum"),
    _bulk_field(
        "GHIh_m", "VI - Insolation Global Horizontal", "Modeled", "Wh/m²", "sum"
    ),
    _bulk_field(
        "GHIhp_m",
        "VI - Insolation Global Horizontal (prorated)",
        "Modeled",
        "Wh/m²",
        "sum",
    ),
    _bulk_field("GHIh_t", "Insolation Global Horizontal", "Expected", "Wh/m²", "sum"),
    _bulk_field("EER", "Energy Expectations Ratio", "Modeled", "", "avg"),
    _bulk_field("GEER", "GHI-adjusted Energy Expectations Ratio", "Modeled", "", "avg"),
)
BULK_COMPUTED = frozenset({"Wh_sum", "Whp_sum", "Wh_e_sum", "GHIh_m_sum"})


def short_names(base_fields: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """Map every requestable shortName to its baseField object."""
    return {
        aggregation["shortName"]: entry
        for entry in base_fields
        for aggregation in entry.get("aggregations", ())
    }


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class SimComponent:
    """One component (device) of a site: what the API shows plus what drives its data.

    ``role`` picks the synthetic series and the dataavailable set; ``capacity_w``
    is the AC nameplate in W (a PV meter's is its inverters' after wiring
    losses; a net meter's is the site's, to size its load). Latitude and
    longitude repeat the site's so that a component alone determines its data.
    """

    id: int
    site_id: int
    client_id: int
    parent_id: int
    parent_type: Literal["SITE", "COMPONENT"]
    node_id: str
    name: str
    node_type: str
    application: str
    generation_type: str
    oem: str
    model: str
    role: Role
    latitude: float
    longitude: float
    capacity_w: int = 0
    commercial: bool = False
    serial_number: str | None = None
    description: str | None = None

    @property
    def is_conceptual(self) -> bool:
        """Conceptual nodes group others in the hierarchy and measure nothing."""
        return self.role == "conceptual"

    @property
    def has_energy(self) -> bool:
        """Tell whether the component measures AC energy (Wh)."""
        return self.role in ("pv_meter", "inverter", "net_meter")

    def as_json(self) -> dict[str, Any]:
        """Render the documented component object."""
        data: dict[str, Any] = {
            "id": self.id,
            "siteId": self.site_id,
            "clientId": self.client_id,
            "parentId": self.parent_id,
            "parentType": self.parent_type,
            "nodeId": self.node_id,
            "name": self.name,
            "nodeType": self.node_type,
            "application": self.application,
            "generationType": self.generation_type,
            "oem": self.oem,
            "model": self.model,
            "isConceptualNode": self.is_conceptual,
        }
        if self.serial_number is not None:
            data["serialNumber"] = self.serial_number
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass(frozen=True, slots=True)
class SimSite:
    """One Locus site: location, install data, model settings and its components."""

    id: int
    partner_id: int
    client_id: int
    name: str
    address1: str
    locale3: str
    locale1: str
    locale_code1: str
    postal_code: str
    timezone: str
    latitude: float
    longitude: float
    size_kw: float | None
    components: tuple[SimComponent, ...]
    address2: str | None = ""
    country_code: str = "US"
    show_coordinates: bool = False
    installer: str | None = None
    install_crew: str | None = None
    install_date: str | None = None
    pto_date: str | None = None
    startup_date: str | None = None
    tmy3_id: int | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def pv_meters(self) -> tuple[SimComponent, ...]:
        """The components whose sum is the site's measured production.

        The topmost GENERATION components with energy: every inverter of this
        simulator sits below such a meter, which already measures its energy.
        """
        return tuple(
            c
            for c in self.components
            if c.role == "pv_meter" and c.application == "GENERATION"
        )

    def as_json(self) -> dict[str, Any]:
        """Render the documented site object (optional keys only when set)."""
        data: dict[str, Any] = {
            "id": self.id,
            "clientId": self.client_id,
            "name": self.name,
            "address1": self.address1,
        }
        if self.address2 is not None:
            data["address2"] = self.address2
        data |= {
            "locale3": self.locale3,
            "locale1": self.locale1,
            "localeCode1": self.locale_code1,
            "postalCode": self.postal_code,
            "countryCode": self.country_code,
        }
        if self.show_coordinates:
            data |= {"latitude": self.latitude, "longitude": self.longitude}
        data["locationTimezone"] = self.timezone
        return data


@dataclass(frozen=True, slots=True)
class SimClient:
    """A Locus client (project): a container of sites below a partner."""

    id: int
    partner_id: int
    tz: str
    first_name: str
    last_name: str
    email: str

    def as_json(self) -> dict[str, Any]:
        """Render the documented client object."""
        return {
            "id": self.id,
            "partnerId": self.partner_id,
            "tz": self.tz,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
        }


@dataclass(frozen=True, slots=True)
class Recurring:
    """A recurring event on one component: an alert, an effect on its data, or both.

    Occurrence ``n`` starts ``first_day + n * every_days`` days after EPOCH at
    ``start_minute`` UTC and lasts ``duration`` (None: never ends).
    ``every_days`` 0 means a single occurrence. Alert ids are ``id_base + n``.
    """

    id_base: int
    component_id: int
    first_day: int
    every_days: int
    start_minute: int
    duration: timedelta | None
    alert_type: str | None = None
    priority: str = "Low"
    effect: Effect | None = None
    short: str | None = None
    long: str | None = None

    @property
    def _origin_s(self) -> int:
        """Seconds after EPOCH at which occurrence 0 starts."""
        return self.first_day * DAY_S + self.start_minute * 60

    def start(self, n: int) -> datetime:
        """Return the start of occurrence ``n``."""
        return EPOCH + timedelta(seconds=self._origin_s + n * self.every_days * DAY_S)

    def end(self, n: int) -> datetime | None:
        """Return the scheduled end of occurrence ``n`` (None: open forever)."""
        return None if self.duration is None else self.start(n) + self.duration

    def started(self, now: datetime) -> int:
        """Return how many occurrences have started by ``now``."""
        elapsed = int((as_utc(now) - EPOCH).total_seconds()) - self._origin_s
        if elapsed < 0:
            return 0
        if self.every_days == 0:
            return 1
        return elapsed // (self.every_days * DAY_S) + 1

    def covers(self, start_s: int) -> bool:
        """Tell whether an occurrence covers the instant ``start_s`` (epoch seconds)."""
        if self.duration is None:
            return False
        elapsed = start_s - EPOCH_S - self._origin_s
        if elapsed < 0:
            return False
        if self.every_days:
            elapsed %= self.every_days * DAY_S
        return elapsed < self.duration.total_seconds()


# --------------------------------------------------------------------------- the hierarchy

MAPLE_SITE_ID = 3393701
HARBOR_SITE_ID = 3393702
RIVERSIDE_SITE_ID = 3393711
PRAIRIE_SITE_ID = 3393712
FRONT_RANGE_SITE_ID = 3393713
SONORAN_SITE_ID = 3393714
CEDAR_SITE_ID = 3394301
WILLOW_SITE_ID = 3394401
BIRCH_SITE_ID = 3394402

MAPLE_PV_METER_ID = 5437001
MAPLE_ARRAY_GROUP_ID = 5437002
MAPLE_INVERTER_ID = 5437003
MAPLE_NET_METER_ID = 5437004
MAPLE_WEATHER_ID = 5437005
HARBOR_PV_METER_ID = 5437011
HARBOR_INVERTER_ID = 5437012
HARBOR_NET_METER_ID = 5437013
CEDAR_PV_METER_ID = 5494001
CEDAR_INVERTER_ID = 5494002
WILLOW_PV_METER_ID = 5495001
WILLOW_INVERTER_ID = 5495002
WILLOW_NET_METER_ID = 5495003
BIRCH_PV_METER_ID = 5495011
BIRCH_INVERTER_ID = 5495012
RIVERSIDE_METER_ID = 5441001
PRAIRIE_INVERTER_ID = 5442101
FRONT_RANGE_METER_ID = 5443002
FRONT_RANGE_INVERTER_ID = 5443105
SONORAN_INVERTER_ID = 5444207

CLIENTS: tuple[SimClient, ...] = (
    SimClient(
        419010, DEMO_PARTNER_ID, "US/Eastern", "Dana", "Whitfield", "dana@example.com"
    ),
    SimClient(
        419011, DEMO_PARTNER_ID, "US/Pacific", "Marco", "Alvarez", "marco@example.com"
    ),
    SimClient(
        419020,
        DEMO_PARTNER_ID,
        "US/Central",
        "Summit",
        "Commercial Portfolio",
        "ops@summit-commercial.example",
    ),
    SimClient(
        619001,
        SMALL_PARTNER_ID,
        "US/Eastern",
        "Grace",
        "Okafor",
        "grace@example.com",
    ),
    SimClient(
        519001,
        OTHER_PARTNER_ID,
        "US/Mountain",
        "Priya",
        "Natarajan",
        "priya@example.com",
    ),
)


def _node_id(site_id: int, component_id: int) -> str:
    """Return a node id as Locus writes them: logger MAC plus a port."""
    return f"OB.001EC6{site_id & 0xFFFFFF:06X}.{component_id % 1000}"


@dataclass(frozen=True, slots=True)
class _Place:
    """What every component of a site shares."""

    site_id: int
    client_id: int
    latitude: float
    longitude: float
    commercial: bool


def _component(
    place: _Place,
    component_id: int,
    name: str,
    role: Role,
    parent: int | None,
    **kwargs: Any,
) -> SimComponent:
    """Build a component of ``place``; ``parent`` None means the site itself."""
    defaults: dict[str, Any] = {
        "pv_meter": {
            "node_type": "METER",
            "application": "GENERATION",
            "generation_type": "SOLAR",
            "oem": "Locus Energy",
            "model": "LGate 360" if place.commercial else "LGate 120",
        },
        "inverter": {
            "node_type": "INVERTER",
            "application": "GENERATION",
            "generation_type": "SOLAR",
        },
        "net_meter": {
            "node_type": "METER",
            "application": "NET-GRID",
            "generation_type": "NET-GRID",
            "oem": "Locus Energy",
            "model": "LGate 101",
        },
        "weather": {
            "node_type": "WEATHER_STATION",
            "application": "GENERATION",
            "generation_type": "SOLAR",
            "oem": "Lufft",
            "model": "WS501-UMB",
        },
        "conceptual": {
            "node_type": "ARRAY",
            "application": "GENERATION",
            "generation_type": "SOLAR",
            "oem": "Locus Energy",
            "model": "Virtual Group",
        },
    }[role]
    return SimComponent(
        id=component_id,
        site_id=place.site_id,
        client_id=place.client_id,
        parent_id=place.site_id if parent is None else parent,
        parent_type="SITE" if parent is None else "COMPONENT",
        node_id=_node_id(place.site_id, component_id),
        name=name,
        role=role,
        latitude=place.latitude,
        longitude=place.longitude,
        commercial=place.commercial,
        **(defaults | kwargs),
    )


def _maple() -> SimSite:
    """Maple Street: a residential site with every kind of component."""
    place = _Place(MAPLE_SITE_ID, 419010, 42.4440, -76.5019, commercial=False)
    components = (
        _component(
            place,
            MAPLE_PV_METER_ID,
            "PV Meter",
            "pv_meter",
            None,
            capacity_w=7486,
            serial_number="LG120-0042187",
            description="Revenue grade meter",
        ),
        _component(
            place, MAPLE_ARRAY_GROUP_ID, "Array group", "conceptual", MAPLE_PV_METER_ID
        ),
        _component(
            place,
            MAPLE_INVERTER_ID,
            "Inverter 1",
            "inverter",
            MAPLE_ARRAY_GROUP_ID,
            oem="SolarEdge",
            model="SE7600H-US",
            capacity_w=7600,
            serial_number="7E183A2C-11",
        ),
        _component(place, MAPLE_NET_METER_ID, "Net Meter", "net_meter", None),
        _component(place, MAPLE_WEATHER_ID, "Weather Station", "weather", None),
    )
    return SimSite(
        id=MAPLE_SITE_ID,
        partner_id=DEMO_PARTNER_ID,
        client_id=place.client_id,
        name="Maple Street Residence",
        address1="112 Maple Street",
        locale3="Ithaca",
        locale1="New York",
        locale_code1="NY",
        postal_code="14850",
        timezone="America/New_York",
        latitude=place.latitude,
        longitude=place.longitude,
        size_kw=9.12,
        components=_with_net_capacity(components, 7600),
        installer="Finger Lakes Solar",
        install_date="2024-09-12",
        pto_date="2024-10-03",
        startup_date="2024-10-03",
        tmy3_id=725155,
    )


def _harbor() -> SimSite:
    """Harbor View: a residential site without conceptual node or weather station."""
    place = _Place(HARBOR_SITE_ID, 419011, 33.7361, -118.2923, commercial=False)
    components = (
        _component(
            place,
            HARBOR_PV_METER_ID,
            "PV Meter",
            "pv_meter",
            None,
            capacity_w=4925,
        ),
        _component(
            place,
            HARBOR_INVERTER_ID,
            "Inverter 1",
            "inverter",
            HARBOR_PV_METER_ID,
            oem="Enphase Energy",
            model="IQ8 System",
            capacity_w=5000,
        ),
        _component(place, HARBOR_NET_METER_ID, "Net Meter", "net_meter", None),
    )
    return SimSite(
        id=HARBOR_SITE_ID,
        partner_id=DEMO_PARTNER_ID,
        client_id=place.client_id,
        name="Harbor View Home",
        address1="48 Harbor View Drive",
        address2=None,
        locale3="San Pedro",
        locale1="California",
        locale_code1="CA",
        postal_code="90731",
        timezone="America/Los_Angeles",
        latitude=place.latitude,
        longitude=place.longitude,
        size_kw=6.2,
        components=_with_net_capacity(components, 5000),
        installer="Coastal Sun Energy",
        install_date="2024-06-20",
        pto_date="2024-07-15",
        startup_date="2024-07-16",
        tmy3_id=722970,
    )


def _cedar() -> SimSite:
    """Cedar Lane: the only site of the second partner."""
    place = _Place(CEDAR_SITE_ID, 519001, 40.0150, -105.2705, commercial=False)
    components = (
        _component(
            place, CEDAR_PV_METER_ID, "PV Meter", "pv_meter", None, capacity_w=3840
        ),
        _component(
            place,
            CEDAR_INVERTER_ID,
            "Inverter 1",
            "inverter",
            CEDAR_PV_METER_ID,
            oem="Fronius",
            model="Primo 3.8-1",
            capacity_w=3800,
        ),
    )
    return SimSite(
        id=CEDAR_SITE_ID,
        partner_id=OTHER_PARTNER_ID,
        client_id=place.client_id,
        name="Cedar Lane Cottage",
        address1="7 Cedar Lane",
        locale3="Boulder",
        locale1="Colorado",
        locale_code1="CO",
        postal_code="80302",
        timezone="America/Denver",
        latitude=place.latitude,
        longitude=place.longitude,
        size_kw=None,
        components=components,
        installer="Flatirons Solar",
    )


def _home(
    site_id: int,
    meter_id: int,
    inverter_id: int,
    net_meter_id: int | None,
    **site: Any,
) -> SimSite:
    """Build a home of the small partner: a PV meter over an inverter, a net meter."""
    place = _Place(site_id, 619001, site["latitude"], site["longitude"], False)
    components: tuple[SimComponent, ...] = (
        _component(place, meter_id, "PV Meter", "pv_meter", None, capacity_w=5200),
        _component(
            place,
            inverter_id,
            "Inverter 1",
            "inverter",
            meter_id,
            oem="SolarEdge",
            model="SE5000H-US",
            capacity_w=5000,
        ),
    )
    if net_meter_id is not None:
        components += (_component(place, net_meter_id, "Net Meter", "net_meter", None),)
    return SimSite(
        id=site_id,
        partner_id=SMALL_PARTNER_ID,
        client_id=place.client_id,
        size_kw=6.1,
        components=_with_net_capacity(components, 5000),
        installer="Blue Ridge Solar",
        **site,
    )


def _willow() -> SimSite:
    """Willow Court: the small partner's home with a net meter."""
    return _home(
        WILLOW_SITE_ID,
        WILLOW_PV_METER_ID,
        WILLOW_INVERTER_ID,
        WILLOW_NET_METER_ID,
        name="Willow Court",
        address1="21 Willow Court",
        locale3="Asheville",
        locale1="North Carolina",
        locale_code1="NC",
        postal_code="28801",
        timezone="America/New_York",
        latitude=35.5951,
        longitude=-82.5515,
    )


def _birch() -> SimSite:
    """Birch Lane: the small partner's home without a net meter."""
    return _home(
        BIRCH_SITE_ID,
        BIRCH_PV_METER_ID,
        BIRCH_INVERTER_ID,
        None,
        name="Birch Lane Farmhouse",
        address1="5 Birch Lane",
        locale3="Roanoke",
        locale1="Virginia",
        locale_code1="VA",
        postal_code="24011",
        timezone="America/New_York",
        latitude=37.2710,
        longitude=-79.9414,
    )


@dataclass(frozen=True, slots=True)
class _Plant:
    """The recipe of a commercial site."""

    site_id: int
    name: str
    address1: str
    locale3: str
    locale1: str
    locale_code1: str
    postal_code: str
    timezone: str
    latitude: float
    longitude: float
    meters: int
    inverters_per_meter: int
    inverter_oem: str
    inverter_model: str
    inverter_w: int
    tmy3_id: int
    install_date: str


PLANTS: tuple[_Plant, ...] = (
    _Plant(
        RIVERSIDE_SITE_ID,
        "Riverside Distribution Center",
        "900 River Road",
        "Edgewater",
        "New Jersey",
        "NJ",
        "07020",
        "America/New_York",
        40.8270,
        -73.9760,
        2,
        28,
        "SMA",
        "Sunny Tripower CORE1 33-US",
        33300,
        744860,
        "2023-04-18",
    ),
    _Plant(
        PRAIRIE_SITE_ID,
        "Prairie Logistics Park",
        "2500 Prairie Parkway",
        "Joliet",
        "Illinois",
        "IL",
        "60436",
        "America/Chicago",
        41.5250,
        -88.0817,
        3,
        20,
        "CPS",
        "SCA50KTL-DO/US-480",
        50000,
        725300,
        "2022-08-02",
    ),
    _Plant(
        FRONT_RANGE_SITE_ID,
        "Front Range Manufacturing",
        "7400 Industrial Boulevard",
        "Commerce City",
        "Colorado",
        "CO",
        "80022",
        "America/Denver",
        39.8083,
        -104.9339,
        2,
        35,
        "Yaskawa Solectria",
        "PVI 36TL-480",
        36000,
        725650,
        "2024-02-27",
    ),
    _Plant(
        SONORAN_SITE_ID,
        "Sonoran Solar Campus",
        "1 Desert Way",
        "Tempe",
        "Arizona",
        "AZ",
        "85281",
        "America/Phoenix",
        33.4255,
        -111.9400,
        3,
        25,
        "SMA",
        "Sunny Tripower 62-US-41",
        62500,
        722780,
        "2021-11-09",
    ),
)


def _commercial(index: int, plant: _Plant) -> SimSite:
    """Build a large site: PV meters each above a row of inverters, a net meter, a weather station."""
    place = _Place(plant.site_id, 419020, plant.latitude, plant.longitude, True)
    base = 5440000 + index * 1000
    components: list[SimComponent] = []
    for meter in range(1, plant.meters + 1):
        meter_id = base + meter
        components.append(
            _component(
                place,
                meter_id,
                f"PV Meter {meter}",
                "pv_meter",
                None,
                capacity_w=round(plant.inverters_per_meter * plant.inverter_w * 0.985),
                description="Revenue grade meter",
            )
        )
        components.extend(
            _component(
                place,
                base + meter * 100 + inverter,
                f"Inverter {meter}-{inverter:02d}",
                "inverter",
                meter_id,
                oem=plant.inverter_oem,
                model=plant.inverter_model,
                capacity_w=plant.inverter_w,
                serial_number=f"SN{base + meter * 100 + inverter}",
            )
            for inverter in range(1, plant.inverters_per_meter + 1)
        )
    total_w = plant.meters * plant.inverters_per_meter * plant.inverter_w
    components.append(_component(place, base + 10, "Net Meter", "net_meter", None))
    components.append(_component(place, base + 20, "Weather Station", "weather", None))
    return SimSite(
        id=plant.site_id,
        partner_id=DEMO_PARTNER_ID,
        client_id=place.client_id,
        name=plant.name,
        address1=plant.address1,
        address2="",
        locale3=plant.locale3,
        locale1=plant.locale1,
        locale_code1=plant.locale_code1,
        postal_code=plant.postal_code,
        timezone=plant.timezone,
        latitude=plant.latitude,
        longitude=plant.longitude,
        size_kw=round(total_w * 1.22 / 1000, 1),
        components=_with_net_capacity(tuple(components), total_w),
        show_coordinates=True,
        installer="Summit Commercial Solar",
        install_crew="Crew 7",
        install_date=plant.install_date,
        pto_date=plant.install_date,
        startup_date=plant.install_date,
        tmy3_id=plant.tmy3_id,
    )


def _with_net_capacity(
    components: tuple[SimComponent, ...], capacity_w: int
) -> tuple[SimComponent, ...]:
    """Give net meters the site's AC capacity: their load scales with it."""
    return tuple(
        replace(c, capacity_w=capacity_w) if c.role == "net_meter" else c
        for c in components
    )


SITES: tuple[SimSite, ...] = (
    _maple(),
    _harbor(),
    *(_commercial(i, plant) for i, plant in enumerate(PLANTS, start=1)),
    _cedar(),
    _willow(),
    _birch(),
)
_SITE_BY_ID: dict[int, SimSite] = {site.id: site for site in SITES}
_COMPONENT_BY_ID: dict[int, SimComponent] = {
    c.id: c for site in SITES for c in site.components
}
PARTNERS: frozenset[int] = frozenset(
    {DEMO_PARTNER_ID, OTHER_PARTNER_ID, SMALL_PARTNER_ID}
)

_DOC_FAULT_LONG = "A voltage higher than 2100 V is present on the DC bus. (Resettable)"

SCHEDULES: tuple[Recurring, ...] = (
    # Maple Street's inverter loses its connection every third day, 13-15 UTC:
    # it reports nothing then (a data gap).
    Recurring(
        810000,
        MAPLE_INVERTER_ID,
        first_day=0,
        every_days=3,
        start_minute=13 * 60,
        duration=timedelta(hours=2),
        alert_type="System Disconnect",
        priority="High",
        effect="gap",
    ),
    Recurring(
        820000,
        HARBOR_INVERTER_ID,
        first_day=2,
        every_days=7,
        start_minute=20 * 60,
        duration=timedelta(hours=5),
        alert_type="Device Fault",
        priority="Medium",
        short="VDC high",
        long=_DOC_FAULT_LONG,
    ),
    # Harbor View's PV meter goes silent every tenth night, without an alert.
    Recurring(
        830000,
        HARBOR_PV_METER_ID,
        first_day=4,
        every_days=10,
        start_minute=9 * 60,
        duration=timedelta(hours=3),
        effect="gap",
    ),
    # Riverside's first PV meter drops out by day: the site sum is partial then.
    Recurring(
        840000,
        RIVERSIDE_METER_ID,
        first_day=5,
        every_days=11,
        start_minute=15 * 60,
        duration=timedelta(hours=3),
        alert_type="System Disconnect",
        priority="High",
        effect="gap",
    ),
    # Prairie's first inverter reports zero by day every fifth day.
    Recurring(
        850000,
        PRAIRIE_INVERTER_ID,
        first_day=1,
        every_days=5,
        start_minute=16 * 60,
        duration=timedelta(hours=3),
        alert_type="Zero Generation",
        priority="Low",
        effect="zero",
    ),
    Recurring(
        860000,
        FRONT_RANGE_METER_ID,
        first_day=6,
        every_days=14,
        start_minute=0,
        duration=timedelta(hours=24),
        alert_type="Performance Index",
        priority="Low",
    ),
    # Opened on 2025-06-01 and never closed.
    Recurring(
        870000,
        FRONT_RANGE_INVERTER_ID,
        first_day=151,
        every_days=0,
        start_minute=0,
        duration=None,
        alert_type="Device Fault",
        priority="High",
        short="Ground fault",
        long="Insulation resistance between the PV array and ground is below "
        "the threshold. (Non-resettable)",
    ),
    # Two-day alerts every tenth day: they span days and overlap windows.
    Recurring(
        880000,
        SONORAN_INVERTER_ID,
        first_day=3,
        every_days=10,
        start_minute=18 * 60,
        duration=timedelta(hours=48),
        alert_type="Strings Performance",
        priority="Medium",
    ),
)
_EFFECTS: dict[int, tuple[Recurring, ...]] = {
    component_id: tuple(
        s for s in SCHEDULES if s.component_id == component_id and s.effect
    )
    for component_id in {s.component_id for s in SCHEDULES if s.effect}
}
MANUAL_ALERT_BASE = 990000


# --------------------------------------------------------------------------- synthetic series


def _uniforms(key: str, count: int) -> tuple[float, ...]:
    """Return ``count`` (<= 8) deterministic pseudo-random numbers in [0, 1) for ``key``."""
    digest = hashlib.blake2b(key.encode(), digest_size=32).digest()
    return tuple(
        int.from_bytes(digest[4 * i : 4 * i + 4]) / 2**32 for i in range(count)
    )


@lru_cache(maxsize=1 << 17)
def _noise(component_id: int, k: int) -> tuple[float, ...]:
    """Eight noise values of one component's interval ``k``."""
    return _uniforms(f"{component_id}|{k}", 8)


@lru_cache(maxsize=1 << 17)
def _sun(latitude: float, longitude: float, k: int) -> tuple[float, float, float]:
    """Return (clear-sky GHI, clear-sky POA in W/m², solar hour) mid-interval ``k``.

    A textbook solar-elevation model by local solar time: zero at night, a bell
    by day, longer and higher days in summer. Tilted panels (POA) collect more
    than the horizontal (GHI) when the sun is low.
    """
    day = (k + 0.5) / PER_DAY
    declination = math.radians(23.44) * math.sin(2 * math.pi * (day - 80) / 365.25)
    solar_hour = ((k % PER_DAY) + 0.5) / 4 + longitude / 15
    angle = math.radians(15 * (solar_hour - 12))
    lat = math.radians(latitude)
    sin_elevation = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(
        declination
    ) * math.cos(angle)
    if sin_elevation <= 0.01:
        return 0.0, 0.0, solar_hour % 24
    ghi = 1000 * sin_elevation**1.15
    poa = min(1100.0, ghi * (1 + 0.35 * (1 - sin_elevation)))
    return ghi, poa, solar_hour % 24


@lru_cache(maxsize=1 << 17)
def _cloud(site_id: int, k: int) -> float:
    """Return the sky's clearness over a site in interval ``k`` (1 = clear).

    One draw per day (cloudy or sunny day) times one per interval (passing
    clouds); every component of a site sees the same sky.
    """
    (day_draw,) = _uniforms(f"sky|{site_id}|{k // PER_DAY}", 1)
    (draw,) = _uniforms(f"sky|{site_id}|{k}", 1)
    clearness = 0.3 + 0.7 * math.pow(day_draw, 0.35)
    return min(1.0, clearness * (0.8 + 0.25 * draw))


@lru_cache(maxsize=1 << 14)
def _daily_efficiency(component_id: int, day: int) -> float:
    """Return a component's efficiency on one day (soiling, temperature)."""
    (draw,) = _uniforms(f"eff|{component_id}|{day}", 1)
    return 0.92 + 0.07 * draw


def _pv_mwh(component: SimComponent, k: int) -> int:
    """Return a PV component's measured energy in interval ``k`` (mWh, clipped at nameplate)."""
    _, poa, _ = _sun(component.latitude, component.longitude, k)
    if poa <= 0:
        return 0
    watts = (
        component.capacity_w
        * poa
        / 1000
        * _cloud(component.site_id, k)
        * _daily_efficiency(component.id, k // PER_DAY)
        * (0.97 + 0.03 * _noise(component.id, k)[0])
    )
    return round(min(watts, component.capacity_w) * 250)


def _modeled_mwh(component: SimComponent, k: int) -> int:
    """Return the modeled energy (measured irradiance, nominal efficiency), mWh."""
    _, poa, _ = _sun(component.latitude, component.longitude, k)
    watts = component.capacity_w * poa / 1000 * _cloud(component.site_id, k) * 0.96
    return round(min(watts, component.capacity_w) * 250)


def _expected_mwh(component: SimComponent, k: int) -> int:
    """Return the expected energy (typical-year sky, no clouds of the day), mWh."""
    _, poa, _ = _sun(component.latitude, component.longitude, k)
    return round(component.capacity_w * poa / 1000 * 0.8 * 250)


def _bump(hour: float, centre: float, width: float) -> float:
    """Return a Gaussian bump, for daily usage peaks."""
    return math.exp(-(((hour - centre) / width) ** 2))


def _load_mwh(component: SimComponent, k: int) -> int:
    """Return a site's consumption in interval ``k`` (mWh): homes or business hours."""
    _, _, hour = _sun(component.latitude, component.longitude, k)
    noise = _noise(component.id, k)[0]
    if component.commercial:
        weekday = ((k // PER_DAY) + 2) % 7 < 5  # 2025-01-01 was a Wednesday
        busy = 1.0 if weekday and 7 <= hour < 18 else 0.0
        watts = component.capacity_w * (0.12 + 0.38 * busy) * (0.85 + 0.3 * noise)
    else:
        shape = 0.35 + 0.9 * _bump(hour, 7.5, 1.5) + 1.6 * _bump(hour, 19.0, 2.5)
        watts = 1000 * shape * (0.6 + 0.8 * noise)
    return round(watts * 250)


def _effect(component_id: int, k: int) -> Effect | None:
    """Return what a recurring event does to the component's interval ``k``."""
    for schedule in _EFFECTS.get(component_id, ()):
        if schedule.covers(EPOCH_S + k * 900):
            return schedule.effect
    return None


@lru_cache(maxsize=1 << 15)
def _raw_day(component: SimComponent, day: int) -> tuple[int | None, ...]:
    """Return a measuring component's 96 raw energies (mWh, None = silent) of a UTC day.

    Pure function of the component, cached across simulators: corrections and
    withheld intervals are applied on top by the cloud.
    """
    values: list[int | None] = []
    for k in range(day * PER_DAY, (day + 1) * PER_DAY):
        effect = _effect(component.id, k)
        if effect == "gap":
            values.append(None)
        elif effect == "zero":
            values.append(0)
        elif component.role == "net_meter":
            values.append(_net_mwh(component, k))
        else:
            values.append(_pv_mwh(component, k))
    return tuple(values)


def _net_mwh(component: SimComponent, k: int) -> int:
    """Return grid import: the load the site's raw PV did not cover (never negative)."""
    site = _SITE_BY_ID[component.site_id]
    pv = sum(_raw_day(m, k // PER_DAY)[k % PER_DAY] or 0 for m in site.pv_meters)
    return max(0, _load_mwh(component, k) - pv)


def _spread(avg: int, up: float, down: float) -> Row:
    """Return avg/max/min of an interval whose samples wandered around ``avg``."""
    return {"avg": avg, "max": round(avg * (1 + up)), "min": round(avg * (1 - down))}


def _band(avg: int, width: int) -> Row:
    """Return avg/max/min of a nearly constant quantity (voltage, frequency)."""
    return {"avg": avg, "max": avg + width, "min": avg - width}


def _electrical(component: SimComponent, k: int, energy: int, base: str) -> Row | None:
    """Return one electrical base field's stats (thousandths) for measured ``energy``."""
    noise = _noise(component.id, k)
    power = 4 * energy  # mW over the quarter hour
    up, down = 0.12 * noise[1], 0.2 * noise[2]
    phase_v = 277 if component.commercial else 120
    line_v = 480 if component.commercial else 240
    match base:
        case "W":
            return _spread(power, up, down)
        case "WphA" | "WphB" | "WphC":
            share_a = round(power / 3 * (1 + 0.04 * (noise[3] - 0.5)))
            share_b = round(power / 3 * (1 + 0.04 * (noise[4] - 0.5)))
            share = {"WphA": share_a, "WphB": share_b}.get(
                base, power - share_a - share_b
            )
            return _spread(share, up, down)
        case "PhV":
            return _band(round((phase_v + 4 * (noise[5] - 0.5)) * 1000), 1500)
        case "PPV":
            return _band(round((line_v + 6 * (noise[6] - 0.5)) * 1000), 2500)
        case "Hz":
            return _band(round((60 + 0.03 * (noise[7] - 0.5)) * 1000), 20)
        case "A":
            volts = math.sqrt(3) * line_v if component.commercial else line_v
            return {
                "avg": round(power / volts),
                "max": round(power * (1 + up) / volts),
                "min": round(power * (1 - down) / volts),
            }
    if energy == 0:  # power factor and its powers only exist while producing
        return None
    factor = 0.965 + 0.03 * noise[3]
    apparent = power / factor
    match base:
        case "PF":
            return _band(round(factor * 1000), 5)
        case "VA":
            return _spread(round(apparent), up, down)
        case "VAR":
            return _spread(round(math.sqrt(apparent**2 - power**2)), up, down)
    return None


def _weather(component: SimComponent, k: int, base: str) -> Row | None:
    """Return a weather station's irradiance or temperature stats (thousandths)."""
    _, poa, hour = _sun(component.latitude, component.longitude, k)
    noise = _noise(component.id, k)
    if base == "POA":
        value = poa * _cloud(component.site_id, k) * (0.98 + 0.04 * noise[0])
        return _spread(round(value * 1000), 0.1 * noise[1], 0.15 * noise[2])
    if base == "TmpAmb":
        season = -math.cos(2 * math.pi * ((k / PER_DAY) - 15) / 365.25)
        celsius = (
            12
            + 13 * season
            - (component.latitude - 38) * 0.6
            + 5 * math.sin(2 * math.pi * (hour - 9) / 24)
            + 2 * (noise[3] - 0.5)
        )
        return _band(round(celsius * 1000), 300)
    return None


# --------------------------------------------------------------------------- time helpers


def _k_floor(instant: datetime) -> int:
    """Return the index of the 15-minute interval containing ``instant``."""
    return (as_utc(instant) - EPOCH) // QUARTER


def _k_ceil(instant: datetime) -> int:
    """Return the index of the first interval starting at or after ``instant``."""
    return -((EPOCH - as_utc(instant)) // QUARTER)


def _at(k: int) -> datetime:
    """Return the UTC start of interval ``k``."""
    return EPOCH + k * QUARTER


def _ts(instant: datetime, zone: ZoneInfo) -> str:
    """Format a data timestamp: wall time in the requested zone with its offset."""
    return instant.astimezone(zone).isoformat()


def _alert_ts(instant: datetime, zone: ZoneInfo) -> str:
    """Format an alert timestamp; a zero offset is written -00:00, as in the document."""
    text = instant.astimezone(zone).isoformat()
    return f"{text[:-6]}-00:00" if text.endswith("+00:00") else text


def _midnight(zone: ZoneInfo, day: date) -> datetime:
    """Return the UTC instant at which ``day`` starts in ``zone``."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _next_anchor(day: date, gran: str) -> date:
    """Return the first day of the next daily, monthly or yearly bucket."""
    if gran == "daily":
        return day + timedelta(days=1)
    if gran == "monthly":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date(day.year + 1, 1, 1)


def _add_year(value: datetime) -> datetime:
    """Return the same wall time one calendar year later (29 Feb → 1 Mar)."""
    try:
        return value.replace(year=value.year + 1)
    except ValueError:
        return value.replace(year=value.year + 1, month=3, day=1)


@dataclass(frozen=True, slots=True)
class _Bucket:
    """One data point's interval: quarters [first, stop), or a slice of quarter first."""

    start: datetime
    first: int
    stop: int
    part: int = 0
    parts: int = 1


def _buckets(
    zone: ZoneInfo, gran: str, start: datetime, end: datetime
) -> Iterator[_Bucket]:
    """Yield every bucket of ``gran`` starting in [start, end) (UTC instants)."""
    if gran in ("1min", "5min", "15min"):
        step = timedelta(minutes=int(gran.removesuffix("min")))
        at = EPOCH + -((EPOCH - start) // step) * step
        while at < end:
            k = _k_floor(at)
            yield _Bucket(at, k, k + 1, (at - _at(k)) // step, QUARTER // step)
            at += step
        return
    if gran == "hourly":
        at = _at(_k_ceil(start))
        while at < end:
            if at.astimezone(zone).minute != 0:
                at += QUARTER
                continue
            following = at + QUARTER
            while following.astimezone(zone).minute != 0:
                following += QUARTER
            yield _Bucket(at, _k_floor(at), _k_floor(following))
            at = following
        return
    local = start.astimezone(zone).date()
    anchor = {
        "daily": local,
        "monthly": local.replace(day=1),
        "yearly": date(local.year, 1, 1),
    }[gran]
    if _midnight(zone, anchor) < start:
        anchor = _next_anchor(anchor, gran)
    while (at := _midnight(zone, anchor)) < end:
        anchor = _next_anchor(anchor, gran)
        yield _Bucket(at, _k_ceil(at), _k_ceil(_midnight(zone, anchor)))


def _share(value: int, part: int, parts: int) -> int:
    """Return slice ``part`` of ``value`` split evenly in ``parts`` (remainder first)."""
    return value // parts + (1 if part < value % parts else 0)


def _aggregate(rows: list[Mapping[str, int]], aggregations: Mapping[str, str]) -> Row:
    """Aggregate 15-minute rows into one bucket: sum, mean of present, max, min."""
    result: Row = {}
    for name, aggregation in aggregations.items():
        values = [row[name] for row in rows if name in row]
        if not values:
            continue
        match aggregation:
            case "sum":
                result[name] = sum(values)
            case "avg":
                result[name] = round(sum(values) / len(values))
            case "max":
                result[name] = max(values)
            case _:
                result[name] = min(values)
    return result


def _hourly(pairs: list[tuple[datetime, float]]) -> dict[datetime, float]:
    """Group (interval start, value) pairs by UTC hour: the exact decimal sum."""
    hours: dict[datetime, list[Decimal]] = {}
    for at, value in pairs:
        hours.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(
            Decimal(repr(value))
        )
    return {hour: float(sum(parts, Decimal(0))) for hour, parts in hours.items()}


# --------------------------------------------------------------------------- errors and tokens


class ApiError(Exception):
    """An API error answer: status and the ``{"statusCode", "message"}`` body."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status and message for ``response()``."""
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        """Render the error as Locus does."""
        return web.json_response(
            {"statusCode": self.status, "message": self.message}, status=self.status
        )


class OAuthError(Exception):
    """A token endpoint error: status and the OAuth ``{"error": …}`` body."""

    def __init__(self, status: int, error: str) -> None:
        """Keep the status and the OAuth error code."""
        super().__init__(error)
        self.status = status
        self.error = error

    def response(self) -> web.Response:
        """Render the error as an OAuth 2 server does."""
        return web.json_response({"error": self.error}, status=self.status)


@dataclass(frozen=True, slots=True)
class _Access:
    """An issued access token: its client, its user (None: client credentials), expiry."""

    client_id: str
    username: str | None
    expires: datetime

    @property
    def account(self) -> str:
        """The rate-limited account this token acts for."""
        return (
            self.client_id
            if self.username is None
            else f"{self.client_id}:{self.username}"
        )


@dataclass(frozen=True, slots=True)
class _Refresh:
    """An issued refresh token: its client, user and expiry (None: never)."""

    client_id: str
    username: str
    expires: datetime | None


@dataclass(frozen=True, slots=True)
class _LateWindow:
    """Intervals starting in [start, end) (epoch s) are withheld until release."""

    start: int
    end: int
    component_id: int | None

    def hides(self, component_ids: frozenset[int], start_s: int) -> bool:
        """Tell whether the interval at ``start_s`` of one of these components is withheld."""
        return self.start <= start_s < self.end and (
            self.component_id is None or self.component_id in component_ids
        )


@dataclass(slots=True)
class _Alert:
    """One alert occurrence; ``end`` may lie in the future (not yet shown)."""

    id: int
    component_id: int
    alert_type: str
    priority: str
    start: datetime
    end: datetime | None
    short: str | None = None
    long: str | None = None


@dataclass(slots=True)
class _Slot:
    """One request's hold on its account's concurrency slot; release is idempotent."""

    active: dict[str, int]
    account: str
    held: bool = True

    def release(self) -> None:
        """Give the slot back (once)."""
        if not self.held:
            return
        self.held = False
        remaining = self.active.get(self.account, 1) - 1
        if remaining > 0:
            self.active[self.account] = remaining
        else:
            self.active.pop(self.account, None)


@dataclass(frozen=True, slots=True)
class _DataQuery:
    """A validated data request: fields (shortName → (base, aggregation)), window, zone."""

    fields: dict[str, tuple[str, str]]
    gran: str
    zone: ZoneInfo
    start: datetime
    end: datetime

    @property
    def aggregations(self) -> dict[str, str]:
        """Map every requested shortName to its aggregation."""
        return {name: agg for name, (_, agg) in self.fields.items()}


type Endpoint = Callable[[web.Request, _Access], Any]


# --------------------------------------------------------------------------- the cloud


@dataclass(eq=False)
class LocusCloud:
    """The Locus Energy cloud: accounts, tokens, knobs, HTTP handlers and ground truth.

    Knobs are plain attributes (token and refresh lifetimes, rotation,
    concurrency, processing delay, Retry-After, publication delay, the
    ``clients``/``users`` credential maps and who may read which partner)
    plus the methods below. A client missing from ``client_grants`` may use
    the password and refresh_token grants; one missing from
    ``client_partners`` reads no partner with client credentials.
    """

    now: Now
    faults: Faults
    name: str = "locus"
    prefix: str = PREFIX
    root_paths: tuple[str, ...] = (TOKEN_PATH,)
    token_lifetime: timedelta = timedelta(seconds=3600)
    refresh_lifetime: timedelta | None = None
    rotate_refresh_tokens: bool = False
    max_concurrency: int = 1
    processing_delay: float = 0.0
    retry_after: int | None = None
    publication_delay: timedelta = timedelta(0)
    numbers_for_text: bool = False
    """Write components' names, makers, models, node types and serial numbers as
    JSON numbers: the document says strings, a backend may not."""
    clients: dict[str, str] = field(
        default_factory=lambda: {
            DEMO_CLIENT_ID: DEMO_CLIENT_SECRET,
            CC_CLIENT_ID: CC_CLIENT_SECRET,
        }
    )
    client_grants: dict[str, frozenset[str]] = field(
        default_factory=lambda: {
            DEMO_CLIENT_ID: PASSWORD_GRANTS,
            CC_CLIENT_ID: frozenset({"client_credentials"}),
        }
    )
    client_partners: dict[str, frozenset[int]] = field(
        default_factory=lambda: {CC_CLIENT_ID: frozenset({DEMO_PARTNER_ID})}
    )
    users: dict[str, str] = field(
        default_factory=lambda: {DEMO_USERNAME: DEMO_PASSWORD}
    )
    user_partners: dict[str, frozenset[int]] = field(
        default_factory=lambda: {
            DEMO_USERNAME: frozenset(
                {DEMO_PARTNER_ID, OTHER_PARTNER_ID, SMALL_PARTNER_ID}
            )
        }
    )
    _refusing_refresh: bool = False
    _tokens: dict[str, _Access] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)
    _active: dict[str, int] = field(default_factory=dict)
    _late: list[_LateWindow] = field(default_factory=list)
    _corrections: dict[tuple[int, int], int] = field(default_factory=dict)
    _manual: dict[int, _Alert] = field(default_factory=dict)
    _closed: dict[int, datetime] = field(default_factory=dict)

    # ------------------------------------------------------------------ knobs

    def add_user(
        self,
        username: str,
        password: str,
        partner_ids: tuple[int, ...] = (DEMO_PARTNER_ID,),
    ) -> None:
        """Create (or reset) a user who may read ``partner_ids``."""
        self.users[username] = password
        self.user_partners[username] = frozenset(partner_ids)

    def revoke_user(self, username: str) -> None:
        """Refuse the user's password and reject every token already issued to them."""
        self.users.pop(username, None)
        for token in [t for t, a in self._tokens.items() if a.username == username]:
            del self._tokens[token]
        for token in [t for t, r in self._refresh.items() if r.username == username]:
            del self._refresh[token]

    def refuse_refresh(self) -> None:
        """Answer every refresh_token grant with 400 invalid_grant until allowed again."""
        self._refusing_refresh = True

    def allow_refresh(self) -> None:
        """Serve refresh_token grants again."""
        self._refusing_refresh = False

    def publish_late(
        self, start: datetime, end: datetime, component_id: int | None = None
    ) -> None:
        """Withhold intervals starting in [start, end) until ``release_late``.

        ``component_id`` None withholds every component and site; a PV meter's
        window also withholds its site's intervals (a site is published once
        all its meters are); an inverter's only withholds the inverter.
        """
        self._late.append(
            _LateWindow(
                int(as_utc(start).timestamp()),
                int(as_utc(end).timestamp()),
                component_id,
            )
        )

    def release_late(self) -> None:
        """Publish everything ``publish_late`` withheld."""
        self._late.clear()

    def correct(self, component_id: int, interval_start: datetime, wh: float) -> None:
        """Replace one 15-minute energy (a late correction); W_avg and sums follow."""
        component = self.component(component_id)
        if not component.has_energy:
            raise ValueError(f"component {component_id} has no energy data")
        start = as_utc(interval_start)
        if (start - EPOCH) % QUARTER:
            raise ValueError("interval_start must lie on a 15-minute boundary")
        self._corrections[(component_id, _k_floor(start))] = round(wh * 1000)

    def open_alert(
        self,
        component_id: int,
        alert_type: str,
        priority: str,
        start: datetime | None = None,
        short: str | None = None,
        long: str | None = None,
    ) -> int:
        """Open an alert on a component (start defaults to now) and return its id."""
        self.component(component_id)
        if alert_type not in ALERT_TYPES:
            raise ValueError(f"unknown alert type {alert_type!r}")
        level = priority.capitalize()
        if level not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        alert_id = MANUAL_ALERT_BASE + len(self._manual) + 1
        self._manual[alert_id] = _Alert(
            alert_id,
            component_id,
            alert_type,
            level,
            as_utc(start or self.now()),
            None,
            short,
            long,
        )
        return alert_id

    def close_alert(self, alert_id: int, at: datetime | None = None) -> None:
        """Close an alert (opened by ``open_alert`` or scheduled) at ``at`` (default now)."""
        when = as_utc(at or self.now())
        alert = self._manual.get(alert_id) or self._scheduled_alert(alert_id)
        if alert is None:
            raise KeyError(alert_id)
        if when < alert.start:
            raise ValueError("an alert cannot close before it starts")
        if alert_id in self._manual:
            self._manual[alert_id].end = when
        else:
            self._closed[alert_id] = when

    # ------------------------------------------------------------------ ground truth

    @property
    def sites(self) -> tuple[SimSite, ...]:
        """Every site of every partner (the hierarchy is fixed)."""
        return SITES

    def site(self, site_id: int) -> SimSite:
        """Return a site by id (KeyError for a wrong id)."""
        return _SITE_BY_ID[site_id]

    def component(self, component_id: int) -> SimComponent:
        """Return a component by id (KeyError for a wrong id)."""
        return _COMPONENT_BY_ID[component_id]

    def sites_of(self, partner_id: int) -> list[SimSite]:
        """Return a partner's sites in API order."""
        return [site for site in self.sites if site.partner_id == partner_id]

    def components_of(self, site_id: int) -> list[SimComponent]:
        """Return a site's components in API order."""
        return list(self.site(site_id).components)

    def clients_of(self, partner_id: int) -> list[SimClient]:
        """Return a partner's clients."""
        return [client for client in CLIENTS if client.partner_id == partner_id]

    def truth_hourly(
        self,
        entity_id: int,
        field: str,
        start: datetime,
        end: datetime,
        kind: Literal["component", "site"] = "component",
    ) -> dict[datetime, float]:
        """Return UTC hour -> exact sum of ``field``'s 15-minute values starting in it.

        Covers intervals starting in [start, end) that ended by now, ignoring
        publish_late and publication_delay; hours without any value are absent.
        """
        names = {field: self._field_spec(entity_id, field, kind)}
        row = self._row_function(entity_id, kind, names)
        first = max(_k_ceil(start), 0)
        stop = min(_k_ceil(end), _k_floor(self.now()))
        pairs = [
            (_at(k), values[field] / 1000)
            for k in range(first, stop)
            if field in (values := row(k))
        ]
        return _hourly(pairs)

    def truth_latest(
        self, component_id: int, field: str
    ) -> tuple[datetime, float] | None:
        """Return (interval start, value) that ``gran=latest`` answers now, or None."""
        names = {field: self._field_spec(component_id, field, "component")}
        found = self._latest(self.component(component_id), names)
        if found is None:
            return None
        k, values = found
        return _at(k), values[field] / 1000

    def open_alerts(self, site_id: int) -> list[dict[str, Any]]:
        """Return the site's alerts open now, as the API renders them with tz=UTC."""
        site = self.site(site_id)
        now = self.now()
        return [
            self._alert_json(alert, ZoneInfo("UTC"), now)
            for alert in self._alerts({c.id for c in site.components})
            if alert.end is None or alert.end > now
        ]

    @property
    def corrections(self) -> dict[tuple[int, datetime], float]:
        """The corrections made so far: (component, interval start) -> Wh."""
        return {
            (component_id, _at(k)): value / 1000
            for (component_id, k), value in self._corrections.items()
        }

    # ------------------------------------------------------------------ data internals

    def _published_limit(self) -> int:
        """Intervals with index below this have ended by now - publication_delay."""
        return _k_floor(self.now() - self.publication_delay)

    def _visible(self, component_ids: frozenset[int], k: int) -> bool:
        """Tell whether interval ``k`` of these components escapes every late window."""
        if not self._late:
            return True
        start_s = EPOCH_S + k * 900
        return not any(window.hides(component_ids, start_s) for window in self._late)

    def _energy(self, component: SimComponent, k: int) -> int | None:
        """Return a measuring component's energy (mWh) of interval ``k``, corrections applied."""
        corrected = self._corrections.get((component.id, k))
        if corrected is not None:
            return corrected
        if not component.has_energy or k < 0:
            return None
        return _raw_day(component, k // PER_DAY)[k % PER_DAY]

    def _component_row(
        self, component: SimComponent, k: int, fields: Mapping[str, tuple[str, str]]
    ) -> Row:
        """Return the requested 15-minute values (thousandths) of one component."""
        energy = self._energy(component, k)
        stats: dict[str, Row | None] = {}
        row: Row = {}
        for name, (base, agg) in fields.items():
            if base not in stats:
                if component.role == "weather":
                    stats[base] = _weather(component, k, base)
                elif base == "Wh_m":
                    stats[base] = {"sum": _modeled_mwh(component, k)}
                elif base == "W_m":
                    stats[base] = {"avg": 4 * _modeled_mwh(component, k)}
                elif base == "Wh":
                    stats[base] = None if energy is None else {"sum": energy}
                elif energy is None:
                    stats[base] = None
                else:
                    stats[base] = _electrical(component, k, energy, base)
            found = stats[base]
            if found is not None and agg in found:
                row[name] = found[agg]
        return row

    def _site_row(
        self, site: SimSite, k: int, fields: Mapping[str, tuple[str, str]]
    ) -> Row:
        """Return the requested 15-minute values (thousandths) of a site."""
        meters = site.pv_meters
        energies = [(m, e) for m in meters if (e := self._energy(m, k)) is not None]
        row: Row = {}
        for name, (base, agg) in fields.items():
            match base:
                case "Wh" if energies:
                    row[name] = sum(e for _, e in energies)
                case "W" if energies:
                    row[name] = sum(
                        _spread(
                            4 * e, 0.12 * _noise(m.id, k)[1], 0.2 * _noise(m.id, k)[2]
                        )[agg]
                        for m, e in energies
                    )
                case "Wh_m":
                    row[name] = sum(_modeled_mwh(m, k) for m in meters)
                case "W_m":
                    row[name] = 4 * sum(_modeled_mwh(m, k) for m in meters)
                case "Wh_e":
                    row[name] = sum(_expected_mwh(m, k) for m in meters)
                case "GHI_m" | "GHIh_m":
                    ghi, _, _ = _sun(site.latitude, site.longitude, k)
                    value = ghi * _cloud(site.id, k)
                    if base == "GHIh_m":
                        row[name] = round(value * 250)
                    else:
                        draws = _uniforms(f"ghi|{site.id}|{k}", 2)
                        row[name] = _spread(
                            round(value * 1000), 0.1 * draws[0], 0.15 * draws[1]
                        )[agg]
        return row

    def _row_function(
        self,
        entity_id: int,
        kind: Literal["component", "site"],
        fields: Mapping[str, tuple[str, str]],
    ) -> Callable[[int], Row]:
        """Return k -> row for an entity (ground truth: nothing withheld)."""
        if kind == "site":
            site = self.site(entity_id)
            return lambda k: self._site_row(site, k, fields)
        component = self.component(entity_id)
        return lambda k: self._component_row(component, k, fields)

    def _field_spec(
        self, entity_id: int, name: str, kind: Literal["component", "site"]
    ) -> tuple[str, str]:
        """Return (base, aggregation) of a field the entity has at 15min, else ValueError."""
        if kind == "site":
            available = short_names(SITE_FIELDS)
            self.site(entity_id)
        else:
            available = short_names(COMPONENT_FIELDS[self.component(entity_id).role])
        entry = available.get(name)
        if entry is None or "15min" not in entry["granularities"]:
            raise ValueError(f"{kind} {entity_id} has no 15-minute field {name!r}")
        base, _, agg = name.rpartition("_")
        return base, agg

    def _latest(
        self, component: SimComponent, fields: Mapping[str, tuple[str, str]]
    ) -> tuple[int, Row] | None:
        """Return the newest published interval with any requested value, and its row."""
        limit = self._published_limit()
        ids = frozenset({component.id})
        for k in range(limit - 1, max(limit - LATEST_LOOKBACK, 0) - 1, -1):
            if not self._visible(ids, k):
                continue
            if row := self._component_row(component, k, fields):
                return k, row
        return None

    def _series(
        self,
        entity_id: int,
        query: _DataQuery,
        row: Callable[[int], Row],
        hidden_ids: frozenset[int],
    ) -> list[dict[str, Any]]:
        """Build the data points of every bucket of the query."""
        limit = self._published_limit()
        aggregations = query.aggregations
        cache: dict[int, Row] = {}

        def published(k: int) -> Row:
            if k not in cache:
                cache[k] = (
                    row(k) if 0 <= k < limit and self._visible(hidden_ids, k) else {}
                )
            return cache[k]

        points: list[dict[str, Any]] = []
        for bucket in _buckets(query.zone, query.gran, query.start, query.end):
            if bucket.parts > 1:
                values = {
                    name: _share(value, bucket.part, bucket.parts)
                    if aggregations[name] == "sum"
                    else value
                    for name, value in published(bucket.first).items()
                }
            else:
                cache.clear()
                values = _aggregate(
                    [
                        published(k)
                        for k in range(max(bucket.first, 0), min(bucket.stop, limit))
                    ],
                    aggregations,
                )
            point: dict[str, Any] = {
                "id": entity_id,
                "ts": _ts(bucket.start, query.zone),
            }
            point.update(
                (name, values[name] / 1000) for name in query.fields if name in values
            )
            points.append(point)
        return points

    # ------------------------------------------------------------------ alert internals

    def _scheduled_alert(self, alert_id: int) -> _Alert | None:
        """Return the scheduled alert with this id if it has started, else None."""
        now = self.now()
        for schedule in SCHEDULES:
            n = alert_id - schedule.id_base
            if schedule.alert_type is not None and 0 <= n < schedule.started(now):
                return self._occurrence(schedule, n)
        return None

    def _occurrence(self, schedule: Recurring, n: int) -> _Alert:
        """Return occurrence ``n`` of a schedule, with any end set by close_alert."""
        alert_id = schedule.id_base + n
        return _Alert(
            alert_id,
            schedule.component_id,
            schedule.alert_type or "",
            schedule.priority,
            schedule.start(n),
            self._closed.get(alert_id, schedule.end(n)),
            schedule.short,
            schedule.long,
        )

    def _alerts(self, component_ids: set[int]) -> list[_Alert]:
        """Return the started alerts of these components, oldest first."""
        now = self.now()
        alerts = [
            self._occurrence(schedule, n)
            for schedule in SCHEDULES
            if schedule.alert_type is not None
            and schedule.component_id in component_ids
            for n in range(schedule.started(now))
        ]
        alerts += [
            alert
            for alert in self._manual.values()
            if alert.component_id in component_ids and alert.start <= now
        ]
        alerts.sort(key=lambda alert: (alert.start, alert.id))
        return alerts

    def _alert_json(
        self, alert: _Alert, zone: ZoneInfo, now: datetime
    ) -> dict[str, Any]:
        """Render an alert as documented: end once it happened, updated = last change."""
        component = self.component(alert.component_id)
        site = self.site(component.site_id)
        ended = alert.end is not None and alert.end <= now
        data: dict[str, Any] = {
            "id": alert.id,
            "componentId": component.id,
            "componentName": component.name,
            "siteId": site.id,
            "siteName": site.name,
            "alertType": alert.alert_type,
            "priority": alert.priority,
            "start": _alert_ts(alert.start, zone),
        }
        if ended and alert.end is not None:
            data["end"] = _alert_ts(alert.end, zone)
        data["updated"] = _alert_ts(
            alert.end if ended and alert.end is not None else alert.start, zone
        )
        if alert.short is not None:
            data["descriptionShort"] = alert.short
        if alert.long is not None:
            data["descriptionLong"] = alert.long
        return data

    # ------------------------------------------------------------------ access

    def _readable_partners(self, access: _Access) -> frozenset[int]:
        """Partners the token may read."""
        if access.username is None:
            return self.client_partners.get(access.client_id, frozenset())
        return self.user_partners.get(access.username, frozenset())

    def _check_partner(self, access: _Access, partner_id: int) -> None:
        """Answer 403 when the token may not read this (existing) partner's data."""
        if partner_id not in self._readable_partners(access):
            raise ApiError(403, "You do not have permission to access this entity")

    def _partner(self, access: _Access, raw: str) -> int:
        """Return a readable partner id; unknown 404, forbidden 403."""
        partner_id = _int_id(raw)
        if partner_id not in PARTNERS:
            raise ApiError(404, f"Partner {raw} not found")
        self._check_partner(access, partner_id)
        return partner_id

    def _readable_site(self, access: _Access, raw: str) -> SimSite:
        """Return a readable site; unknown 404, forbidden 403."""
        site = _SITE_BY_ID.get(_int_id(raw))
        if site is None:
            raise ApiError(404, f"Site {raw} not found")
        self._check_partner(access, site.partner_id)
        return site

    def _readable_component(self, access: _Access, raw: str) -> SimComponent:
        """Return a readable component; unknown 404, forbidden 403."""
        component = _COMPONENT_BY_ID.get(_int_id(raw))
        if component is None:
            raise ApiError(404, f"Component {raw} not found")
        self._check_partner(access, self.site(component.site_id).partner_id)
        return component

    def _readable_client(self, access: _Access, raw: str) -> SimClient:
        """Return a readable client; unknown 404, forbidden 403."""
        client_id = _int_id(raw)
        client = next((c for c in CLIENTS if c.id == client_id), None)
        if client is None:
            raise ApiError(404, f"Client {raw} not found")
        self._check_partner(access, client.partner_id)
        return client

    # ------------------------------------------------------------------ HTTP plumbing

    def build_app(self) -> web.Application:
        """Return the sub-application with every documented API endpoint."""
        app = web.Application()
        routes: list[tuple[str, Endpoint]] = [
            ("/partners/{id}/sites", self._partner_sites),
            ("/partners/{id}/components", self._partner_components),
            ("/partners/{id}/clients", self._partner_clients),
            ("/partners/{id}/alerts", self._partner_alerts),
            ("/partners/{id}/sites/dataavailable", self._bulk_dataavailable),
            ("/partners/{id}/sites/data", self._bulk_data),
            ("/clients/{id}", self._client),
            ("/clients/{id}/sites", self._client_sites),
            ("/clients/{id}/components", self._client_components),
            ("/sites/{id}", self._site),
            ("/sites/{id}/components", self._site_components),
            ("/sites/{id}/installinfo", self._installinfo),
            ("/sites/{id}/modelsettings", self._modelsettings),
            ("/sites/{id}/dataavailable", self._site_dataavailable),
            ("/sites/{id}/data", self._site_data),
            ("/sites/{id}/alerts", self._site_alerts),
            ("/components/{id}", self._component),
            ("/components/{id}/dataavailable", self._component_dataavailable),
            ("/components/{id}/data", self._component_data),
            ("/components/{id}/alerts", self._component_alerts),
        ]
        for path, endpoint in routes:
            app.router.add_get(path, self._protected(endpoint))
        return app

    def add_root_routes(self, app: web.Application) -> None:
        """Add the token endpoint at the server root, where clients derive it."""
        app.router.add_post(TOKEN_PATH, self._handle_token)

    def _subpath(self, request: web.Request) -> str:
        """Return the path a fault filter sees: below the prefix, or the root path."""
        if request.path in self.root_paths:
            return request.path
        return request.path.removeprefix(self.prefix)

    def _acquire(self, account: str) -> _Slot:
        """Take one of the account's concurrency slots, else answer 429."""
        if (
            self.max_concurrency > 0
            and self._active.get(account, 0) >= self.max_concurrency
        ):
            raise _TooManyRequests
        self._active[account] = self._active.get(account, 0) + 1
        return _Slot(self._active, account)

    def _too_many(self) -> web.Response:
        """Render the documented 429 (Retry-After only when the knob is set)."""
        headers = (
            None if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        )
        return web.json_response(
            {"message": "Too many requests", "statusCode": 429},
            status=429,
            headers=headers,
        )

    def _authenticate(self, request: web.Request) -> _Access:
        """Return the access of a valid bearer token, else answer 401."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authentication required")
        access = self._tokens.get(token.strip())
        if access is None or access.client_id not in self.clients:
            raise ApiError(401, "Invalid access token")
        if access.username is not None and access.username not in self.users:
            raise ApiError(401, "Invalid access token")
        if self.now() >= access.expires:
            raise ApiError(401, "Access token expired")
        return access

    async def _fault(self, kind: FaultKind, *, is_auth: bool) -> web.Response | None:
        """Answer a request hit by a fault, in Locus's shapes where they differ."""
        match kind:
            case "http_500":
                return ApiError(500, "Internal Server Error").response()
            case "http_401":
                if is_auth:
                    return OAuthError(401, "invalid_client").response()
                return ApiError(401, "Unauthorized").response()
            case "http_429":
                return self._too_many()
        return await self.faults.respond(kind)

    async def _serve(
        self,
        request: web.Request,
        slot: _Slot | None,
        *,
        is_auth: bool,
        run: Callable[[], Any],
    ) -> web.Response:
        """Apply a pending fault, wait the processing delay, run the endpoint, render."""
        kind = self.faults.take(self.name, self._subpath(request), is_auth=is_auth)
        if kind is not None:
            if kind == "timeout" and slot is not None:
                slot.release()
            if (response := await self._fault(kind, is_auth=is_auth)) is not None:
                return response
        if self.processing_delay > 0:
            await asyncio.sleep(self.processing_delay)
        payload = run()
        if kind == "missing_fields":
            payload = _damage(payload)
        response = web.json_response(payload)
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            response.enable_compression(web.ContentCoding.gzip)
        return response

    def _protected(
        self, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Wrap an endpoint with token check, concurrency slot and faults, in that order."""

        async def handler(request: web.Request) -> web.Response:
            try:
                access = self._authenticate(request)
            except ApiError as err:
                return err.response()
            request[ACCOUNT] = access.account
            try:
                slot = self._acquire(access.account)
            except _TooManyRequests:
                return self._too_many()
            try:
                return await self._serve(
                    request, slot, is_auth=False, run=lambda: endpoint(request, access)
                )
            except ApiError as err:
                return err.response()
            finally:
                slot.release()

        return handler

    # ------------------------------------------------------------------ OAuth

    async def _handle_token(self, request: web.Request) -> web.Response:
        """POST /oauth/token: the password, refresh_token and client_credentials grants."""
        if request.content_type != "application/x-www-form-urlencoded":
            return OAuthError(400, "invalid_request").response()
        form = dict(parse_qsl(await request.text(), keep_blank_values=True))
        account = self._token_account(form)
        slot: _Slot | None = None
        if account is not None:
            request[ACCOUNT] = account
            try:
                slot = self._acquire(account)
            except _TooManyRequests:
                return self._too_many()
        try:
            return await self._serve(
                request, slot, is_auth=True, run=lambda: self._grant(form)
            )
        except OAuthError as err:
            return err.response()
        finally:
            if slot is not None:
                slot.release()

    def _token_account(self, form: Mapping[str, str]) -> str | None:
        """Attribute a token request to an account from its form fields."""
        client_id = form.get("client_id") or None
        if client_id is None:
            return None
        match form.get("grant_type"):
            case "password" if form.get("username"):
                return f"{client_id}:{form['username']}"
            case "refresh_token":
                known = self._refresh.get(form.get("refresh_token", ""))
                if known is not None:
                    return f"{known.client_id}:{known.username}"
        return client_id

    def _grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Check the form and issue tokens, or raise the OAuth error."""
        grant = form.get("grant_type")
        required = {
            "password": ("client_id", "client_secret", "username", "password"),
            "refresh_token": ("client_id", "client_secret", "refresh_token"),
            "client_credentials": ("client_id", "client_secret"),
        }
        if not grant:
            raise OAuthError(400, "invalid_request")
        if grant not in required:
            raise OAuthError(400, "unsupported_grant_type")
        if any(not form.get(key) for key in required[grant]):
            raise OAuthError(400, "invalid_request")
        client_id = form["client_id"]
        secret = self.clients.get(client_id)
        if secret is None or not secrets.compare_digest(
            secret.encode(), form["client_secret"].encode()
        ):
            raise OAuthError(401, "invalid_client")
        if grant not in self.client_grants.get(client_id, PASSWORD_GRANTS):
            raise OAuthError(400, "unauthorized_client")
        now = self.now()
        if grant == "client_credentials":
            access = self._issue(client_id, None, now)
            return {
                "access_token": access,
                "issued_at": int(now.timestamp()),
                "expires_in": self._expires_in(),
            }
        if grant == "password":
            return self._password_grant(client_id, form, now)
        return self._refresh_grant(client_id, form["refresh_token"], now)

    def _password_grant(
        self, client_id: str, form: Mapping[str, str], now: datetime
    ) -> dict[str, Any]:
        """Check the user's password and issue an access and a refresh token."""
        username = form["username"]
        password = self.users.get(username)
        if password is None or not secrets.compare_digest(
            password.encode(), form["password"].encode()
        ):
            raise OAuthError(401, "invalid_grant")
        access = self._issue(client_id, username, now)
        return {
            "access_token": access,
            "issued_at": int(now.timestamp()),
            "token_type": "bearer",
            "refresh_token": self._issue_refresh(client_id, username, now),
            "expires_in": self._expires_in(),
        }

    def _refresh_grant(
        self, client_id: str, token: str, now: datetime
    ) -> dict[str, Any]:
        """Trade a refresh token for an access token (and a new refresh token if rotating)."""
        refresh = self._refresh.get(token)
        if (
            self._refusing_refresh
            or refresh is None
            or refresh.client_id != client_id
            or refresh.username not in self.users
            or (refresh.expires is not None and now >= refresh.expires)
        ):
            raise OAuthError(400, "invalid_grant")
        answer: dict[str, Any] = {
            "access_token": self._issue(client_id, refresh.username, now),
            "issued_at": int(now.timestamp()),
            "token_type": "bearer",
            "expires_in": self._expires_in(),
        }
        if self.rotate_refresh_tokens:
            del self._refresh[token]
            answer["refresh_token"] = self._issue_refresh(
                client_id, refresh.username, now
            )
        return answer

    def _expires_in(self) -> int:
        """Return the documented ``expires_in`` (whole seconds)."""
        return int(self.token_lifetime.total_seconds())

    def _issue(self, client_id: str, username: str | None, now: datetime) -> str:
        """Issue an opaque access token."""
        token = secrets.token_hex(16)
        self._tokens[token] = _Access(client_id, username, now + self.token_lifetime)
        return token

    def _issue_refresh(self, client_id: str, username: str, now: datetime) -> str:
        """Issue an opaque refresh token."""
        token = secrets.token_hex(16)
        expires = None if self.refresh_lifetime is None else now + self.refresh_lifetime
        self._refresh[token] = _Refresh(client_id, username, expires)
        return token

    # ------------------------------------------------------------------ hierarchy endpoints

    def _partner_sites(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /partners/{id}/sites: every site object carries its own statusCode."""
        partner_id = self._partner(access, request.match_info["id"])
        return {
            "statusCode": 200,
            "sites": [
                {"statusCode": 200, **site.as_json()}
                for site in self.sites_of(partner_id)
            ],
        }

    def _partner_components(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /partners/{id}/components, optionally by nodeId (``%`` is a wildcard)."""
        partner_id = self._partner(access, request.match_info["id"])
        components = [c for site in self.sites_of(partner_id) for c in site.components]
        if (pattern := request.query.get("nodeId")) is not None:
            matcher = _wildcard(pattern)
            components = [c for c in components if matcher.fullmatch(c.node_id)]
        if "notes" in request.query:  # no component of the simulator has notes
            components = []
        return {
            "statusCode": 200,
            "components": [self._component_json(c) for c in components],
        }

    def _partner_clients(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /partners/{id}/clients."""
        partner_id = self._partner(access, request.match_info["id"])
        return {
            "statusCode": 200,
            "clients": [client.as_json() for client in self.clients_of(partner_id)],
        }

    def _client(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /clients/{id}."""
        client = self._readable_client(access, request.match_info["id"])
        return {"statusCode": 200, **client.as_json()}

    def _client_sites(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /clients/{id}/sites."""
        client = self._readable_client(access, request.match_info["id"])
        return {
            "statusCode": 200,
            "sites": [
                {"statusCode": 200, **site.as_json()}
                for site in self.sites
                if site.client_id == client.id
            ],
        }

    def _client_components(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /clients/{id}/components."""
        client = self._readable_client(access, request.match_info["id"])
        return {
            "statusCode": 200,
            "components": [
                self._component_json(c)
                for site in self.sites
                if site.client_id == client.id
                for c in site.components
            ],
        }

    def _site(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /sites/{id}."""
        site = self._readable_site(access, request.match_info["id"])
        return {"statusCode": 200, **site.as_json()}

    def _site_components(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /sites/{id}/components."""
        site = self._readable_site(access, request.match_info["id"])
        return {
            "statusCode": 200,
            "components": [self._component_json(c) for c in site.components],
        }

    def _installinfo(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /sites/{id}/installinfo: only the fields the site has."""
        site = self._readable_site(access, request.match_info["id"])
        info = {
            "installer": site.installer,
            "installCrew": site.install_crew,
            "installDate": site.install_date,
            "ptoDate": site.pto_date,
            "startupDate": site.startup_date,
        }
        return {"statusCode": 200} | {k: v for k, v in info.items() if v is not None}

    def _modelsettings(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /sites/{id}/modelsettings: size in kW DC plus the PV model losses."""
        site = self._readable_site(access, request.match_info["id"])
        settings: dict[str, Any] = {"statusCode": 200}
        if site.size_kw is not None:
            settings["size"] = site.size_kw
        settings |= {
            "mismatch": 98,
            "diodesAndConnections": 99,
            "dcWiring": 98,
            "soiling": 97 if site.show_coordinates else 95,
            "sunTracking": 100,
            "nameplate": 100,
            "acWiring": 99,
            "transformer": 98 if site.show_coordinates else 100,
        }
        if site.tmy3_id is not None:
            settings["tmy3Id"] = site.tmy3_id
        return settings

    def _component(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /components/{id}."""
        component = self._readable_component(access, request.match_info["id"])
        return {"statusCode": 200, **self._component_json(component)}

    def _component_json(self, component: SimComponent) -> dict[str, Any]:
        """Render a component, its text as numbers when `numbers_for_text` says so."""
        data = component.as_json()
        if self.numbers_for_text:
            for key in ("name", "oem", "model", "nodeType", "serialNumber"):
                if isinstance(data.get(key), str):
                    data[key] = as_number(data[key])
        return data

    # ------------------------------------------------------------------ data endpoints

    def _site_dataavailable(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /sites/{id}/dataavailable: the document's site example."""
        self._readable_site(access, request.match_info["id"])
        return {"statusCode": 200, "baseFields": list(SITE_FIELDS)}

    def _component_dataavailable(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /components/{id}/dataavailable: by component type; none for conceptual nodes."""
        component = self._readable_component(access, request.match_info["id"])
        return {"statusCode": 200, "baseFields": list(COMPONENT_FIELDS[component.role])}

    def _component_data(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /components/{id}/data (gran=latest: one point, start/end ignored)."""
        component = self._readable_component(access, request.match_info["id"])
        query = _data_query(
            request.query,
            short_names(COMPONENT_FIELDS[component.role]),
            allow_latest=True,
        )
        if query.gran == "latest":
            found = self._latest(component, query.fields)
            data = []
            if found is not None:
                k, row = found
                data.append(
                    {"id": component.id, "ts": _ts(_at(k), query.zone)}
                    | {name: row[name] / 1000 for name in query.fields if name in row}
                )
            return {"statusCode": 200, "data": data}
        return {
            "statusCode": 200,
            "data": self._series(
                component.id,
                query,
                lambda k: self._component_row(component, k, query.fields),
                frozenset({component.id}),
            ),
        }

    def _site_data(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /sites/{id}/data: the site's meters summed, plus modeled fields."""
        site = self._readable_site(access, request.match_info["id"])
        query = _data_query(request.query, short_names(SITE_FIELDS), allow_latest=False)
        return {
            "statusCode": 200,
            "data": self._series(
                site.id,
                query,
                lambda k: self._site_row(site, k, query.fields),
                frozenset(m.id for m in site.pv_meters),
            ),
        }

    def _bulk_dataavailable(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /partners/{id}/sites/dataavailable: the document's bulk example."""
        self._partner(access, request.match_info["id"])
        return {"statusCode": 200, "baseFields": list(BULK_FIELDS)}

    def _bulk_data(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /partners/{id}/sites/data: monthly site values of every site, ≤ 1 year.

        Wh_sum, Whp_sum (from the startup date on), Wh_e_sum and GHIh_m_sum are
        computed; the other documented bulk fields come back null, as the
        document says the bulk API does for fields a site cannot have.
        """
        partner_id = self._partner(access, request.match_info["id"])
        available = short_names(BULK_FIELDS)
        query = _data_query(request.query, available, allow_latest=False)
        if query.gran != "monthly":
            raise ApiError(400, "Only monthly granularity is supported for bulk data")
        if _add_year(_naive(query.start, query.zone)) < _naive(query.end, query.zone):
            raise ApiError(400, "end can be a maximum of 1 year after start")
        names = list(query.fields)
        computed = {
            name: ("Wh" if base == "Whp" else base, agg)
            for name, (base, agg) in query.fields.items()
            if name in BULK_COMPUTED
        }
        data: list[dict[str, Any]] = []
        for site in self.sites_of(partner_id):
            startup = EPOCH
            if site.startup_date:
                startup = _midnight(site.zone, date.fromisoformat(site.startup_date))
            row = partial(self._bulk_row, site, computed, _k_ceil(startup))
            for point in self._series(
                site.id, query, row, frozenset(m.id for m in site.pv_meters)
            ):
                point |= {name: None for name in names if name not in computed}
                data.append(point)
        return {"statusCode": 200, "data": data}

    def _bulk_row(
        self,
        site: SimSite,
        fields: Mapping[str, tuple[str, str]],
        first_prorated: int,
        k: int,
    ) -> Row:
        """Return a site's bulk row; Whp_sum only counts from the startup date on."""
        values = self._site_row(site, k, fields)
        if k < first_prorated:
            values.pop("Whp_sum", None)
        return values

    # ------------------------------------------------------------------ alert endpoints

    def _partner_alerts(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /partners/{id}/alerts: needs updatedSince (≤ 7 days back) or open-during (≤ 31 days)."""
        partner_id = self._partner(access, request.match_info["id"])
        ids = {c.id for site in self.sites_of(partner_id) for c in site.components}
        return self._alerts_answer(request.query, ids, partner=True)

    def _site_alerts(self, request: web.Request, access: _Access) -> dict[str, Any]:
        """GET /sites/{id}/alerts."""
        site = self._readable_site(access, request.match_info["id"])
        return self._alerts_answer(
            request.query, {c.id for c in site.components}, partner=False
        )

    def _component_alerts(
        self, request: web.Request, access: _Access
    ) -> dict[str, Any]:
        """GET /components/{id}/alerts."""
        component = self._readable_component(access, request.match_info["id"])
        return self._alerts_answer(request.query, {component.id}, partner=False)

    def _alerts_answer(
        self, query: Mapping[str, str], component_ids: set[int], *, partner: bool
    ) -> dict[str, Any]:
        """Validate the alert filters and render the matching alerts."""
        zone = _zone(query)
        now = self.now()
        updated_since = _local_param(query, "updatedSince", zone)
        open_min = _local_param(query, "openDuringMin", zone)
        open_max = _local_param(query, "openDuringMax", zone)
        if (open_min is None) != (open_max is None):
            raise ApiError(400, "openDuringMin and openDuringMax go together")
        if open_min is not None and open_max is not None and open_max < open_min:
            raise ApiError(400, "openDuringMax must not be before openDuringMin")
        if partner:
            if updated_since is None and open_min is None:
                raise ApiError(
                    400,
                    "Either updatedSince or openDuringMin and openDuringMax are required",
                )
            if updated_since is not None and updated_since < now - timedelta(days=7):
                raise ApiError(400, "updatedSince is limited to up to 7 days ago")
            if (
                open_min is not None
                and open_max is not None
                and open_max - open_min > timedelta(days=31)
            ):
                raise ApiError(400, "Open during time period is limited to 31 days")
        types = _choices(query, "alertType", ALERT_TYPES)
        statuses = _choices(query, "status", ("open", "closed"))
        priorities = _choices(query, "priority", ("high", "medium", "low"))
        alerts: list[dict[str, Any]] = []
        for alert in self._alerts(component_ids):
            end = alert.end if alert.end is not None and alert.end <= now else None
            updated = end or alert.start
            if updated_since is not None and updated < updated_since:
                continue
            if (
                open_min is not None
                and open_max is not None
                and (alert.start > open_max or (end is not None and end < open_min))
            ):
                continue
            if types is not None and alert.alert_type.lower() not in types:
                continue
            if statuses is not None and ("closed" if end else "open") not in statuses:
                continue
            if priorities is not None and alert.priority.lower() not in priorities:
                continue
            alerts.append(self._alert_json(alert, zone, now))
        return {"statusCode": 200, "alerts": alerts}


class _TooManyRequests(Exception):
    """Raised when an account has no free concurrency slot."""


# --------------------------------------------------------------------------- request parsing


def _int_id(raw: str) -> int:
    """Parse an entity id from the path; anything else is an unknown entity (404)."""
    if not raw.isdigit():
        raise ApiError(404, f"{raw} not found")
    return int(raw)


def _wildcard(pattern: str) -> re.Pattern[str]:
    """Compile a nodeId search where ``%`` matches anything."""
    return re.compile(
        ".*".join(re.escape(part) for part in pattern.split("%")), re.IGNORECASE
    )


def _zone(query: Mapping[str, str]) -> ZoneInfo:
    """Return the required ``tz`` parameter as a zone, else 400."""
    name = query.get("tz")
    if not name:
        raise ApiError(400, "tz is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ApiError(400, f"Invalid tz: {name}") from err


def _local_param(query: Mapping[str, str], key: str, zone: ZoneInfo) -> datetime | None:
    """Parse an optional naive ``YYYY-MM-DDThh:mm:ss`` wall time in ``zone`` to UTC."""
    wall = _wall_param(query, key)
    return None if wall is None else wall.replace(tzinfo=zone).astimezone(UTC)


def _wall_param(query: Mapping[str, str], key: str) -> datetime | None:
    """Parse an optional naive timestamp parameter (an offset is refused with 400)."""
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as err:
        raise ApiError(400, f"Invalid {key}: {raw}") from err
    if value.tzinfo is not None:
        raise ApiError(400, f"Invalid {key}: use YYYY-MM-DDThh:mm:ss without offset")
    return value


def _choices(
    query: Mapping[str, str], key: str, allowed: tuple[str, ...]
) -> frozenset[str] | None:
    """Parse a comma-separated filter (case-insensitive); None when absent."""
    raw = query.get(key)
    if not raw:
        return None
    values = frozenset(part.strip().lower() for part in raw.split(","))
    if not values <= {choice.lower() for choice in allowed}:
        raise ApiError(400, f"Invalid {key}: {raw}")
    return values


WINDOW_LIMITS = {
    "1min": timedelta(days=5),
    "5min": timedelta(days=31),
    "15min": timedelta(days=31),
    "hourly": timedelta(days=31),
}


def _data_query(
    query: Mapping[str, str],
    available: Mapping[str, dict[str, Any]],
    *,
    allow_latest: bool,
) -> _DataQuery:
    """Validate fields, granularity, field parameters, tz and window of a data call."""
    raw_fields = query.get("fields", "")
    names = [name.strip() for name in raw_fields.split(",") if name.strip()]
    if not names:
        raise ApiError(400, "fields is required")
    gran = query.get("gran")
    if not gran:
        raise ApiError(400, "gran is required")
    if gran not in ALL_GRANULARITIES:
        raise ApiError(400, f"Invalid gran: {gran}")
    if gran == "latest" and not allow_latest:
        raise ApiError(400, "latest granularity is only available for components")
    fields: dict[str, tuple[str, str]] = {}
    for name in names:
        entry = available.get(name)
        if entry is None:
            raise ApiError(400, f"Invalid field: {name}")
        if gran not in entry["granularities"]:
            raise ApiError(400, f"Field {name} is not available at {gran} granularity")
        for parameter in entry.get("fieldParameters", ()):
            if query.get(parameter["param"]) not in parameter["values"]:
                raise ApiError(
                    400,
                    f"Field {name} requires {parameter['param']} in {parameter['values']}",
                )
        base, _, agg = name.rpartition("_")
        fields[name] = (base, agg)
    zone = _zone(query)
    if gran == "latest":
        return _DataQuery(fields, gran, zone, EPOCH, EPOCH)
    start, end = _wall_param(query, "start"), _wall_param(query, "end")
    if start is None or end is None:
        raise ApiError(400, "start and end are required")
    if end <= start:
        raise ApiError(400, "end must be after start")
    limit = _add_year(start) - start if gran == "daily" else WINDOW_LIMITS.get(gran)
    if limit is not None and end - start >= limit:
        raise ApiError(400, f"Time period too long for {gran} granularity")
    return _DataQuery(
        fields,
        gran,
        zone,
        start.replace(tzinfo=zone).astimezone(UTC),
        end.replace(tzinfo=zone).astimezone(UTC),
    )


def _naive(instant: datetime, zone: ZoneInfo) -> datetime:
    """Return the wall time of ``instant`` in ``zone``, without offset."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _damage(payload: Any) -> Any:
    """Apply the ``missing_fields`` fault inside Locus's ``{"statusCode", <list>}`` wrapper."""
    if not isinstance(payload, dict):
        return payload
    lists = [key for key, value in payload.items() if isinstance(value, list)]
    if not lists:
        return drop_required_fields(payload, IDENTITY_KEYS)
    return payload | {
        key: drop_required_fields(payload[key], IDENTITY_KEYS) for key in lists
    }
