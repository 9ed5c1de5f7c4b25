"""Climkit: Swiss self-consumption communities (ZEV/RCP), https://api.climkit.io/api/v1.

What the API document leaves out and this module handles (see NOTES.md):
- `/auth` gives a 15-minute token and no refresh token: log in again before
  `valid_until` (epoch ms in `{"$date": …}`; 14 minutes when missing).
- `/all_installations` is a list of objects, or on older servers a list of id strings.
- `prim_ad` may be a string; `virtual` may replace `is_rule_meter`; installation
  addresses may use `city_name`/`city_ref` instead of `city`.
- Timestamps come as `YYYY-MM-DD HH:MM:SS+01:00` in the site's local time; at `15T`
  they label the END of the interval, at `H`/`D` its START.
- Window bounds are undocumented (inclusive ends happen): rows are de-duplicated by
  timestamp and each window is asked a little wider than needed, then trimmed.
- Sensor timestamps are integers, in seconds or milliseconds: told apart by magnitude.
- The document sets no maximum history span: ask for all of it at once and halve the
  span only when the cloud refuses.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
import logging
from typing import Any, override
from zoneinfo import ZoneInfo

from yarl import URL

from . import parse
from .contract import MAX_SITES
from .errors import AuthError, InvalidResponse, RequestRejected
from .form import Field, Form
from .model import (
    Account,
    Channel,
    Device,
    Interval,
    Inventory,
    Kind,
    Label,
    Latest,
    Quantity,
    Reading,
    Role,
    Site,
    Unit,
)
from .provider import Provider
from .ratelimit import RatePolicy
from .tokens import Token, TokenReplaced
from .transport import Transport

_LOGGER = logging.getLogger(__name__)

API_URL = "https://api.climkit.io/api/v1"
PORTAL_URL = "https://app.climkit.io"
DEFAULT_TIMEZONE = "Europe/Zurich"

TOKEN_LIFETIME_FALLBACK = timedelta(minutes=14)
LATEST_WINDOW = timedelta(hours=24)
"""How far back the latest value of a meter, a site total or a register is looked for."""
QUARTER = timedelta(minutes=15)
SPAN_REFUSALS = frozenset({400, 413, 414, 422})
"""Statuses that may mean "too much at once": the span is halved and asked again."""
GONE = frozenset({404, 410})
"""Statuses saying a meter, sensor or site no longer exists."""
MIN_SPAN = timedelta(days=1)
"""The smallest history request (t_e - t_s) sent when the cloud refuses larger ones.

