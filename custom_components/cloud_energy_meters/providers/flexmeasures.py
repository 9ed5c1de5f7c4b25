"""FlexMeasures: the open-source energy flexibility platform, self-hosted or hosted.

Read through API v3_0, which every current server speaks (v1.1 is sunset: 410).
What the documents leave out and this module handles (FLEXMEASURES-REAL.md, NOTES.md):
- `GET /api/` lists the versions a server serves; the token from
  `/api/requestAuthToken` goes in `Authorization` as it is (no "Bearer"), lasts as
  long as the server's setting says and is renewed when refused.
- Every answer carries `Retry-After`: only a 429 means "wait".
- Assets come as a plain list (paged when asked, or by older servers); children name
  their parent. `attributes` is a JSON string.
- There is no "latest value": a short recent window at the sensor's resolution is read
  and its newest value that has begun is taken.
- The server averages when it resamples, energy included: values are read at the
  sensor's own resolution and summed here. Gaps are `null`: absent, never 0.
- Power and energy carry one sign for two directions; `consumption_is_positive` in a
  sensor's attributes says which (absent: FlexMeasures' own default, production
  positive). Each direction feeds a statistic of its own, never negative.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
import json
import logging
import re
from typing import Any, override

from yarl import URL

from . import flexmeasures_v1 as v1, parse
from .contract import MAX_SITES
from .errors import AuthError, InvalidResponse, RequestRejected, UnsupportedServer
from .form import Field, Form
from .model import (
    Account,
    Channel,
    Device,
    Interval,
    Inventory,
    Kind,
    Latest,
    Quantity,
    Reading,
    Role,
    Site,
    Unit,
)
from .provider import Provider
from .ratelimit import Budget, RateLimiter, RatePolicy
from .tokens import Token, TokenReplaced
from .transport import Transport

_LOGGER = logging.getLogger(__name__)

API_URL = "https://ems.seita.energy"
"""FlexMeasures hosted by its makers; a self-hosted server has its own address."""
V3 = "/api/v3_0"
HOUR = timedelta(hours=1)
HISTORY_SPAN = timedelta(days=31)
"""One history request: 2,976 values at 15 minutes (the server reads a year in 46 ms)."""
MAX_PAGES = 100
PER_PAGE = 100
GONE = frozenset({403, 404, 422})
"""A sensor the server no longer lets us read: deleted (404/422) or moved (403)."""
FALLBACK_RESOLUTION = timedelta(minutes=15)
"""How an instantaneous sensor (resolution 0) is read."""
MAX_POST_VALUES = 50_000
"""Values per POST: at most ~1.3 MB of JSON, well below the server's 3 MiB limit."""
JOB_WAIT = 120.0
"""Seconds a worker's job is followed before it is reported still queued."""
JOB_FIRST_POLL = 0.5
JOB_LONGEST_POLL = 5.0

_POWER_UNITS = {"w": Unit.W, "kw": Unit.KW, "mw": Unit.KW}
_ENERGY_UNITS = frozenset({"wh", "kwh", "mwh"})
_TEMPERATURE_UNITS = {"°c": Unit.CELSIUS, "°f": Unit.FAHRENHEIT}
_PRICE_DENOMINATORS = frozenset({"mwh", "kwh", "wh"})


_GRID = (Role.GRID_IMPORT, Role.GRID_EXPORT, "import", "export")
_BATTERY = (Role.BATTERY_CHARGE, Role.BATTERY_DISCHARGE, "charging", "discharging")
_LOAD = (Role.CONSUMPTION, Role.PRODUCTION, "consumption", "production")


@dataclass(frozen=True, slots=True)
class _Sensor:
    """A sensor as the server describes it, quirks resolved."""

    id: str
    name: str
    asset_id: str
    unit: str
    resolution: timedelta
    consumption_positive: bool
    timezone: str | None

    @classmethod
    def of(cls, raw: Any) -> _Sensor:
        """Read one sensor object (ValueRefused: one without a usable id or asset)."""
        raw = parse.mapping(raw, "sensor")
        sensor_id = parse.identifier(raw.get("id"), "sensor id")
        resolution = raw.get("event_resolution")
        return cls(
            id=sensor_id,
            name=parse.text(raw.get("name")) or f"Sensor {sensor_id}",
            asset_id=parse.identifier(raw.get("generic_asset_id"), "sensor asset"),
            unit=parse.text(raw.get("unit")) or "",
            resolution=(
                parse.duration(resolution, "event_resolution")
                if resolution is not None
                else timedelta(0)
            ),
            consumption_positive=_attributes(raw).get("consumption_is_positive")
            is True,
            timezone=parse.text(raw.get("timezone")),
        )

    @property
    def step(self) -> timedelta:
        """Return the resolution values are read at."""
        return self.resolution or FALLBACK_RESOLUTION


