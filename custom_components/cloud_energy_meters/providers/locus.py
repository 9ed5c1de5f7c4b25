"""Locus Energy (SolarNOC / SolarOS) API v3: solar sites, their components and alerts.

What the API document leaves out and this module handles (see NOTES.md):
- OAuth2 at the API's origin + `/oauth/token`, form-encoded: the password grant gives
  a refresh token; a refresh may or may not return a new one (keep the old one then);
  a refused refresh falls back to the password grant; some API clients may only use
  the client-credentials grant (no refresh token). Tokens last `expires_in` seconds.
- One request at a time per account, token requests included (429 otherwise).
- `dataavailable` decides which fields a component (or site) has; a point omits the
  fields it has no data for: absent, never 0.
- `ts` labels the interval START, in the `tz` asked for: we always ask `tz=UTC`.
- Time windows are limited per granularity (15min: < 31 days), start inclusive,
  end exclusive.
- Conceptual components (`isConceptualNode`) are not monitored: no device, no data.
"""

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
import logging
from typing import Any, override

from yarl import URL

from . import parse
from .contract import MAX_DEVICES, MAX_SITES
from .errors import AuthError, InvalidResponse, RequestRejected
from .form import Field, Form
from .model import (
    Account,
    Alert,
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

API_URL = "https://api.locusenergy.com/v3"
TOKEN_PATH = "/oauth/token"
DEFAULT_TOKEN_LIFETIME = 3600
QUARTER = timedelta(minutes=15)
HISTORY_SPAN = timedelta(days=30)
"""One history request: 15-minute data is limited to windows shorter than 31 days."""
RECENT_WINDOW = timedelta(hours=2)
"""How far back the last value of a field without a `latest` granularity is looked for."""
ALERT_OVERLAP = timedelta(minutes=5)
"""`updatedSince` reaches back this much, so an alert updated during a read is not lost."""
REFUSED_GRANTS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
GONE = frozenset({404, 410})
COMPONENT_PREFIX = "component-"


@dataclass(frozen=True, slots=True)
class _Field:
    """How a known base field becomes a channel."""

    label: Label
    quantity: Quantity
    kind: Kind
    unit: str | None
    common: bool


_ENERGY = _Field(Label.ENERGY, Quantity.ENERGY, Kind.INTERVAL, Unit.KWH, True)
_FIELDS: dict[str, _Field] = {
    "W": _Field(Label.POWER, Quantity.POWER, Kind.INSTANT, Unit.W, True),
    "Wh": _ENERGY,
    "WphA": _Field(Label.PHASE_POWER_A, Quantity.POWER, Kind.INSTANT, Unit.W, False),
    "WphB": _Field(Label.PHASE_POWER_B, Quantity.POWER, Kind.INSTANT, Unit.W, False),
    "WphC": _Field(Label.PHASE_POWER_C, Quantity.POWER, Kind.INSTANT, Unit.W, False),
    "A": _Field(Label.CURRENT, Quantity.CURRENT, Kind.INSTANT, Unit.AMPERE, False),
    "Hz": _Field(Label.FREQUENCY, Quantity.FREQUENCY, Kind.INSTANT, Unit.HERTZ, False),
    "PF": _Field(Label.POWER_FACTOR, Quantity.POWER_FACTOR, Kind.INSTANT, None, False),
    "PPV": _Field(Label.VOLTAGE_LINE, Quantity.VOLTAGE, Kind.INSTANT, Unit.VOLT, False),
    "PhV": _Field(
        Label.VOLTAGE_PHASE, Quantity.VOLTAGE, Kind.INSTANT, Unit.VOLT, False
    ),
    "VA": _Field(
        Label.APPARENT_POWER,
        Quantity.APPARENT_POWER,
        Kind.INSTANT,
        Unit.VOLT_AMPERE,
        False,
    ),
    "VAR": _Field(
        Label.REACTIVE_POWER, Quantity.REACTIVE_POWER, Kind.INSTANT, Unit.VAR, False
    ),
    "W_m": _Field(Label.MODELED_POWER, Quantity.POWER, Kind.INSTANT, Unit.W, False),
    "Wh_m": _Field(
        Label.MODELED_ENERGY, Quantity.ENERGY, Kind.INTERVAL, Unit.KWH, False
    ),
}
# Fields of the site itself (the site data call) take their own names.
_SITE_LABELS = {
    "W": Label.SITE_POWER,
    "Wh": Label.SITE_ENERGY,
    "W_m": Label.SITE_MODELED_POWER,
    "Wh_m": Label.SITE_MODELED_ENERGY,
}
# Weather stations and other sensors are recognised by their unit.
_UNIT_FIELDS: dict[str, _Field] = {
    "w/m²": _Field(
        Label.IRRADIANCE, Quantity.IRRADIANCE, Kind.INSTANT, Unit.W_PER_M2, True
    ),
    "w/m2": _Field(
        Label.IRRADIANCE, Quantity.IRRADIANCE, Kind.INSTANT, Unit.W_PER_M2, True
    ),
    "°c": _Field(
        Label.AMBIENT_TEMPERATURE,
        Quantity.TEMPERATURE,
        Kind.INSTANT,
        Unit.CELSIUS,
        True,
    ),
    "c": _Field(
        Label.AMBIENT_TEMPERATURE,
        Quantity.TEMPERATURE,
        Kind.INSTANT,
        Unit.CELSIUS,
        True,
    ),
}
_UNITS = {
    "w": Unit.W,
    "wh": Unit.KWH,
    "a": Unit.AMPERE,
    "v": Unit.VOLT,
    "hz": Unit.HERTZ,
}
_FACT_LABELS = {
    "installer": Label.INSTALLER,
    "installDate": Label.INSTALL_DATE,
    "ptoDate": Label.PTO_DATE,
    "startupDate": Label.STARTUP_DATE,
}


def _naive_utc(moment: datetime) -> str:
    """Format an instant for `start`, `end` and `updatedSince` (we send tz=UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _instant(value: Any, what: str) -> datetime:
    """Parse a Locus timestamp (ISO 8601 with an offset; without: UTC, as asked)."""
    if not isinstance(value, str):  # the API writes text, never an epoch
        raise parse.ValueRefused(f"{what} timestamp", value)
    return parse.timestamp(value, f"{what} timestamp", UTC)


def _number(point: Mapping[str, Any], key: str, what: str) -> float | None:
    """Return a point's field; None when omitted (no data in that interval)."""
    value = point.get(key)
    if isinstance(value, str):  # the API writes numbers, never numeric text
        raise parse.ValueRefused(f"{what} {key}", value)
    return parse.optional_number(value, f"{what} {key}")


def _is_date(value: str) -> bool:
    """Tell whether a value is a yyyy-mm-dd date, as installinfo promises."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _kwh(wh: float) -> float:
    """Convert Wh to kWh exactly in decimal (1252.4 Wh is 1.2524 kWh, no float dust)."""
    return float(Decimal(repr(wh)) / 1000)


def _list(payload: Any, key: str, what: str) -> list[Any]:
    """Return the list under `key` of a Locus answer (its items still to be checked)."""
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise InvalidResponse(f"Locus {what} has no list of {key}")
    return items


def _id(item: Mapping[str, Any], key: str, what: str) -> str:
    return parse.identifier(item.get(key), f"{what} {key}")


def _objects(value: Any) -> list[dict[str, Any]]:
    """Return the objects of a JSON list (nothing when it is no list)."""
    return (
        [item for item in value if isinstance(item, dict)]
        if isinstance(value, list)
        else []
    )


def _strings(value: Any) -> list[str]:
    """Return the texts of a JSON list (nothing when it is no list)."""
    if not isinstance(value, list):
        return []
    return [text for item in value if (text := parse.text(item))]


def component_key(component_id: str) -> str:
    """Return the device key of a component (never equal to a site id)."""
    return f"{COMPONENT_PREFIX}{component_id}"


@dataclass(frozen=True, slots=True)
class _BaseField:
    """One entry of a `dataavailable` answer."""

    name: str
    long_name: str
    source: str
    unit: str
    short_name: str
    granularities: frozenset[str]
    parameters: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> _BaseField | None:
        """Read a base field; None when it offers no usable aggregation."""
        raw = parse.mapping(raw, "dataavailable field")
        name = parse.identifier(raw.get("baseField"), "dataavailable baseField")
        aggregations = raw.get("aggregations")
        shorts = {
            str(a.get("aggregation")): short
            for a in (aggregations if isinstance(aggregations, list) else [])
            if isinstance(a, dict)
            and (short := parse.text(a.get("shortName")))
            and "/" not in short
        }
        short = next(
            (shorts[kind] for kind in ("sum", "avg", "max", "min") if kind in shorts),
            None,
        )
        if short is None:
            return None  # nothing to ask for (e.g. modelled fields without aggregation)
        parameters = tuple(
            (param, values[0])
            for p in _objects(raw.get("fieldParameters"))
            if (param := parse.text(p.get("param")))
            and (values := _strings(p.get("values")))
        )
        return cls(
            name=name,
            long_name=parse.text(raw.get("longName")) or name,
            source=parse.text(raw.get("source")) or "Measured",
            unit=parse.text(raw.get("unit")) or "",
            short_name=short,
            granularities=frozenset(_strings(raw.get("granularities"))),
            parameters=parameters,
        )

    @property
    def mode(self) -> str | None:
        """How the latest value is read: `latest`, a recent 15-minute window, or not."""
        if "latest" in self.granularities:
            return "latest"
        if "15min" in self.granularities:
            return "15min"
        return None


class LocusProvider(Provider):
    """Locus Energy through one API client (and user), for one partner."""

    key = "locus"
    name = "Locus Energy"
    default_url = API_URL
    policy = RatePolicy(max_concurrency=1, request_seconds=0.5, default_retry_after=1.0)
    # A password-grant client signs in with a SolarOS user; a client-credentials one
    # without: username and password are given together or not at all.
    form = Form(
        fields=(
            Field("client_id"),
            Field("client_secret", secret=True),
            Field("username", required=False),
            Field("password", secret=True, required=False),
            Field("partner_id", number=True),
        ),
        paired=(("username", "password"),),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set up the transport; the token endpoint is at the API's origin."""
        super().__init__(*args, **kwargs)
        self._transport = Transport(
            self.session, self.api_url, self.state.limiter, name=self.name
        )
        origin = URL(self.api_url).origin()
        self._token_url = str(origin.with_path(TOKEN_PATH))
        self._alerts_since: dict[str, datetime] = {}

    @property
    def _partner(self) -> str:
        return str(int(self.credentials["partner_id"]))

    @property
    def _username(self) -> str:
        return str(self.credentials.get("username") or "").strip()

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Mapping[str, Any]) -> str:
        """Locus counts requests per API client and user, whatever the partner."""
        host = URL(api_url).host or api_url
        user = str(credentials.get("username") or "").strip().casefold()
        return f"{cls.key}:{host}:{credentials['client_id']}:{user}"

    # Authentication -----------------------------------------------------------------

    async def _grant(self, form: dict[str, str]) -> Mapping[str, Any]:
        """Ask the token endpoint; a refused grant is refused credentials."""
        form = {
            **form,
            "client_id": str(self.credentials["client_id"]),
            "client_secret": str(self.credentials["client_secret"]),
        }
        try:
            payload = await self._transport.request_json(
                "POST",
                self._token_url,
                form=form,
                headers={"Accept": "application/json"},
            )
        except RequestRejected as err:
            if err.detail in REFUSED_GRANTS or err.status == 403:
                raise AuthError(
                    f"Locus Energy refused the {form['grant_type']} grant"
                ) from err
            raise
        if not isinstance(payload, dict):
            raise InvalidResponse("Locus Energy's token answer has no access token")
        parse.token(payload.get("access_token"), "access token")
        return payload

    def _token_of(self, payload: Mapping[str, Any], previous: str | None) -> Token:
        try:
            lifetime = parse.lifetime(payload.get("expires_in"), "expires_in")
        except InvalidResponse:  # absent or unusable: the documented lifetime
            lifetime = timedelta(seconds=DEFAULT_TOKEN_LIFETIME)
        refresh = payload.get("refresh_token")
        now = datetime.now(UTC)
        return Token(
            access_token=payload["access_token"],
            expires_at=now + lifetime,
            refresh_token=parse.token(refresh, "refresh token")
            if refresh
            else previous,
            token_type="Bearer",
            issued_at=now,
        )

    async def _first_grant(self) -> Token:
        """Log in from the credentials: the password grant, or client credentials."""
        if self._username:
            payload = await self._grant(
                {
                    "grant_type": "password",
                    "username": self._username,
                    "password": str(self.credentials.get("password") or ""),
                }
            )
        else:
            payload = await self._grant({"grant_type": "client_credentials"})
        return self._token_of(payload, None)

    async def _renew(self, previous: Token | None) -> Token:
        """Renew with the refresh token; if it is refused, log in again."""
        if previous is not None and previous.refresh_token:
            try:
                payload = await self._grant(
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": previous.refresh_token,
                    }
                )
            except (AuthError, RequestRejected) as err:
                _LOGGER.debug("Locus Energy refused the refresh token (%s)", err)
            else:
                return self._token_of(payload, previous.refresh_token)
        return await self._first_grant()

    @override
    async def async_login(self) -> Account:
        """Log in now (not from a cached token) and name the account."""
        self.state.tokens.set(await self._first_grant())
        return self._account

    @property
    def _account(self) -> Account:
        who = self._username or str(self.credentials["client_id"])
        return Account(
            id=f"{self._partner}:{who.casefold()}",
            name=f"{who} (partner {self._partner})",
        )

    async def _call(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET an API path with the account's token, renewed once if refused."""
        tokens = self.state.tokens
        refused = False
        while True:
            token = await tokens.get(self._renew)
            try:
                return await self._transport.request_json(
                    "GET",
                    path,
                    params=params,
                    headers={
                        "Authorization": f"Bearer {token.access_token}",
                        "Accept": "application/json",
                    },
                    hold=partial(tokens.sending, token),
                )
            except TokenReplaced:
                continue  # it ran out or was renewed while waiting for its turn
            except AuthError as err:
                if refused:
                    raise RequestRejected(
                        f"Locus Energy refuses this account {path}", 403
                    ) from err
                refused = True
                tokens.invalidate(token)

    # Sites, components, channels -----------------------------------------------------

    async def _sites(self) -> list[Mapping[str, Any]]:
        payload = await self._call(f"/partners/{self._partner}/sites")
        return _list(payload, "sites", "partner sites")

    @override
    async def _list_sites(self) -> tuple[Site, ...]:
        """List the partner's sites (one request)."""
        return tuple(_site(raw) for raw in (await self._raw_sites()).values())

    async def _raw_sites(self) -> dict[str, Mapping[str, Any]]:
        """Return the partner's sites by id: once each, at most MAX_SITES."""
        return self._by_id(await self._sites(), "/sites", "site", MAX_SITES)

    def _by_id(
        self, items: list[Any], endpoint: str, what: str, limit: int
    ) -> dict[str, Mapping[str, Any]]:
        """Return a list's objects by id, once each, at most `limit`.

        One without a usable id is left out; beyond `limit` the list is a runaway
        answer (each item costs a request at discovery) and is cut.
        """
        found: dict[str, Mapping[str, Any]] = {}
        for item in items:
            try:
                item = parse.mapping(item, what)
                ident = _id(item, "id", what)
            except parse.ValueRefused as err:
                self.refusals.add(endpoint, err)
                continue
            if ident in found:
                self.refusals.add(endpoint, f"{what} listed twice")
                continue
            found[ident] = item
        if len(found) > limit:
            self.refusals.truncate(endpoint, f"{what}s", len(found) - limit)
            return dict(list(found.items())[:limit])
        return found

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        """Describe the chosen sites: 1 + 4 per site + 1 per monitored component."""
        raw_sites = await self._raw_sites()
        sites: list[Site] = []
        devices: list[Device] = []
        channels: list[Channel] = []
        for site_id in site_ids:
            if site_id not in raw_sites:
                continue
            site = _site(raw_sites[site_id])
            sites.append(site)
            raw_components = self._by_id(
                _list(
                    await self._call(f"/sites/{site_id}/components"),
                    "components",
                    "site",
                ),
                "/components",
                "component",
                MAX_DEVICES,
            )
            fields = await self._fields(f"/sites/{site_id}/dataavailable")
            channels.extend(_site_channels(site, fields))
            channels.extend(await self._facts(site))
            for device, application in _devices(site_id, raw_components):
                devices.append(device)
                component = device.id.removeprefix(COMPONENT_PREFIX)
                fields = await self._fields(f"/components/{component}/dataavailable")
                channels.extend(
                    _component_channels(
                        site, device, fields, generation=application == "GENERATION"
                    )
                )
        return Inventory(
            account=self._account,
            sites=tuple(sites),
            channels=tuple(channels),
            listed=tuple(raw_sites),
            devices=tuple(devices),
        )

    async def _fields(self, path: str) -> list[_BaseField]:
        fields: dict[str, _BaseField] = {}
        for item in _list(await self._call(path), "baseFields", "dataavailable"):
            try:
                field = _BaseField.parse(item)
            except parse.ValueRefused as err:
                self.refusals.add("/dataavailable", err)
                continue
            if field is not None:
                fields.setdefault(field.short_name, field)
        return list(fields.values())

    async def _facts(self, site: Site) -> list[Channel]:
        """Install info and model settings: what the cloud states about a site."""
        info = await self._call(f"/sites/{site.id}/installinfo")
        settings = await self._call(f"/sites/{site.id}/modelsettings")
        if not isinstance(info, dict) or not isinstance(settings, dict):
            raise InvalidResponse(
                "Locus site installinfo or modelsettings is no object"
            )
        facts: list[Channel] = []
        try:
            size = parse.optional_number(settings.get("size"), "modelsettings size")
        except parse.ValueRefused as err:
            self.refusals.add("/modelsettings", err)
            size = None
        if size is not None:
            facts.append(
                Channel(
                    key=f"{site.id}:fact:size",
                    site_id=site.id,
                    name="System size",
                    label=Label.SYSTEM_SIZE,
                    quantity=Quantity.POWER,
                    kind=Kind.FACT,
                    unit=Unit.KW,
                    fact=size,
                    ref=("fact",),
                )
            )
        for key, label in _FACT_LABELS.items():
            if not isinstance(value := info.get(key), str) or not value:
                continue
            if key != "installer" and not _is_date(value):
                _LOGGER.debug("Locus %s of site %s is no date: %r", key, site.id, value)
                continue
            facts.append(
                Channel(
                    key=f"{site.id}:fact:{key}",
                    site_id=site.id,
                    name=label.value.replace("_", " ").capitalize(),
                    label=label,
                    quantity=Quantity.TEXT if key == "installer" else Quantity.DATE,
                    kind=Kind.FACT,
                    unit="",
                    common=False,
                    fact=value,
                    ref=("fact",),
                )
            )
        return facts

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        """One request per component/site read, plus the alerts of each site."""
        return len({c.ref[:3] for c in channels if c.kind is not Kind.FACT}) + len(
            sites
        )

    # Latest values and alerts ---------------------------------------------------------

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        """Read each component and site once, then each site's alerts."""
        groups: dict[tuple[str, ...], list[Channel]] = {}
        for channel in channels:
            if channel.kind is not Kind.FACT:  # facts are known from discovery
                groups.setdefault(channel.ref[:3], []).append(channel)
        readings: dict[str, Reading] = {}
        gone: set[str] = set()
        now = datetime.now(UTC)
        for (scope, ident, mode), members in groups.items():
            try:
                points = await self._recent(scope, ident, mode, members, now)
            except RequestRejected as err:
                if err.status not in GONE:
                    raise
                gone.update(channel.key for channel in members)
                continue
            for channel in members:
                if (reading := self._last_reading(points, channel)) is not None:
                    readings[channel.key] = reading
        alerts: list[Alert] = []
        for site_id in sites:
            try:
                alerts.extend(await self._alerts(site_id, now))
            except RequestRejected as err:
                if err.status not in GONE:
                    raise
                # A vanished site: its channels are gone, its alerts with it.
                _LOGGER.debug("Locus Energy no longer knows site %s: %s", site_id, err)
        return Latest(readings=readings, gone=frozenset(gone), alerts=tuple(alerts))

    async def _recent(
        self,
        scope: str,
        ident: str,
        mode: str,
        members: Sequence[Channel],
        now: datetime,
    ) -> list[Mapping[str, Any]]:
        """Ask a component's or site's last point(s) of the channels' fields."""
        params = {
            "fields": ",".join(dict.fromkeys(c.ref[3] for c in members)),
            "tz": "UTC",
            "gran": mode,
        }
        for channel in members:
            params.update(dict(zip(channel.ref[4::2], channel.ref[5::2], strict=True)))
        if mode != "latest":
            params["start"] = _naive_utc(now - RECENT_WINDOW)
            params["end"] = _naive_utc(now)
        payload = await self._call(f"/{scope}s/{ident}/data", params)
        points: list[Mapping[str, Any]] = []
        for point in _list(payload, "data", f"{scope} data"):
            if isinstance(point, dict):
                points.append(point)
            else:
                self.refusals.add(f"/{scope}s/data", "a point that is no object")
        return points

    def _last_reading(
        self, points: Sequence[Mapping[str, Any]], channel: Channel
    ) -> Reading | None:
        """Return the channel's value in the last point that has a usable one."""
        short = channel.ref[3]
        for point in reversed(points):
            try:
                value = _number(point, short, "data")
                if value is None:
                    continue
                moment = _instant(point.get("ts"), "data")
                if channel.quantity is Quantity.ENERGY:
                    # An amount is true at the end of its interval (`ts`: the start).
                    wh = parse.amount(value, f"data {short}")
                    return Reading(value=_kwh(wh), time=moment + QUARTER, start=moment)
            except parse.ValueRefused as err:
                self.refusals.add(f"/{channel.ref[0]}s/data", err)
                continue
            return Reading(value=value, time=moment)
        return None

    async def _alerts(self, site_id: str, now: datetime) -> list[Alert]:
        """Return the site's alerts changed since the last read (all the first time)."""
        params = {"tz": "UTC"}
        if (since := self._alerts_since.get(site_id)) is not None:
            params["updatedSince"] = _naive_utc(since - ALERT_OVERLAP)
        raw = _list(
            await self._call(f"/sites/{site_id}/alerts", params), "alerts", "alerts"
        )
        self._alerts_since[site_id] = now
        alerts: dict[str, Alert] = {}
        for item in raw:
            try:
                item = parse.mapping(item, "alert")
                alert = _alert(site_id, item)
            except parse.ValueRefused as err:
                self.refusals.add("/alerts", err)
                continue
            alerts[alert.id] = alert  # listed twice: the later word counts
        return list(alerts.values())

    # History --------------------------------------------------------------------------

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield 15-minute energy in windows shorter than the documented 31 days."""
        scope, ident = channel.ref[0], channel.ref[1]
        cursor = start
        while cursor < end:
            window_end = min(end, cursor + HISTORY_SPAN)
            payload = await self._call(
                f"/{scope}s/{ident}/data",
                {
                    "fields": channel.ref[3],
                    "start": _naive_utc(cursor),
                    "end": _naive_utc(window_end),
                    "tz": "UTC",
                    "gran": "15min",
                },
            )
            by_start: dict[datetime, Interval] = {}
            for point in _list(payload, "data", f"{scope} data"):
                try:
                    point = parse.mapping(point, f"{scope} data point")
                    first = _instant(point.get("ts"), f"{scope} data")
                    wh = _number(point, channel.ref[3], f"{scope} data")
                    if wh is not None:
                        wh = parse.amount(wh, f"{scope} data {channel.ref[3]}")
                except parse.ValueRefused as err:
                    self.refusals.add(f"/{scope}s/data", err)
                    continue
                if wh is None or not cursor <= first < window_end:
                    continue
                by_start[first] = Interval(first, first + QUARTER, _kwh(wh))
            yield [by_start[key] for key in sorted(by_start)]
            cursor = window_end


def _site(raw: Mapping[str, Any]) -> Site:
    """Describe a site from its object in a sites answer."""
    site_id = _id(raw, "id", "partner sites")
    town = " ".join(
        part
        for part in (
            parse.text(raw.get("localeCode1")) or parse.text(raw.get("locale1")),
            parse.text(raw.get("postalCode")),
        )
        if part
    )
    address = ", ".join(
        part
        for part in (
            parse.text(raw.get("address1")),
            parse.text(raw.get("address2")),
            parse.text(raw.get("locale3")),
            town,
            parse.text(raw.get("countryCode")),
        )
        if part
    )
    return Site(
        id=site_id,
        name=parse.text(raw.get("name")) or site_id,
        timezone=parse.text(raw.get("locationTimezone")),
        address=address or None,
        reference=parse.text(raw.get("clientId")),
    )


def _devices(
    site_id: str, by_id: Mapping[str, Mapping[str, Any]]
) -> list[tuple[Device, str]]:
    """Describe monitored components as devices, linked to their nearest parent.

    Each comes with its application (GENERATION, NET-GRID …): only generation gets
    production statistics.
    """

    def parent_of(raw: Mapping[str, Any]) -> str | None:
        seen: set[str] = set()
        while raw.get("parentType") == "COMPONENT":
            parent = parse.text(raw.get("parentId")) or ""
            if parent in seen or parent not in by_id:
                return None
            seen.add(parent)
            raw = by_id[parent]
            if not raw.get("isConceptualNode"):
                return component_key(parent)
        return None

    return [
        (
            Device(
                id=component_key(component_id),
                site_id=site_id,
                name=parse.text(raw.get("name")) or component_id,
                parent_id=parent_of(raw),
                manufacturer=raw.get("oem") or None,
                model=raw.get("model") or None,
                serial_number=raw.get("serialNumber") or None,
                kind=raw.get("nodeType") or None,
                alerts=True,
            ),
            parse.text(raw.get("application")) or "",
        )
        for component_id, raw in by_id.items()
        if not raw.get("isConceptualNode")
    ]


def _known_field(field: _BaseField) -> _Field | None:
    """Return how a base field becomes a channel (None: not one we can show)."""
    if field.name in _FIELDS:
        return _FIELDS[field.name]
    if field.unit.casefold() in _UNIT_FIELDS:
        return _UNIT_FIELDS[field.unit.casefold()]
    return None


def _field_channel(
    site: Site,
    field: _BaseField,
    *,
    scope: str,
    ident: str,
    device: Device | None,
    generation: bool,
) -> Channel | None:
    """Make the channel of one field of a component or of the site itself."""
    if field.mode is None or (scope == "site" and field.mode == "latest"):
        mode = "15min" if "15min" in field.granularities else None
    else:
        mode = field.mode
    if mode is None:
        return None  # daily-only fields (expected energy) have no recent value
    known = _known_field(field)
    measured = field.source == "Measured"
    label: Label | None
    if known is None:
        # A field this module does not know: shown under the cloud's name, disabled.
        unit = _UNITS.get(field.unit.casefold(), field.unit)
        known = _Field(Label.POWER, Quantity.OTHER, Kind.INSTANT, unit, False)
        label = None
    else:
        label = (
            _SITE_LABELS.get(field.name, known.label)
            if scope == "site"
            else known.label
        )
    statistic = None
    name = field.long_name
    if field.name == "Wh" and measured and generation:
        # Production statistics: the site's carries no component's name.
        statistic = (
            f"{site.id}_{ident}_production" if device else f"{site.id}_production"
        )
        name = f"{device.name} production" if device else "Solar production"
    elif device and label is not None:
        name = f"{device.name} {field.long_name}"
    return Channel(
        key=f"{site.id}:{scope}:{ident}:{field.short_name}",
        site_id=site.id,
        name=name,
        label=label,
        quantity=known.quantity,
        kind=known.kind,
        unit=str(known.unit or ""),
        role=Role.PRODUCTION if generation else Role.MEASUREMENT,
        source=device.name if device else None,
        source_id=ident,
        history=statistic is not None,
        statistic=statistic,
        common=known.common and measured,
        device_id=device.id if device else None,
        attributes={"field": field.short_name, "source": field.source},
        ref=(
            scope,
            ident,
            mode,
            field.short_name,
            *(p for pair in field.parameters for p in pair),
        ),
    )


def _site_channels(site: Site, fields: Iterable[_BaseField]) -> list[Channel]:
    """Describe the site's own fields (read with the site data call)."""
    return [
        channel
        for field in fields
        if (
            channel := _field_channel(
                site, field, scope="site", ident=site.id, device=None, generation=True
            )
        )
    ]


def _component_channels(
    site: Site, device: Device, fields: Iterable[_BaseField], *, generation: bool
) -> list[Channel]:
    """Describe a component's fields, as its `dataavailable` lists them."""
    component = device.id.removeprefix(COMPONENT_PREFIX)
    return [
        channel
        for field in fields
        if (
            channel := _field_channel(
                site,
                field,
                scope="component",
                ident=component,
                device=device,
                generation=generation,
            )
        )
    ]


def _alert(site_id: str, raw: Mapping[str, Any]) -> Alert:
    """Read one alert object."""
    end = raw.get("end")
    return Alert(
        id=_id(raw, "id", "alerts"),
        site_id=site_id,
        device_id=component_key(_id(raw, "componentId", "alerts")),
        device_name=parse.text(raw.get("componentName"))
        or _id(raw, "componentId", "alerts"),
        source_id=_id(raw, "componentId", "alerts"),
        type=parse.text(raw.get("alertType")) or "Alert",
        priority=parse.text(raw.get("priority")) or "",
        start=_instant(raw.get("start"), "alert"),
        end=_instant(end, "alert") if end else None,
        description=parse.text(raw.get("descriptionShort")),
        details=parse.text(raw.get("descriptionLong")),
    )