Windows are asked a quarter wider than they are, so the smallest window is a quarter
shorter than this: a cloud that serves one day per request still serves history.
"""

# Sampling frequencies: how long an interval lasts and whether its label is its end.
_FREQUENCIES: dict[str, tuple[timedelta | None, bool]] = {
    "15T": (QUARTER, True),
    "H": (timedelta(hours=1), False),
    "D": (None, False),  # a local day: 23, 24 or 25 hours
}

_MODE_ROLES = {
    "consumption": Role.CONSUMPTION,
    "production": Role.PRODUCTION,
    "introduction": Role.GRID_IMPORT,
    "battery": Role.BATTERY_CHARGE,
}
# The export register counts what leaves the meter; only these modes ever export.
_EXPORT_ROLES = {
    "production": Role.PRODUCTION,
    "introduction": Role.GRID_EXPORT,
    "battery": Role.BATTERY_DISCHARGE,
}


@dataclass(frozen=True, slots=True)
class _MeterType:
    """How one Climkit meter type is measured."""

    quantity: Quantity
    unit: Unit
    registers: tuple[str, ...]
    word: str
    interval: Label
    site: Label


_ENERGY, _WATER = (Quantity.ENERGY, Unit.KWH), (Quantity.WATER, Unit.CUBIC_METER)
_THERMAL_TYPES = frozenset({"heating", "cooling"})
_METER_TYPES = {
    "electricity": _MeterType(
        *_ENERGY,
        ("en_im", "en_ex"),
        "energy",
        Label.INTERVAL_ENERGY,
        Label.SITE_ELECTRICITY_CONSUMPTION,
    ),
    "heating": _MeterType(
        *_ENERGY,
        ("heat_energy_kwh",),
        "energy",
        Label.INTERVAL_ENERGY,
        Label.SITE_HEATING_CONSUMPTION,
    ),
    "cooling": _MeterType(
        *_ENERGY,
        ("heat_energy_kwh",),
        "energy",
        Label.INTERVAL_ENERGY,
        Label.SITE_COOLING_CONSUMPTION,
    ),
    "cold_water": _MeterType(
        *_WATER,
        ("vol_m3",),
        "volume",
        Label.INTERVAL_VOLUME,
        Label.SITE_COLD_WATER_CONSUMPTION,
    ),
    "hot_water": _MeterType(
        *_WATER,
        ("vol_m3",),
        "volume",
        Label.INTERVAL_VOLUME,
        Label.SITE_HOT_WATER_CONSUMPTION,
    ),
}
_OTHER_TYPE = _MeterType(
    *_ENERGY, (), "energy", Label.INTERVAL_ENERGY, Label.SITE_CONSUMPTION
)

_REGISTER_LABELS = {
    "en_im": (Label.IMPORT_REGISTER, "energy imported"),
    "en_ex": (Label.EXPORT_REGISTER, "energy exported"),
    "heat_energy_kwh": (Label.HEAT_REGISTER, "heat energy"),
    "vol_m3": (Label.VOLUME_REGISTER, "volume"),
}

# site_data fields: (role, label, which meter mode the site needs for it to exist).
_SITE_FIELDS: dict[str, tuple[Role, Label | None, str | None]] = {
    "conso_total": (Role.CONSUMPTION, None, None),  # labelled by metering type
    "from_ext": (Role.GRID_IMPORT, Label.SITE_GRID_IMPORT, None),
    "prod_total": (Role.PRODUCTION, Label.SITE_PRODUCTION, "production"),
    "self": (Role.SELF_CONSUMPTION, Label.SITE_SELF_CONSUMPTION, "production"),
    "to_ext": (Role.GRID_EXPORT, Label.SITE_GRID_EXPORT, "production"),
    "storage_charging_total": (
        Role.BATTERY_CHARGE,
        Label.SITE_BATTERY_CHARGE,
        "battery",
    ),
    "storage_discharging_total": (
        Role.BATTERY_DISCHARGE,
        Label.SITE_BATTERY_DISCHARGE,
        "battery",
    ),
}
_SITE_ROLE_NAMES = {
    Role.CONSUMPTION: "consumption",
    Role.GRID_IMPORT: "grid import",
    Role.PRODUCTION: "production",
    Role.SELF_CONSUMPTION: "self-consumption",
    Role.GRID_EXPORT: "grid export",
    Role.BATTERY_CHARGE: "battery charging",
    Role.BATTERY_DISCHARGE: "battery discharging",
}

# Climkit sensor units (free text) → quantity and our unit string.
# What a meter is, on its device: a type's name and, for electricity, its mode's.
_TYPE_MODELS = {
    "electricity": "Electricity meter",
    "heating": "Heat meter",
    "cooling": "Cooling meter",
    "cold_water": "Cold water meter",
    "hot_water": "Hot water meter",
}
_MODE_MODELS = {
    "consumption": "consumption",
    "production": "production",
    "introduction": "grid connection",
    "battery": "battery",
}

_SENSOR_UNITS: dict[str, tuple[Quantity, Unit]] = {
    "°c": (Quantity.TEMPERATURE, Unit.CELSIUS),
    "c": (Quantity.TEMPERATURE, Unit.CELSIUS),
    "degc": (Quantity.TEMPERATURE, Unit.CELSIUS),
    "celsius": (Quantity.TEMPERATURE, Unit.CELSIUS),
    "°f": (Quantity.TEMPERATURE, Unit.FAHRENHEIT),
    "%": (Quantity.HUMIDITY, Unit.PERCENT),
    "%rh": (Quantity.HUMIDITY, Unit.PERCENT),
    "ppm": (Quantity.CO2, Unit.PPM),
    "w": (Quantity.POWER, Unit.W),
    "kw": (Quantity.POWER, Unit.KW),
    "hpa": (Quantity.PRESSURE, Unit.HPA),
    "mbar": (Quantity.PRESSURE, Unit.HPA),
    "lx": (Quantity.ILLUMINANCE, Unit.LUX),
    "lux": (Quantity.ILLUMINANCE, Unit.LUX),
    "v": (Quantity.VOLTAGE, Unit.VOLT),
    "a": (Quantity.CURRENT, Unit.AMPERE),
}
# A percentage or ppm is only a humidity or a CO2 level if the sensor's type says so.
_SENSOR_TYPE_WORDS = {
    Quantity.HUMIDITY: ("hum",),
    Quantity.CO2: ("co2", "carbon"),
}


def _naive_utc(moment: datetime) -> str:
    """Format an instant as the API's request timestamps: tz-naive UTC ISO."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