@dataclass(frozen=True, slots=True)
class Posted:
    """What a post of values did: how many were sent, what the server said."""

    values: int
    statuses: tuple[str, ...]
    """Per request: PROCESSED, ALREADY_RECEIVED_AND_SUCCESSFULLY_PROCESSED, or a
    worker's job status (FINISHED; QUEUED when it is still waiting)."""
    jobs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SensorData:
    """A sensor's values for a period, one per step from `start` (None: a gap)."""

    start: datetime
    resolution: timedelta
    unit: str
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What a sensor is, for what is sent to it."""

    id: str
    name: str
    unit: str
    resolution: timedelta
    consumption_positive: bool


_POWER_FACTORS = {"w": 0.001, "kw": 1.0, "mw": 1000.0}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A device's planned power (kW, consumption positive), one value per step."""

    id: str
    sensor_id: str
    start: datetime
    resolution: timedelta
    values: tuple[float, ...]

    @property
    def end(self) -> datetime:
        """Return when the schedule's last step ends."""
        return self.start + len(self.values) * self.resolution

    def at(self, moment: datetime) -> float | None:
        """Return the planned power at `moment`; None outside the schedule."""
        if not self.start <= moment < self.end:
            return None
        return self.values[(moment - self.start) // self.resolution]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible copy."""
        return {
            "id": self.id,
            "sensor_id": self.sensor_id,
            "start": self.start.isoformat(),
            "resolution": self.resolution.total_seconds(),
            "values": list(self.values),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Schedule:
        """Rebuild a schedule kept with `as_dict` (checked like an answer)."""
        raw = parse.mapping(raw, "schedule")
        values = raw["values"]
        if not isinstance(values, list):
            raise InvalidResponse("a kept schedule without values")
        return cls(
            id=parse.identifier(raw["id"], "schedule id"),
            sensor_id=parse.identifier(raw["sensor_id"], "sensor id"),
            start=parse.timestamp(raw["start"], "schedule start"),
            resolution=timedelta(
                seconds=parse.seconds(
                    raw["resolution"], "resolution", least=1, most=86400
                )
            ),
            values=tuple(parse.number(value, "planned power") for value in values),
        )


def _schedule(sensor_id: str, schedule_id: str, answer: Mapping[str, Any]) -> Schedule:
    """Read a finished schedule: power in kW (the server may answer in MW)."""
    raw_values = answer["values"]
    factor = _POWER_FACTORS.get(str(answer.get("unit", "MW")).casefold())
    if factor is None:
        raise InvalidResponse(f"FlexMeasures schedule in {answer.get('unit')!r}")
    values = tuple(
        parse.number(value, "planned power") * factor for value in raw_values
    )
    if not values:
        raise InvalidResponse("FlexMeasures schedule without values")
    duration = parse.duration(answer.get("duration"), "schedule duration")
    return Schedule(
        id=schedule_id,
        sensor_id=sensor_id,
        start=parse.timestamp(answer.get("start"), "schedule start"),
        resolution=duration / len(values),
        values=values,
    )


def _attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return an object's attributes: a JSON string (dict on some servers); {} if unusable."""
    value = raw.get("attributes")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError, RecursionError:
            return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class _Asset:
    """An asset of the account, with its parent when it has one."""

    id: str
    name: str
    parent: str | None
    type: str | None

    @classmethod
    def of(cls, raw: Any) -> _Asset:
        """Read one asset object (ValueRefused: one without a usable id)."""
        raw = parse.mapping(raw, "asset")
        asset_id = parse.identifier(raw.get("id"), "asset id")
        parent = raw.get("parent_asset_id")
        asset_type = raw.get("generic_asset_type")
        return cls(
            id=asset_id,
            name=parse.text(raw.get("name")) or f"Asset {asset_id}",
            parent=None if parent is None else parse.identifier(parent, "parent id"),
            type=parse.text(asset_type.get("name"))
            if isinstance(asset_type, dict)
            else None,
        )


def _kind_of(sensor: _Sensor) -> tuple[Quantity, str, str] | None:
    """Return a sensor's quantity, the unit we read it in and show; None: as sent."""
    unit = sensor.unit.strip().casefold().replace(" ", "")
    if unit in _POWER_UNITS:
        return Quantity.POWER, Unit.KW, Unit.KW
    if unit in _ENERGY_UNITS:
        return Quantity.ENERGY, Unit.KWH, Unit.KWH
    if unit in _TEMPERATURE_UNITS:
        return Quantity.TEMPERATURE, sensor.unit, _TEMPERATURE_UNITS[unit]
    currency, _, per = sensor.unit.strip().partition("/")
    if per.casefold() in _PRICE_DENOMINATORS and currency.isalpha():
        # Read per kWh, whatever the server stores: what the Energy dashboard takes.
        return Quantity.PRICE, f"{currency}/kWh", f"{currency}/kWh"
    if unit == "%":
        words = sensor.name.casefold()
        if "state of charge" in words or "soc" in words.split():
            return Quantity.STATE_OF_CHARGE, "%", Unit.PERCENT
        if "humid" in words:
            return Quantity.HUMIDITY, "%", Unit.PERCENT
    return None


_POWER_WORD = re.compile(r"\bpower\b", re.IGNORECASE)


def _energy_name(name: str, quantity: Quantity, taken: frozenset[str]) -> str:
    """Name the energy a sensor's values add up to: a power's "power" says "energy".

    "grid power" gives "grid energy"; a power named without the word gains it. When
    a sensor of the same asset already has that name, "(from power)" tells them apart.
    """
    if quantity is not Quantity.POWER:
        return name
    renamed = _POWER_WORD.sub(
        lambda word: "Energy" if word[0][0].isupper() else "energy", name
    )
    if renamed == name:
        renamed = f"{name} energy"
    return f"{renamed} (from power)" if renamed.casefold() in taken else renamed


def _directions(sensor: _Sensor, asset: _Asset) -> tuple[Role, Role, str, str]:
    """Name a two-way series' directions: a grid's, a battery's, or a load's."""
    words = f"{sensor.name} {asset.name} {asset.type or ''}".casefold()
    if "grid" in words:
        return _GRID
    if "battery" in words:
        return _BATTERY
    return _LOAD


def _readings(
    members: Sequence[Channel],
    values: Sequence[tuple[datetime, float]],
    step: timedelta,
    now: datetime,
    *,
    power: bool,
) -> dict[str, Reading]:
    """Return a sensor's readings from its recent values (kW when `power`, else kWh).

    The value: the newest one begun. Energy each way: the last whole hour's, when
    every step of it is known.
    """
    readings: dict[str, Reading] = {}
    begun = [(moment, value) for moment, value in values if moment <= now]
    if not begun:
        return readings
    hour = floor_to(now, HOUR) - HOUR
    per_step = step / HOUR if power else 1.0
    amounts = [v * per_step for moment, v in begun if hour <= moment < hour + HOUR]
    whole = step <= HOUR and len(amounts) == HOUR // step
    for channel in members:
        if channel.ref[1] == "value":
            moment, value = begun[-1]
            readings[channel.key] = Reading(value=value, time=moment)
        elif whole:
            sign = int(channel.ref[2])
            readings[channel.key] = Reading(
                value=sum(max(0.0, sign * amount) for amount in amounts),
                time=hour + HOUR,
                start=hour,
            )
    return readings


def _iso(moment: datetime) -> str:
    """Format an instant as the API takes it (aware; `Z` needs no escaping)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_duration(span: timedelta) -> str:
    """Format a span as an ISO 8601 duration in whole minutes (`PT90M`)."""
    return f"PT{int(span.total_seconds() // 60)}M"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """Return the start of the step `moment` falls in (steps counted from the epoch)."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    """Return the first step boundary at or after `moment`."""
    floor = floor_to(moment, step)
    return floor if floor == moment else floor + step


class FlexMeasuresProvider(Provider):
    """A FlexMeasures server, read by one user."""

    key = "flexmeasures"
    name = "FlexMeasures"
    default_url = API_URL
    self_hosted = True
    # 500 per minute per user in a fixed window, every request counted (refused ones
    # too): our rolling window is never faster than that.
    policy = RatePolicy(budgets=(Budget(500, 60.0),), default_retry_after=60.0)
    form = Form(
        fields=(
            Field("email"),
            Field("password", secret=True),
            Field("server", required=False, asked=False),
        )
    )
    shortest_refresh = timedelta(minutes=5)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set up the transport; sensors are learnt at discovery."""
        super().__init__(*args, **kwargs)
        self._transport = Transport(
            self.session, self.api_url, self.state.limiter, name=self.name
        )
        self._sensors: dict[str, _Sensor] = {}
        # Triggers have a limit of their own (10 per 5 minutes): its 429 pauses
        # them, not the account's reads, and is reported at once, never waited out.
        self._triggers = Transport(
            self.session,
            self.api_url,
            RateLimiter(RatePolicy(max_wait=0.0)),
            name=self.name,
        )
        self._user_id: str | None = None
        """The server's id of the user (told with each token)."""
        self._schedules: dict[str, Schedule] = {}
        self._last_read: (
            tuple[tuple[str, datetime, datetime], list[tuple[datetime, float]]] | None
        ) = None
        """The last history read, for the other direction of the same sensor."""
        self._version = "v3_0"
        """The API spoken: v3_0, or v1_1 with an old server (found at sign-in)."""

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Mapping[str, Any]) -> str:
        """FlexMeasures counts requests per user of a server."""
        url = URL(api_url)
        return f"{cls.key}:{url.host}:{url.port}:{str(credentials['email']).casefold()}"

    @property
    def server(self) -> str:
        """Return the server part of every id: its address when the entry was made.

        Ids of two servers never meet, and a server that moves keeps its ids (the
        entry remembers where it was first found).
        """
        if known := self.credentials.get("server"):
            return str(known)
        url = URL(self.api_url)
        host = url.host or self.api_url
        return host if url.is_default_port() else f"{host}:{url.port}"

    # Authentication -----------------------------------------------------------------

    async def _check_version(self) -> None:
        """Refuse a server that serves no API version this client speaks."""
        try:
            found = await self._transport.request_json("GET", "/api/")
        except RequestRejected as err:
            raise UnsupportedServer(f"{self.name}: no API listing ({err})") from err
        except InvalidResponse as err:
            raise UnsupportedServer(f"{self.name}: not a FlexMeasures server") from err
        versions = found.get("versions") if isinstance(found, dict) else None
        if not isinstance(versions, list):
            versions = []
        if "v3_0" in versions:
            self._version = "v3_0"
        elif "v1_1" in versions:  # an old server (before 0.13): v1.1 alone
            self._version = "v1_1"
        else:
            raise UnsupportedServer(
                f"{self.name} serves none of the API versions this integration speaks"
            )

    async def _authenticate(self, _previous: Token | None = None) -> Token:
        """Request a token with e-mail and password; the server decides its life."""
        try:
            payload = await self._transport.request_json(
                "POST",
                "/api/requestAuthToken",
                json_body={
                    "email": self.credentials["email"],
                    "password": self.credentials["password"],
                },
            )
        except RequestRejected as err:
            # 404: no user with this e-mail; 400/422: a field the server refused.
            if err.status in (400, 404, 422):
                raise AuthError(
                    f"{self.name} refused the login ({err.status})"
                ) from err
            raise
        payload = parse.mapping(payload, "token answer")
        if (user := payload.get("user_id")) is not None:
            self._user_id = parse.identifier(user, "user id")
        return Token(access_token=parse.token(payload.get("auth_token"), "auth token"))

    @property
    def _account(self) -> Account:
        email = str(self.credentials["email"]).strip()
        user = self._user_id or email.casefold()
        return Account(id=f"{self.server}:{user}", name=email)

    @override
    async def async_login(self) -> Account:
        """Check the server's API version, log in, keep the token."""
        await self._check_version()
        self.state.tokens.set(await self._authenticate())
        if not self.credentials.get("server"):
            self._learn({"server": self.server})
        return self._account

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        transport: Transport | None = None,
    ) -> Any:
        """Send an authorised request; a refused token is renewed once, silently."""
        tokens = self.state.tokens
        refused = False
        while True:
            token = await tokens.get(self._authenticate)
            try:
                return await (transport or self._transport).request_json(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    headers={"Authorization": token.access_token},
                    hold=partial(tokens.sending, token),
                )
            except TokenReplaced:
                continue
            except AuthError:
                if refused:
                    raise
                refused = True
                _LOGGER.debug("%s refused the token; requesting a new one", self.name)
                tokens.invalidate(token)

    # Listings -----------------------------------------------------------------------

    async def _listing(self, path: str, what: str) -> list[Any]:
        """Read a listing: a plain list, or the pages of `{data, num-records}`.

        A server that pages unasked uses its own page size: the listing is read
        again from page 1 at ours, and ends at a page shorter than that (a server
        that claims more than it sends costs no more requests).
        """
        payload = await self._call("GET", path)
        if isinstance(payload, list):
            return payload
        rows: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            payload = parse.mapping(
                await self._call(
                    "GET", path, params={"page": str(page), "per-page": str(PER_PAGE)}
                ),
                what,
            )
            data = payload.get("data")
            if not isinstance(data, list):
                raise InvalidResponse(f"{self.name} {what} is not a list")
            rows.extend(data)
            total = payload.get("filtered-records", payload.get("num-records"))
            if len(data) < PER_PAGE or (isinstance(total, int) and len(rows) >= total):
                break
        return rows

    async def _objects[T: (_Asset, _Sensor)](
        self, what: str, read: Callable[[Any], T]
    ) -> list[T]:
        """Read a listing's objects, once each; one without a usable id is left out."""
        found: dict[str, T] = {}
        for raw in await self._listing(f"{V3}/{what}", what):
            try:
                item = read(raw)
            except parse.ValueRefused as err:
                self.refusals.add(f"/{what}", err)
                continue
            found.setdefault(item.id, item)
        return list(found.values())

    async def _assets(self) -> list[_Asset]:
        """Read the account's assets."""
        return await self._objects("assets", _Asset.of)

    def _site(self, asset: _Asset, zone: str | None = None) -> Site:
        return Site(
            id=f"{self.server}:{asset.id}",
            name=asset.name,
            timezone=zone,
            model=asset.type,
            configuration_url=str(URL(self.api_url) / "assets" / asset.id),
        )

    @override
    async def _list_sites(self) -> Sequence[Site]:
        """List the top-level assets (v1.1: the connections): one request."""
        if self._version == "v1_1":
            return [
                replace(site, id=f"{self.server}:{site.id}")
                for site in await self._connections()
            ]
        tops = [asset for asset in await self._assets() if asset.parent is None]
        if len(tops) > MAX_SITES:
            self.refusals.truncate("/assets", "assets", len(tops) - MAX_SITES)
        return [self._site(asset) for asset in tops[:MAX_SITES]]

    async def _all_sensors(self) -> list[_Sensor]:
        """Read every sensor of the account's assets (children's included)."""
        return await self._objects("sensors", _Sensor.of)

    async def _connections(self) -> list[Site]:
        """Read a v1.1 server's connections (ids without the server part)."""
        payload = await self._call(
            "GET", f"{v1.V1}/getConnection", params={"type": "GetConnectionRequest"}
        )
        return v1.connections(payload, self.refusals.add)[:MAX_SITES]

    async def _discover_v1(self, site_ids: Sequence[str]) -> Inventory:
        """Describe the chosen connections of a v1.1 server: one request."""
        found = await self._connections()
        chosen = [site for site in found if f"{self.server}:{site.id}" in site_ids]
        return Inventory(
            account=self._account,
            sites=tuple(
                replace(site, id=f"{self.server}:{site.id}") for site in chosen
            ),
            channels=tuple(
                channel for site in chosen for channel in v1.channels(self.server, site)
            ),
            listed=tuple(f"{self.server}:{site.id}" for site in found),
        )

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        """Describe the chosen assets, their children and sensors: two requests."""
        if self._version == "v1_1":
            return await self._discover_v1(site_ids)
        assets = {asset.id: asset for asset in await self._assets()}
        top: dict[str, str] = {}
        for asset in assets.values():
            root, seen = asset, {asset.id}
            while root.parent is not None and root.parent in assets:
                root = assets[root.parent]
                if root.id in seen:  # a loop of parents: the server's data is broken
                    break
                seen.add(root.id)
            top[asset.id] = root.id
        listed = [f"{self.server}:{a.id}" for a in assets.values() if a.parent is None]
        chosen = {sid.rpartition(":")[2] for sid in site_ids if sid in listed}
        sensors = [s for s in await self._all_sensors() if s.asset_id in top]
        zones: dict[str, str] = {}
        for sensor in sensors:
            if sensor.timezone:
                zones.setdefault(top[sensor.asset_id], sensor.timezone)
        sites = [
            self._site(assets[asset_id], zones.get(asset_id))
            for asset_id in dict.fromkeys(top.values())
            if asset_id in chosen
        ]
        devices = [
            Device(
                id=f"{self.server}:{asset.id}",
                site_id=f"{self.server}:{top[asset.id]}",
                name=asset.name,
                parent_id=None
                if asset.parent == top[asset.id]
                else f"{self.server}:{asset.parent}",
                manufacturer="FlexMeasures",
                model=asset.type,
            )
            for asset in assets.values()
            if asset.parent is not None and top[asset.id] in chosen
        ]
        channels: list[Channel] = []
        self._sensors = {}
        names: dict[str, set[str]] = {}
        for sensor in sensors:
            names.setdefault(sensor.asset_id, set()).add(sensor.name.casefold())
        for sensor in sensors:
            if top[sensor.asset_id] not in chosen:
                continue
            self._sensors[sensor.id] = sensor
            channels.extend(
                self._channels(
                    sensor,
                    assets[sensor.asset_id],
                    top[sensor.asset_id],
                    frozenset(names[sensor.asset_id]),
                )
            )
        return Inventory(
            account=self._account,
            sites=tuple(sites),
            channels=tuple(channels),
            listed=tuple(listed),
            devices=tuple(devices),
        )

    def _channels(
        self, sensor: _Sensor, asset: _Asset, top: str, taken: frozenset[str]
    ) -> list[Channel]:
        """Return a sensor's channels: its value, and for power and energy, each way.

        `taken`: the names of the asset's sensors, which an energy's name must not be.
        """
        base = f"{self.server}:{sensor.id}"
        attributes: dict[str, str | int | float | bool] = (
            {"sensor_id": int(sensor.id)} if sensor.id.isdecimal() else {}
        )
        make = partial(
            Channel,
            site_id=f"{self.server}:{top}",
            source=sensor.name,
            source_id=sensor.id,
            device_id=None if asset.id == top else f"{self.server}:{asset.id}",
            label=None,
            attributes=attributes,
        )
        kind = _kind_of(sensor)
        if kind is None:
            return [
                make(
                    key=base,
                    name=sensor.name,
                    quantity=Quantity.OTHER,
                    kind=Kind.INSTANT,
                    unit=sensor.unit,
                    ref=(sensor.id, "value", sensor.unit),
                )
            ]
        quantity, read_unit, unit = kind
        channels: list[Channel] = []
        if (schedule := self._schedules.get(sensor.id)) is not None:
            channels.append(
                make(
                    key=f"{base}:plan",
                    name=f"{sensor.name} planned",
                    quantity=Quantity.POWER,
                    kind=Kind.INSTANT,
                    unit=Unit.KW,
                    ref=(sensor.id, "plan"),
                    attributes={
                        **attributes,
                        "schedule_start": schedule.start.isoformat(),
                        "schedule_end": schedule.end.isoformat(),
                    },
                )
            )
        if quantity is not Quantity.ENERGY:
            channels.append(
                make(
                    key=base,
                    name=sensor.name,
                    quantity=quantity,
                    kind=Kind.INSTANT,
                    unit=unit,
                    ref=(sensor.id, "value", read_unit),
                )
            )
        if quantity not in (Quantity.POWER, Quantity.ENERGY):
            return channels
        # Energy per direction, summed by the hour: only steps that divide an hour.
        hourly = sensor.step <= HOUR and HOUR % sensor.step == timedelta(0)
        inward, outward, in_word, out_word = _directions(sensor, asset)
        positive = "in" if sensor.consumption_positive else "out"
        energy = _energy_name(sensor.name, quantity, taken)
        for way, role, word in (("in", inward, in_word), ("out", outward, out_word)):
            channels.append(
                make(
                    key=f"{base}:{way}",
                    name=f"{energy} {word}",
                    quantity=Quantity.ENERGY,
                    kind=Kind.INTERVAL,
                    unit=Unit.KWH,
                    role=role,
                    history=hourly,
                    statistic=f"{self.server}_{sensor.id}_{way}" if hourly else None,
                    ref=(sensor.id, "energy", "1" if way == positive else "-1"),
                )
            )
        return channels

    # Values ---------------------------------------------------------------------------

    async def _sensor_of(self, channel: Channel) -> _Sensor:
        """Return a channel's sensor: learnt at discovery, or read (after a restart)."""
        return self._sensors.get(channel.ref[0]) or await self._read_sensor(
            channel.ref[0]
        )

    async def _read_sensor(self, sensor_id: str) -> _Sensor:
        """Read a sensor not met yet: all of them, in one request (after a restart)."""
        if not self._sensors:
            self._sensors = {sensor.id: sensor for sensor in await self._all_sensors()}
            if (sensor := self._sensors.get(sensor_id)) is not None:
                return sensor
        raw = await self._call(
            "GET", f"{V3}/sensors/{parse.identifier(sensor_id, 'sensor id')}"
        )
        try:
            sensor = _Sensor.of(raw)
        except parse.ValueRefused as err:
            raise InvalidResponse(f"{self.name} sensor: {err}") from err
        self._sensors[sensor.id] = sensor
        return sensor

    async def _values(
        self, sensor: _Sensor, start: datetime, end: datetime, unit: str
    ) -> list[tuple[datetime, float]]:
        """Return the sensor's values in [start, end) at its own resolution, gaps left out."""
        step = sensor.step
        payload = await self._call(
            "GET",
            f"{V3}/sensors/{sensor.id}/data",
            params={
                "start": _iso(start),
                "duration": _iso_duration(end - start),
                "unit": unit,
                "resolution": _iso_duration(step),
            },
        )
        payload = parse.mapping(payload, "sensor data")
        values = payload.get("values")
        if not isinstance(values, list):
            raise InvalidResponse(f"{self.name} sensor data without values")
        first = start
        if (echoed := payload.get("start")) is not None:
            first = parse.timestamp(echoed, "data start")
        found: list[tuple[datetime, float]] = []
        endpoint = f"/sensors/{sensor.id}/data"
        for index, value in enumerate(values):
            if value is None:
                continue
            moment = first + index * step
            if not start <= moment < end:
                self.refusals.add(endpoint, "a value outside the window asked")
                continue
            try:
                found.append((moment, parse.number(value, "sensor value")))
            except parse.ValueRefused as err:
                self.refusals.add(endpoint, err)
        return found

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        """One request per sensor: every channel of a sensor comes from one read.

        A planned power comes from the schedule kept here: no request.
        """
        return len({c.ref[0] for c in channels if c.ref[1] != "plan"})

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        """Read each sensor's recent window once; take what has begun, newest first."""
        groups: dict[str, list[Channel]] = {}
        now = datetime.now(UTC)
        readings: dict[str, Reading] = {}
        for channel in channels:
            if channel.ref[1] != "plan":
                groups.setdefault(channel.ref[0], []).append(channel)
            elif (schedule := self._schedules.get(channel.ref[0])) is not None:
                if (planned := schedule.at(now)) is not None:
                    step = (
                        schedule.start
                        + ((now - schedule.start) // schedule.resolution)
                        * schedule.resolution
                    )
                    readings[channel.key] = Reading(value=planned, time=step)
        gone: set[str] = set()
        for sensor_id, members in groups.items():
            try:
                if self._version == "v1_1":
                    readings.update(await self._latest_v1(sensor_id, members, now))
                    continue
                sensor = await self._sensor_of(members[0])
                readings.update(await self._latest_of(sensor, members, now))
            except RequestRejected as err:
                if err.status not in GONE:
                    raise
                _LOGGER.debug("%s no longer serves sensor %s", self.name, sensor_id)
                gone.update(channel.key for channel in members)
        return Latest(readings=readings, gone=frozenset(gone))

    async def _latest_of(
        self, sensor: _Sensor, members: Sequence[Channel], now: datetime
    ) -> dict[str, Reading]:
        """Read one window: the newest value begun, and the last whole hour's energy.

        A power sensor is read in kW and its energy worked out here (kW × step), so
        a sensor costs one request whatever channels it has.
        """
        step = sensor.step
        hour = floor_to(now, HOUR) - HOUR
        power = any(c.ref[1] == "energy" for c in members) and any(
            c.ref[1] == "value" for c in members
        )
        unit = next((c.ref[2] for c in members if c.ref[1] == "value"), Unit.KWH)
        current = floor_to(now, step)
        values = await self._values(
            sensor, min(hour, current - step), current + step, unit
        )
        return _readings(members, values, step, now, power=power)

    async def _latest_v1(
        self, address: str, members: Sequence[Channel], now: datetime
    ) -> dict[str, Reading]:
        """Read a v1.1 connection's last hours (kW at the server's resolution)."""
        start = floor_to(now, HOUR) - HOUR
        step, values = await self._meter_data(address, start, now)
        return _readings(members, values, step, now, power=True)

    async def _meter_data(
        self, address: str, start: datetime, end: datetime
    ) -> tuple[timedelta, list[tuple[datetime, float]]]:
        payload = await self._call(
            "GET",
            f"{v1.V1}/getMeterData",
            params=v1.meter_data_params(
                address,
                _iso(start),
                _iso_duration(_ceil(end, timedelta(minutes=1)) - start),
            ),
        )
        step, values = v1.meter_data(payload, start, self.refusals.add)
        return step, [(moment, kw) for moment, kw in values if moment < end]

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield a direction's energy per step, a month per request, oldest first."""
        if self._version == "v1_1":
            async for batch in self._history_v1(channel, start, end):
                yield batch
            return
        sensor = await self._sensor_of(channel)
        step = sensor.step
        sign = int(channel.ref[2])
        cursor = floor_to(start, step)
        while cursor < end:
            until = min(cursor + HISTORY_SPAN, end)
            amounts = await self._amounts(sensor, cursor, until)
            yield [
                Interval(start=moment, end=moment + step, value=max(0.0, sign * a))
                for moment, a in amounts
                if moment >= start
            ]
            cursor = until

    async def _amounts(
        self, sensor: _Sensor, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        """Return energy per step, read once for both directions of a sensor.

        The importer asks for one direction, then the other, over the same span:
        the second is served from the first's read.
        """
        key = (sensor.id, start, end)
        if self._last_read is not None and self._last_read[0] == key:
            found = self._last_read[1]
            self._last_read = None
            return found
        found = await self._values(sensor, start, end, Unit.KWH)
        self._last_read = (key, found)
        return found

    async def _history_v1(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield a v1.1 connection's energy each way (kW × step), a month a request."""
        sign = int(channel.ref[2])
        # A start off the connection's grid reads as gaps: whole hours are on it.
        cursor = floor_to(start, HOUR)
        while cursor < end:
            until = min(cursor + HISTORY_SPAN, end)
            step, values = await self._meter_data(channel.ref[0], cursor, until)
            yield [
                Interval(
                    start=moment,
                    end=moment + step,
                    value=max(0.0, sign * kw * (step / HOUR)),
                )
                for moment, kw in values
                if moment >= start
            ]
            cursor = until

    # Sending --------------------------------------------------------------------------

    async def async_post(
        self,
        sensor_id: str,
        start: datetime,
        step: timedelta,
        values: Sequence[float | None],
        unit: str,
    ) -> Posted:
        """Post values, one per `step` from `start`, in `unit`; follow any job.

        Chunks stay far below the server's 3 MiB limit; a chunk of gaps only is not
        sent. Raise RequestRejected with the server's reason when it refuses some.
        """
        sent = 0
        statuses: list[str] = []
        jobs: list[str] = []
        v1_1 = self._version == "v1_1"
        if v1_1:  # a connection takes power in MW
            values = v1.in_mw(values, unit, step)
        for first in range(0, len(values), MAX_POST_VALUES):
            chunk = list(values[first : first + MAX_POST_VALUES])
            if all(value is None for value in chunk):
                continue
            body: dict[str, Any] = {
                "values": chunk,
                "start": _iso(start + first * step),
                "duration": _iso_duration(len(chunk) * step),
                "unit": "MW" if v1_1 else unit,
            }
            if v1_1:
                body |= {"type": "PostMeterDataRequest", "connection": sensor_id}
            path = (
                f"{v1.V1}/postMeterData" if v1_1 else f"{V3}/sensors/{sensor_id}/data"
            )
            answer = parse.mapping(
                await self._call("POST", path, json_body=body), "post answer"
            )
            status = parse.text(answer.get("status")) or ""
            if (job := parse.text(answer.get("job"))) is not None:
                jobs.append(job)
                status = await self.async_follow_job(job)
            statuses.append(status)
            sent += sum(value is not None for value in chunk)
        return Posted(values=sent, statuses=tuple(statuses), jobs=tuple(jobs))

    async def async_follow_job(self, job: str, wait: float = JOB_WAIT) -> str:
        """Wait for a job of the server's workers; return its final status.

        Raise RequestRejected with the job's reason when it failed; a job still
        queued after `wait` seconds is reported as it is (its data may yet arrive).
        """
        job = parse.identifier(job, "job id")
        delay, waited = JOB_FIRST_POLL, 0.0
        while True:
            try:
                answer = parse.mapping(
                    await self._call("GET", f"{V3}/jobs/{job}"), "job answer"
                )
            except RequestRejected as err:
                if err.status == 422:  # the job failed; its reason is the detail
                    raise RequestRejected(
                        f"{self.name} job {job} failed: {err.detail}", 422, err.detail
                    ) from err
                raise
            status = parse.text(answer.get("status")) or ""
            if status not in ("QUEUED", "STARTED", "DEFERRED", "SCHEDULED"):
                if status == "FAILED":
                    detail = parse.text(answer.get("message")) or "no message"
                    raise RequestRejected(
                        f"{self.name} job {job} failed: {detail}", 422, detail
                    )
                return status
            if waited >= wait:
                return status
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, JOB_LONGEST_POLL)

    async def async_sensor_data(
        self,
        sensor_id: str,
        start: datetime,
        duration: timedelta,
        unit: str,
        resolution: timedelta | None = None,
    ) -> SensorData:
        """Return a sensor's values for a period, in a unit and resolution (prices)."""
        params = {
            "start": _iso(start),
            "duration": _iso_duration(duration),
            "unit": unit,
        }
        if resolution is not None:
            params["resolution"] = _iso_duration(resolution)
        answer = parse.mapping(
            await self._call("GET", f"{V3}/sensors/{sensor_id}/data", params=params),
            "sensor data",
        )
        values = answer.get("values")
        if not isinstance(values, list):
            raise InvalidResponse(f"{self.name} sensor data without values")
        step = (
            parse.duration(answer["resolution"], "resolution")
            if answer.get("resolution") is not None
            else resolution or duration / max(1, len(values))
        )
        first = parse.timestamp(answer.get("start") or _iso(start), "data start")
        return SensorData(
            start=first,
            resolution=step,
            unit=parse.text(answer.get("unit")) or unit,
            values=tuple(
                None if value is None else parse.number(value, "sensor value")
                for value in values
            ),
        )

    async def async_sensor(self, sensor_id: str) -> SensorInfo:
        """Return what a sensor is (unit, resolution, name): known, or read once.

        A v1.1 connection takes power in MW, consumption positive, per quarter hour
        (USEF's settlement period).
        """
        if self._version == "v1_1":
            return SensorInfo(
                id=sensor_id,
                name=sensor_id,
                unit="MW",
                resolution=FALLBACK_RESOLUTION,
                consumption_positive=True,
            )
        if (sensor := self._sensors.get(sensor_id)) is None:
            sensor = await self._read_sensor(sensor_id)
        return SensorInfo(
            id=sensor.id,
            name=sensor.name,
            unit=sensor.unit,
            resolution=sensor.resolution,
            consumption_positive=sensor.consumption_positive,
        )

    # Schedules ------------------------------------------------------------------------

    async def async_trigger_schedule(
        self, sensor_id: str, request: Mapping[str, Any]
    ) -> str:
        """Ask the server to schedule a device (its power sensor); return the id."""
        answer = parse.mapping(
            await self._call(
                "POST",
                f"{V3}/sensors/{parse.identifier(sensor_id, 'sensor id')}"
                "/schedules/trigger",
                json_body=dict(request),
                transport=self._triggers,
            ),
            "trigger answer",
        )
        return parse.identifier(answer.get("schedule"), "schedule id")

    async def async_schedule(
        self,
        sensor_id: str,
        schedule_id: str,
        wait: float = JOB_WAIT,
        duration: timedelta | None = None,
    ) -> Schedule | None:
        """Wait for a schedule the server's worker computes; None if still waiting.

        `duration`: the span triggered. Without it the server answers its default
        window (6 hours), cut short or filled with older schedules' stored values.
        It is kept (and shown as the device's planned power) until the next one.
        """
        path = (
            f"{V3}/sensors/{parse.identifier(sensor_id, 'sensor id')}"
            f"/schedules/{parse.identifier(schedule_id, 'schedule id')}"
        )
        params = None if duration is None else {"duration": _iso_duration(duration)}
        delay, waited = JOB_FIRST_POLL, 0.0
        while True:
            answer = parse.mapping(
                await self._call("GET", path, params=params), "schedule"
            )
            if isinstance(answer.get("values"), list):
                schedule = _schedule(sensor_id, schedule_id, answer)
                self._schedules[sensor_id] = schedule
                return schedule
            if waited >= wait:
                return None
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, JOB_LONGEST_POLL)

    @property
    def schedules(self) -> Mapping[str, Schedule]:
        """Return the newest schedule of each device scheduled, by power sensor."""
        return self._schedules

    @override
    def memory(self) -> dict[str, Any]:
        """Keep the schedules: a restart shows the planned power still."""
        return {
            "schedules": {
                sensor_id: schedule.as_dict()
                for sensor_id, schedule in self._schedules.items()
            }
        }

    @override
    def recall(self, memory: Mapping[str, Any]) -> None:
        """Take the schedules back (one that does not read is dropped)."""
        saved = memory.get("schedules")
        if not isinstance(saved, Mapping):
            return
        for sensor_id, raw in saved.items():
            try:
                self._schedules[str(sensor_id)] = Schedule.from_dict(raw)
            except (InvalidResponse, KeyError, TypeError, ValueError) as err:
                _LOGGER.debug("A saved schedule was dropped: %s", err)