async def async_zone(name: Any = None) -> ZoneInfo:
    """Return the zone named by a site (Zurich's when none or unknown), read off-loop."""
    return await parse.async_zone(name, DEFAULT_TIMEZONE)


def parse_timestamp(value: Any, zone: ZoneInfo) -> datetime:
    """Parse a Climkit timestamp into aware UTC (one without offset is site-local)."""
    if isinstance(value, dict) and "$date" in value:  # a MongoDB export's wrapper
        value = value["$date"]
    return parse.timestamp(value, "timestamp", zone)


def interval_of(
    label: datetime, frequency: str, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """Return [start, end) in UTC of the row labelled `label` at `frequency`."""
    length, labelled_by_end = _FREQUENCIES[frequency]
    if length is None:  # a local calendar day
        local = label.astimezone(zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1)).replace(tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)
    if labelled_by_end:
        return label - length, label
    return label, label + length


def _number(row: Mapping[str, Any], key: str) -> float | None:
    """Return a row's numeric field; None when absent or null (no data, never 0)."""
    return parse.optional_number(row.get(key), key)


def _rows(payload: Any, what: str) -> list[Any]:
    """Return the rows of a time-series answer (each still to be checked)."""
    if not isinstance(payload, list):
        raise InvalidResponse(f"Climkit {what} is not a list")
    return payload


def _required(row: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    """Refuse a row that lacks a key the document promises on every row."""
    if missing := [key for key in keys if key not in row]:
        raise parse.ValueRefused(f"{what} row without {', '.join(missing)}", row)


def _int_or_none(value: Any) -> int | None:
    """Read `prim_ad`, seen as an int and as a string."""
    try:
        return int(parse.number(value, "prim_ad"))
    except InvalidResponse:
        return None


_CITY_KEYS = ("city", "city_name", "city_ref")


def _address(info: Mapping[str, Any]) -> str | None:
    """Format an installation's address; older payloads say city_name or city_ref."""
    address = info.get("address")
    if not isinstance(address, dict):
        return None
    street = " ".join(
        part
        for part in (
            parse.text(address.get("street_name")),
            parse.text(address.get("street_number")),
        )
        if part
    )
    city = next(
        filter(None, (parse.text(address.get(key)) for key in _CITY_KEYS)), None
    )
    town = " ".join(
        part for part in (parse.text(address.get("postal_code")), city) if part
    )
    return ", ".join(part for part in (street, town) if part) or None


@dataclass(frozen=True, slots=True)
class _Meter:
    """A meter as /meter_info describes it, quirks resolved."""

    id: str
    name: str
    type: str
    mode: str
    bus_address: int | None
    rule: bool

    @classmethod
    def of(cls, raw: Any) -> _Meter:
        """Read one meter of /meter_info (ValueRefused: one that has no usable id)."""
        raw = parse.mapping(raw, "meter")
        meter_id = parse.identifier(raw.get("id"), "meter id")
        bus_address = _int_or_none(raw.get("prim_ad"))
        mode = parse.text(raw.get("mode")) or ""
        if mode not in _MODE_ROLES and bus_address is not None:
            # Installer convention: 10 grid intake, 11… consumers, 101… producers.
            mode = (
                "introduction"
                if bus_address == 10
                else "production"
                if bus_address > 100
                else "consumption"
            )
        return cls(
            id=meter_id,
            name=parse.text(raw.get("name")) or meter_id,
            type=parse.text(raw.get("type")) or "electricity",
            mode=mode or "consumption",
            bus_address=bus_address,
            rule=bool(raw.get("is_rule_meter", raw.get("virtual", False))),
        )


class ClimkitProvider(Provider):
    """Climkit through one API user."""

    key = "climkit"
    name = "Climkit"
    default_url = API_URL
    policy = RatePolicy(min_interval=1.0, default_retry_after=1.0, request_seconds=0.1)
    form = Form(fields=(Field("username"), Field("password", secret=True)))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set up the transport; site time zones are learnt at discovery."""
        super().__init__(*args, **kwargs)
        self._transport = Transport(
            self.session, self.api_url, self.state.limiter, name=self.name
        )
        self._zones: dict[str, ZoneInfo] = {}
        self._span: timedelta | None = None

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Mapping[str, Any]) -> str:
        """Climkit counts requests per API user."""
        host = URL(api_url).host or api_url
        return f"{cls.key}:{host}:{str(credentials['username']).casefold()}"

    # Authentication -----------------------------------------------------------------

    async def _authenticate(self, _previous: Token | None = None) -> Token:
        """Log in with username and password (Climkit has no refresh token)."""
        try:
            payload = await self._transport.request_json(
                "POST",
                "/auth",
                json_body={
                    "username": self.credentials["username"],
                    "password": self.credentials["password"],
                },
            )
        except RequestRejected as err:
            if err.status == 403:  # a login endpoint forbidding: refused credentials
                raise AuthError("Climkit refused the login (403)") from err
            raise
        if not isinstance(payload, dict):
            raise InvalidResponse("Climkit /auth answered without an access token")
        access_token = parse.token(payload.get("access_token"), "access token")
        try:
            expires_at = parse_timestamp(payload.get("valid_until"), await async_zone())
        except InvalidResponse:  # absent or unreadable: the documented lifetime
            expires_at = datetime.now(UTC) + TOKEN_LIFETIME_FALLBACK
        return Token(access_token=access_token, expires_at=expires_at)

    @property
    def _account(self) -> Account:
        username = str(self.credentials["username"])
        return Account(id=username.casefold(), name=username)

    @override
    async def async_login(self) -> Account:
        """Log in now and keep the token for the requests that follow."""
        self.state.tokens.set(await self._authenticate())
        return self._account

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send an authorised request; a refused token is renewed once, silently.

        Only `/auth` can say the credentials are wrong. A data path that still refuses
        a token fresh from a successful login refuses this account that resource (a
        site it lost, say): that is no reason to ask the user for a password.
        """
        tokens = self.state.tokens
        refused = False
        while True:
            token = await tokens.get(self._authenticate)
            try:
                return await self._transport.request_json(
                    method,
                    path,
                    json_body=json_body,
                    params=params,
                    headers={
                        "Authorization": f"Bearer {token.access_token}",
                        "Content-Type": "application/json",
                    },
                    hold=partial(tokens.sending, token),
                )
            except TokenReplaced:
                continue  # it ran out or was renewed while waiting for its turn
            except AuthError as err:
                if refused:
                    raise RequestRejected(
                        f"Climkit refuses this account {path}", 403
                    ) from err
                refused = True
                _LOGGER.debug("Climkit refused the token; logging in again")
                tokens.invalidate(token)

    async def _site_zone(self, site_id: str) -> ZoneInfo:
        """Return the zone learnt at discovery (Zurich's before it)."""
        return self._zones.get(site_id) or await async_zone()

    # Sites and channels ---------------------------------------------------------------

    async def _installations(self) -> list[Site]:
        """Read /all_installations: objects, or (older servers) bare id strings."""
        payload = await self._call("GET", "/all_installations")
        if not isinstance(payload, list):
            raise InvalidResponse("Climkit all_installations is not a list")
        sites: dict[str, Site] = {}
        for item in payload:
            try:
                if isinstance(item, dict):
                    site_id = parse.identifier(
                        item.get("id") or item.get("_id"), "site id"
                    )
                    site = Site(
                        id=site_id,
                        name=parse.text(item.get("name")) or site_id,
                        reference=parse.text(item.get("site_ref")),
                    )
                else:
                    site_id = parse.identifier(item, "site id")
                    site = Site(id=site_id, name=site_id)
            except parse.ValueRefused as err:
                self.refusals.add("/all_installations", err)
                continue
            if site_id in sites:  # listed twice: one site, one request for it
                self.refusals.add("/all_installations", "site listed twice")
                continue
            sites[site_id] = site
        if len(sites) > MAX_SITES:
            self.refusals.truncate(
                "/all_installations", "sites", len(sites) - MAX_SITES
            )
        return list(sites.values())[:MAX_SITES]

    @override
    async def _list_sites(self) -> tuple[Site, ...]:
        """List the account's sites, named (one more call per site the list leaves unnamed)."""
        listed = await self._installations()
        return tuple(
            [
                await self._site(site.id) if site.name == site.id else site
                for site in listed
            ]
        )

    async def _site(self, site_id: str) -> Site:
        """Read a site's description and learn its time zone."""
        info = await self._call("GET", f"/installation_infos/{site_id}")
        if not isinstance(info, dict):
            raise InvalidResponse("Climkit installation_infos is not an object")
        self._zones[site_id] = await async_zone(info.get("timezone"))
        reference = parse.text(info.get("site_ref"))
        return Site(
            id=site_id,
            name=parse.text(info.get("name")) or reference or site_id,
            timezone=str(self._zones[site_id]),
            address=_address(info),
            reference=reference,
            configuration_url=PORTAL_URL,
        )

    def _sensors(self, site_id: str, raw_sensors: list[Any]) -> list[Channel]:
        """Read a site's sensors_list; a sensor without a usable id is left out."""
        channels: list[Channel] = []
        for raw in raw_sensors:
            try:
                channels.append(_sensor_channel(site_id, raw))
            except parse.ValueRefused as err:
                self.refusals.add("/sensors_list", err)
        return channels

    def _meters(self, raw_meters: list[Any]) -> list[_Meter]:
        """Read /meter_info's meters, once each; one without a usable id is left out."""
        meters: dict[str, _Meter] = {}
        for raw in raw_meters:
            try:
                meter = _Meter.of(raw)
            except parse.ValueRefused as err:
                self.refusals.add("/meter_info", err)
                continue
            if meter.id in meters:
                self.refusals.add("/meter_info", "meter listed twice")
                continue
            meters[meter.id] = meter
        return list(meters.values())

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        """Describe the chosen sites the account still has: 1 + 3 requests per site."""
        listed = tuple(site.id for site in await self._installations())
        available = set(listed)
        sites: list[Site] = []
        channels: list[Channel] = []
        devices: list[Device] = []
        for site_id in site_ids:
            if site_id not in available:
                continue
            site = await self._site(site_id)
            raw_meters = await self._call("GET", f"/meter_info/{site_id}")
            if not isinstance(raw_meters, list):
                raise InvalidResponse("Climkit meter_info is not a list")
            meters = self._meters(raw_meters)
            raw_sensors = await self._call("GET", f"/{site_id}/sensors_list")
            if not isinstance(raw_sensors, list):
                raise InvalidResponse("Climkit sensors_list is not a list")
            sites.append(site)
            for meter in meters:
                devices.append(_meter_device(site_id, meter))
                channels.extend(_meter_channels(site_id, meter))
            channels.extend(_site_channels(site_id, meters))
            channels.extend(self._sensors(site_id, raw_sensors))
        return Inventory(
            account=self._account,
            sites=tuple(sites),
            channels=tuple(channels),
            listed=listed,
            devices=tuple(devices),
        )

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        """One request per meter endpoint, site type and sensor the channels need."""
        return len({channel.ref[:3] for channel in channels})

    # Latest values --------------------------------------------------------------------

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        """Fetch each endpoint the channels need once and read its last row."""
        groups: dict[tuple[str, ...], list[Channel]] = {}
        for channel in channels:
            groups.setdefault(channel.ref[:3], []).append(channel)
        now = datetime.now(UTC)
        readings: dict[str, Reading] = {}
        gone: set[str] = set()
        for (endpoint, site_id, ident), members in groups.items():
            zone = await self._site_zone(site_id)
            try:
                if endpoint == "sensor_data":
                    latest = await self._latest_sensor(site_id, ident)
                else:
                    fields = [channel.ref[3] for channel in members]
                    latest = await self._latest_rows(
                        endpoint, site_id, ident, fields, zone, now
                    )
            except RequestRejected as err:
                if err.status not in GONE:
                    raise
                _LOGGER.debug("Climkit no longer knows %s: %s", ident, err)
                gone.update(channel.key for channel in members)
                continue
            for channel in members:
                if (reading := latest.get(channel.ref[-1])) is not None:
                    readings[channel.key] = reading
        return Latest(readings=readings, gone=frozenset(gone))

    async def _latest_rows(
        self,
        endpoint: str,
        site_id: str,
        ident: str,
        fields: Sequence[str],
        zone: ZoneInfo,
        now: datetime,
    ) -> dict[str, Reading]:
        """Return, per field, the value of the last row that has one."""
        body: dict[str, str] = {
            "t_s": _naive_utc(now - LATEST_WINDOW),
            "t_e": _naive_utc(now),
        }
        if endpoint != "meter_data_raw":
            body["sampling_frequency"] = "15T"
        rows = await self._series(endpoint, site_id, ident, body, zone)
        latest: dict[str, Reading] = {}
        for start, end, row in reversed(rows):
            for field in fields:
                if field in latest:
                    continue
                value = self._number(
                    row, field, f"/{endpoint}", amount=endpoint != "meter_data_raw"
                )
                if value is None:
                    continue
                latest[field] = Reading(
                    value=value,
                    time=end,
                    start=None if endpoint == "meter_data_raw" else start,
                )
            if len(latest) == len(fields):
                break
        return latest

    async def _series(
        self,
        endpoint: str,
        site_id: str,
        ident: str,
        body: Mapping[str, str],
        zone: ZoneInfo,
    ) -> list[tuple[datetime, datetime, Mapping[str, Any]]]:
        """POST a time-series request; return (start, end, row), sorted, de-duplicated."""
        path = (
            f"/site_data/{site_id}/{ident}"
            if endpoint == "site_data"
            else f"/{endpoint}/{site_id}/{ident}"
        )
        what = endpoint.replace("_", " ")
        required = {
            "meter_data": ("timestamp", "total"),
            "site_data": ("timestamp", "conso_total"),
        }.get(endpoint, ("timestamp",))
        frequency = body.get("sampling_frequency", "15T")
        by_start: dict[datetime, tuple[datetime, datetime, Mapping[str, Any]]] = {}
        for row in _rows(await self._call("POST", path, json_body=dict(body)), what):
            try:
                row = parse.mapping(row, f"{what} row")
                _required(row, required, what)
                moment = parse_timestamp(row["timestamp"], zone)
            except parse.ValueRefused as err:
                self.refusals.add(f"/{endpoint}", err)
                continue
            start, end = interval_of(moment, frequency, zone)
            by_start[start] = (start, end, row)
        return [by_start[start] for start in sorted(by_start)]

    def _number(
        self, row: Mapping[str, Any], field: str, endpoint: str, *, amount: bool = False
    ) -> float | None:
        """Return a row's number (an amount: not negative); None when none or refused."""
        try:
            value = _number(row, field)
            return parse.amount(value, field) if amount and value is not None else value
        except parse.ValueRefused as err:
            self.refusals.add(endpoint, err)
            return None

    async def _latest_sensor(self, site_id: str, sensor_id: str) -> dict[str, Reading]:
        """Return a sensor's last point (no period asked: the cloud gives the last)."""
        payload = await self._call("GET", f"/{site_id}/sensor_data/{sensor_id}")
        zone = await self._site_zone(site_id)
        points: list[tuple[datetime, float]] = []
        for row in _rows(payload, "sensor data"):
            try:
                row = parse.mapping(row, "sensor data row")
                _required(row, ("timestamp", "value"), "sensor data")
                moment = parse_timestamp(row["timestamp"], zone)
            except parse.ValueRefused as err:
                self.refusals.add("/sensor_data", err)
                continue
            if (value := self._number(row, "value", "/sensor_data")) is not None:
                points.append((moment, value))
        if not points:
            return {}
        time, value = max(points)
        return {sensor_id: Reading(value=value, time=time)}

    # History --------------------------------------------------------------------------

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield 15-minute amounts in as few requests as the cloud allows."""
        endpoint, site_id, ident, field = channel.ref[:4]
        zone = await self._site_zone(site_id)
        cursor = start
        while cursor < end:
            window_end = end if self._span is None else min(end, cursor + self._span)
            body = {
                "t_s": _naive_utc(cursor),
                # Wider, in case the end bound is exclusive; the batch is trimmed back
                # to [cursor, window_end): windows tile time, nothing counted twice.
                "t_e": _naive_utc(window_end + QUARTER),
                "sampling_frequency": "15T",
            }
            try:
                rows = await self._series(endpoint, site_id, ident, body, zone)
            except RequestRejected as err:
                span = window_end - cursor
                if err.status not in SPAN_REFUSALS or span <= MIN_SPAN - QUARTER:
                    raise
                self._span = max(
                    MIN_SPAN - QUARTER, timedelta(hours=span // timedelta(hours=2))
                )
                _LOGGER.debug(
                    "Climkit refused %s of history; asking %s", span, self._span
                )
                continue
            batch = [
                Interval(start=first, end=last, value=value)
                for first, last, row in rows
                if cursor <= first < window_end
                and (value := self._number(row, field, f"/{endpoint}", amount=True))
                is not None
            ]
            yield batch
            cursor = window_end


def _meter_device_id(site_id: str, meter: _Meter) -> str:
    """Return a meter's device id (meter ids are the site's: the site's id leads)."""
    return f"{site_id}:meter:{meter.id}"


def _meter_device(site_id: str, meter: _Meter) -> Device:
    """Describe a meter as a device of its site: named as in Climkit, its kind shown."""
    model = _TYPE_MODELS.get(meter.type, f"{meter.type.replace('_', ' ')} meter")
    if meter.type == "electricity":
        model = f"{model}, {_MODE_MODELS.get(meter.mode, meter.mode)}"
    return Device(
        id=_meter_device_id(site_id, meter),
        site_id=site_id,
        name=meter.name,
        model=f"Virtual {model.lower()}" if meter.rule else model.capitalize(),
        kind="meter",
    )


def _meter_channels(site_id: str, meter: _Meter) -> list[Channel]:
    """Describe one meter: its registers (physical meters) and interval amounts."""
    kind = _METER_TYPES.get(meter.type, _OTHER_TYPE)
    role = _MODE_ROLES.get(meter.mode, Role.CONSUMPTION)
    if meter.type in _THERMAL_TYPES:
        role = Role.HEAT  # its kWh are heat or cold, never the site's electricity
    attributes: dict[str, str | int | float | bool] = {
        "meter_id": meter.id,
        "meter_type": meter.type,
        "mode": meter.mode,
        "rule_meter": meter.rule,
    }
    if meter.bus_address is not None:
        attributes["bus_address"] = meter.bus_address
    total = Channel(
        key=f"{site_id}:{meter.id}:total",
        site_id=site_id,
        name=f"{meter.name} {kind.word}",
        label=kind.interval,
        quantity=kind.quantity,
        kind=Kind.INTERVAL,
        unit=kind.unit,
        role=role,
        source=meter.name,
        source_id=meter.id,
        history=True,
        statistic=f"{site_id}_{meter.id}_{kind.word}",
        device_id=_meter_device_id(site_id, meter),
        attributes=attributes,
        ref=("meter_data", site_id, meter.id, "total"),
    )
    channels = [total]
    if meter.type == "electricity" and meter.mode == "consumption":
        channels.extend(
            replace(
                total,
                key=f"{site_id}:{meter.id}:{field}",
                name=f"{meter.name} energy {words}",
                label=field_label,
                role=field_role,
                history=False,
                statistic=None,
                common=False,
                ref=("meter_data", site_id, meter.id, field),
            )
            for field, words, field_label, field_role in (
                ("self", "from solar", Label.INTERVAL_SELF, Role.SELF_CONSUMPTION),
                ("ext", "from the grid", Label.INTERVAL_EXT, Role.GRID_IMPORT),
            )
        )
    if meter.rule:
        return channels  # raw registers exist only for physical meters
    for field in kind.registers:
        if field == "en_ex" and meter.mode not in _EXPORT_ROLES:
            continue
        label, words = _REGISTER_LABELS[field]
        channels.append(
            replace(
                total,
                key=f"{site_id}:{meter.id}:{field}",
                name=f"{meter.name} {words}",
                label=label,
                kind=Kind.REGISTER,
                role=_EXPORT_ROLES[meter.mode] if field == "en_ex" else role,
                history=False,
                statistic=None,
                ref=("meter_data_raw", site_id, meter.id, field),
            )
        )
    return channels


def _site_channels(site_id: str, meters: Sequence[_Meter]) -> list[Channel]:
    """Describe the site totals of each metering type the site has meters of."""
    channels: list[Channel] = []
    modes = {meter.mode for meter in meters if meter.type == "electricity"}
    for meter_type in dict.fromkeys(meter.type for meter in meters):
        kind = _METER_TYPES.get(meter_type, _OTHER_TYPE)
        for field, (role, label, needs) in _SITE_FIELDS.items():
            if meter_type != "electricity" and field != "conso_total":
                continue
            if needs is not None and needs not in modes:
                continue
            words = _SITE_ROLE_NAMES[role]
            what = meter_type.replace("_", " ")
            channels.append(
                Channel(
                    key=f"{site_id}:site:{meter_type}:{field}",
                    site_id=site_id,
                    name=f"{what.capitalize()} {words}"
                    if field == "conso_total"
                    else f"Site {words}",
                    label=label or kind.site,
                    quantity=kind.quantity,
                    kind=Kind.INTERVAL,
                    unit=kind.unit,
                    role=role,
                    history=True,
                    statistic=f"{site_id}_site_{meter_type}_{role.value}",
                    ref=("site_data", site_id, meter_type, field),
                )
            )
    return channels


def _sensor_channel(site_id: str, raw: Any) -> Channel:
    """One Climkit sensor (temperature, humidity, CO2 …) as a measurement channel."""
    raw = parse.mapping(raw, "sensor")
    sensor_id = parse.identifier(raw.get("id"), "sensor id")
    name = parse.text(raw.get("name")) or sensor_id
    unit_text = parse.text(raw.get("unit")) or ""
    sensor_type = (parse.text(raw.get("type")) or "").casefold()
    quantity, unit = _SENSOR_UNITS.get(
        unit_text.casefold(), (Quantity.OTHER, unit_text)
    )
    if (words := _SENSOR_TYPE_WORDS.get(quantity)) and not any(
        word in sensor_type for word in words
    ):
        quantity = Quantity.OTHER
    return Channel(
        key=f"{site_id}:sensor:{sensor_id}",
        site_id=site_id,
        name=name,
        label=None,
        quantity=quantity,
        kind=Kind.INSTANT,
        unit=str(unit),
        source=name,
        source_id=sensor_id,
        attributes={
            "sensor_id": sensor_id,
            "sensor_type": parse.text(raw.get("type")) or "",
            "model": parse.text(raw.get("model")) or "",
        },
        ref=("sensor_data", site_id, sensor_id),
    )
