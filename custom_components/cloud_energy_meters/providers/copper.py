"""Copper Labs (API v2): home and enterprise meters of electricity, gas and water.

What the API document leaves out and this module handles (see NOTES.md, Copper):
- Two kinds of account. A Copper app (consumer) account signs in at Auth0 with the
  authorization code and PKCE (S256): the user opens `sign_in_link`, signs in with
  the e-mailed code and pastes the address it ends on (`code_from`); the code is
  exchanged once (`async_exchange`) and the refresh token kept. Auth0 may rotate it
  (each refresh answers a new one and retires the old; presenting a retired one
  revokes them all): `on_refresh_token` is told the new one the moment it arrives.
  An enterprise account uses the client-credentials grant with the audience.
- The API sends no units: by meter type electricity is kWh (kW), gas CCF (CCF/h),
  water US gallons (gal/h); we give m³ and m³/h.
- Meter ids contain `:` and must reach the server percent-encoded.
- Usage rows include both window ends; `time` labels a bucket (USAGE_LABEL).
- 100 requests per rolling hour and 1,000 per rolling day, per account.
"""

from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
import hashlib
import itertools
import logging
import math
import re
import secrets
from typing import Any, Final, Literal, override
from urllib.parse import parse_qs, quote, urlsplit

from yarl import URL

from . import parse
from .cache import ResponseCache
from .contract import MAX_CHANNELS, MAX_DEVICES, MAX_SITES
from .errors import AuthError, InvalidResponse, RequestRejected
from .form import Field, Form, Setting
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
from .ratelimit import Budget, RateLimiter, RatePolicy
from .tokens import Token, TokenReplaced
from .transport import Transport

_LOGGER = logging.getLogger(__name__)

API_URL = "https://api.copperlabs.com/api/v2"
AUTH_URL = "https://auth.copperlabs.com"
PUBLIC_CLIENT_ID = "RvXeGVUtzcz9iWnP4QJFwnVwCHVUoMIA"
"""The Copper app's public Auth0 client (the official example script's)."""
REDIRECT_URI = "https://api.copperlabs.com/api/v2/app"
AUDIENCE = "https://api.copperlabs.com"
APP_SCOPE = "app offline_access"

CONF_AUTH_URL: Final = "auth_url"
CONF_REFRESH_TOKEN: Final = "refresh_token"
CONF_USER: Final = "user"
"""The consumer account's id (Account.id), saved beside the refresh token: it names
the budget the entries of one user share (the refresh token changes, it does not)."""
CONF_ENTERPRISE_ID: Final = "enterprise_id"

DEFAULT_TOKEN_LIFETIME = timedelta(hours=24)
HOUR = timedelta(hours=1)

USAGE_LABEL: Final[Literal["end", "start"]] = "end"
"""What a usage row's `time` labels: the END of its bucket, (time - 1 h, time].

NOTES calls the label unverified. The document defines a row's power as the "delta
in energy from previous bucket divided by time", that is the amount since the
previous grid point, which is a bucket ending at `time`; the simulator, written from
the same documents, serves that by default. Intervals are labelled by their start
above this module, so each row becomes [time - 1 h, time). Change it here alone."""

MAX_WINDOW = timedelta(days=92)
"""The longest usage window asked at once; halved each time the cloud refuses one."""
MIN_WINDOW = timedelta(days=1)
RECENT = timedelta(hours=3)
"""How far back a latest read of usage rows looks (the newest buckets may be null)."""
RECALLED_ROWS = 16
"""Rows per meter taken back after a restart, at most (RECENT holds four)."""
PAGE_LIMIT = 1000
"""Rows asked per offset/limit page; a shorter page is the last one."""
MAX_PAGES = 100
"""Pages one listing or bulk walk may take: more is a runaway answer (a loop)."""
BULK_PAGE = 100
"""Rows the cloud returns per bulk page (what refresh_cost counts with)."""

CCF_M3 = Decimal("2.8316846592")
"""1 CCF (100 cubic feet) in m³, exactly."""
GALLON_M3 = Decimal("0.003785411784")
"""1 US gallon in m³, exactly."""

type MeterKind = Literal["electric", "gas", "water"]
ELECTRIC_TYPES = frozenset({"power", "power_net", "power_gen", "power_sub", "electric"})
_UOM_KINDS: dict[str, MeterKind] = {"kwh": "electric", "ccf": "gas", "gal": "water"}
_FACTORS: dict[MeterKind, Decimal] = {
    "electric": Decimal(1),
    "gas": CCF_M3,
    "water": GALLON_M3,
}
MAX_RATE: dict[MeterKind, float] = {"electric": 5000.0, "gas": 500.0, "water": 50000.0}
"""More than any meter Copper reads can pass per hour (kW, CCF/h, gal/h): a register
rising faster than this since the last one accepted is a glitch (the known x100)."""
REGISTER_SLACK = 1.0
"""Rise allowed on top of MAX_RATE (rounding of the cloud's interpolation)."""

_CODE = re.compile(r"^[A-Za-z0-9._~-]{4,512}$")
"""What an authorization code looks like (Auth0 codes are URL-safe text)."""


@dataclass(frozen=True, slots=True)
class _Kind:
    """How a meter kind becomes channels."""

    quantity: Quantity
    register_label: Label
    interval_label: Label
    unit: str
    rate_quantity: Quantity
    rate_label: Label
    rate_unit: str
    rate_name: str


_KINDS: dict[MeterKind, _Kind] = {
    "electric": _Kind(
        Quantity.ENERGY,
        Label.ENERGY_REGISTER,
        Label.ENERGY,
        Unit.KWH,
        Quantity.POWER,
        Label.POWER,
        Unit.KW,
        "power",
    ),
    "gas": _Kind(
        Quantity.GAS,
        Label.GAS_REGISTER,
        Label.INTERVAL_GAS,
        Unit.CUBIC_METER,
        Quantity.VOLUME_FLOW_RATE,
        Label.FLOW_RATE,
        Unit.CUBIC_METER_PER_HOUR,
        "flow rate",
    ),
    "water": _Kind(
        Quantity.WATER,
        Label.WATER_REGISTER,
        Label.INTERVAL_WATER,
        Unit.CUBIC_METER,
        Quantity.VOLUME_FLOW_RATE,
        Label.FLOW_RATE,
        Unit.CUBIC_METER_PER_HOUR,
        "flow rate",
    ),
}

_MODELS: dict[str, str] = {
    "power": "Electricity meter",
    "electric": "Electricity meter",
    "power_net": "Net electricity meter (import and export)",
    "power_gen": "Electricity generation meter",
    "power_sub": "Electricity submeter",
    "gas": "Gas meter",
    "water": "Water meter",
    "water_indoor": "Indoor water meter",
    "water_outdoor": "Outdoor water meter",
}
"""What each meter type is, as its device's model says it (the type is an attribute)."""

_ROLES: Final = {
    "power": Role.GRID_IMPORT,
    "power_net": Role.GRID_IMPORT,
    "electric": Role.GRID_IMPORT,
    "power_gen": Role.PRODUCTION,
}
"""What a meter counts for the home: Copper reads the utility's meters, so an
electric meter is what the home takes from the grid (a net meter: its net use); a
sub-meter (`power_sub`) is part of that use, and gas and water are the home's use."""

APP_FIELD: Final = "code"
"""What the Copper app sign-in asks: the pasted address (or code), not kept."""
FORM = Form(
    fields=(
        Field("client_id", required=False),
        Field("client_secret", secret=True, required=False),
        Field(CONF_ENTERPRISE_ID, required=False),
        Field(CONF_REFRESH_TOKEN, secret=True, required=False, asked=False),
        Field(CONF_USER, required=False, asked=False),
    ),
    paired=(("client_id", "client_secret"),),
    advanced=(Setting(CONF_AUTH_URL, AUTH_URL, url=True),),
)
"""Both kinds of account's credentials (an entry keeps all keys, unused ones empty):
an enterprise client (id, secret, enterprise id), or a Copper app user (the refresh
token a pasted code became, and the user's id). Copper's own flow steps draw the
forms (extras/copper)."""
ENTERPRISE_KEYS: Final = ("client_id", "client_secret", CONF_ENTERPRISE_ID)
APP_KEYS: Final = (CONF_REFRESH_TOKEN, CONF_USER)


# Signing in ---------------------------------------------------------------------------


def _challenge(verifier: str) -> str:
    """Return the S256 code challenge of a PKCE verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_in_link(
    auth_url: str = AUTH_URL,
    *,
    client_id: str = PUBLIC_CLIENT_ID,
    redirect_uri: str = REDIRECT_URI,
) -> tuple[str, str]:
    """Return the Copper app's sign-in address and its fresh PKCE code verifier.

    The verifier (kept until the pasted code is exchanged) is in no address.
    """
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 wants 43..128
    base = URL(auth_url.rstrip("/"))
    url = base.with_path(base.path.rstrip("/") + "/authorize").with_query(
        {
            "response_type": "code",
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
            "client_id": client_id,
            "scope": APP_SCOPE,
            "audience": AUDIENCE,
            "redirect_uri": redirect_uri,
        }
    )
    return str(url), verifier


def code_from(pasted: str) -> str | None:
    """Return the authorization code in a pasted address (or a bare code), else None."""
    pasted = pasted.strip()
    if not pasted or len(pasted) > 4096:
        return None
    if "=" in pasted or "/" in pasted or "?" in pasted:
        parts = urlsplit(pasted)
        for part in (parts.query, parts.fragment):
            codes = parse_qs(part).get("code")
            if codes and _CODE.match(codes[0].strip()):
                return codes[0].strip()
        return None
    return pasted if _CODE.match(pasted) else None


# Values ---------------------------------------------------------------------------------


def meter_kind(meter_type: str | None, uom: str | None = None) -> MeterKind | None:
    """Return electric, gas or water for a meter type (or its unit); None: unknown."""
    if meter_type in ELECTRIC_TYPES:
        return "electric"
    if meter_type == "gas":
        return "gas"
    if meter_type is not None and meter_type.startswith("water"):
        return "water"
    return _UOM_KINDS.get((uom or "").casefold())


def convert(value: float, kind: MeterKind) -> float:
    """Convert kWh, CCF or US gallons (or per hour) to kWh or m³ (per hour), exactly."""
    if kind == "electric":
        return value
    return float(Decimal(repr(value)) * _FACTORS[kind])


def _iso(moment: datetime) -> str:
    """Format an instant as the API writes them."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _time(value: Any, what: str) -> datetime:
    """Parse a Copper time (ISO 8601 in UTC with `Z`)."""
    if not isinstance(value, str):
        raise parse.ValueRefused(what, value)
    return parse.timestamp(value.replace("Z", "+00:00"), what)


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def _bucket(at: datetime) -> tuple[datetime, datetime]:
    """Return the hour a usage row at `at` carries (USAGE_LABEL)."""
    return (at - HOUR, at) if USAGE_LABEL == "end" else (at, at + HOUR)


def quote_id(ident: str) -> str:
    """Percent-encode an id for one path segment (`:` becomes `%3A`)."""
    return quote(ident, safe="")


def _objects(payload: Any, key: str | None, what: str) -> list[Any]:
    """Return the list of an answer (under `key`, or the answer itself)."""
    items = payload.get(key) if key is not None and isinstance(payload, dict) else None
    if key is None:
        items = payload
    if not isinstance(items, list):
        raise InvalidResponse(f"Copper {what} has no list")
    return items


def _site(raw: Mapping[str, Any]) -> Site:
    """Describe a premise."""
    premise_id = parse.identifier(raw.get("id"), "premise id")
    town = " ".join(
        part
        for part in (
            parse.text(raw.get("state_region")),
            parse.text(raw.get("postal_code")),
        )
        if part
    )
    address = ", ".join(
        part
        for part in (
            parse.text(raw.get("street_address")),
            parse.text(raw.get("suite_apartment_unit")),
            parse.text(raw.get("city_town")),
            town,
        )
        if part
    )
    zone = parse.text(raw.get("timezone"))
    return Site(
        id=premise_id,
        name=parse.text(raw.get("name")) or premise_id,
        timezone=zone if zone and len(zone) <= parse.MAX_ZONE_NAME else None,
        address=address or None,
    )


@dataclass(frozen=True, slots=True)
class _Meter:
    """A meter as a listing names it."""

    id: str
    premise_id: str
    type: str
    kind: MeterKind

    @property
    def device_id(self) -> str:
        return f"meter_{self.id}"


@dataclass(frozen=True, slots=True)
class _Register:
    """The last register value accepted for a meter (in the cloud's unit)."""

    time: datetime
    value: float


class _Transport(Transport):
    """The shared transport, sending paths as written (ids already percent-encoded).

    aiohttp and yarl decode `%3A` back into `:` in a path given as text; Copper then
    answers 404 (NOTES): the URL is built `encoded=True`.
    """

    @override
    def url(self, path: str) -> URL:
        if path.startswith(("http://", "https://")):
            return URL(path, encoded=True)
        return URL(f"{self.base_url}/{path.lstrip('/')}", encoded=True)


class CopperProvider(Provider):
    """Copper Labs through a Copper app user or an enterprise API client."""

    key = "copper"
    name = "Copper Labs"
    default_url = API_URL
    policy = RatePolicy(
        budgets=(Budget(100, 3600.0), Budget(1000, 86400.0)),
        default_retry_after=60.0,
    )
    form = FORM
    shortest_refresh = timedelta(minutes=15)
    """Meters report every 15 minutes, and Copper's answers stay fresh that long."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set up the transport; the token endpoint is at the Auth0 tenant."""
        super().__init__(*args, **kwargs)
        self._transport = _Transport(
            self.session, self.api_url, self.state.limiter, name=self.name
        )
        auth = str(self.settings.get(CONF_AUTH_URL) or AUTH_URL).rstrip("/")
        self._token_url = f"{auth}/oauth/token"
        # Auth0 is not the API: its requests do not count against the API budget.
        self._auth = Transport(
            self.session, auth, RateLimiter(RatePolicy()), name=self.name
        )
        self._api = URL(self.api_url.rstrip("/"))
        self._registers: dict[str, _Register] = {}
        self._window = MAX_WINDOW
        self.cache = ResponseCache()
        """Answers still fresh by their Cache-Control max-age: not asked again."""
        self._recent: dict[str, list[Mapping[str, Any]]] = {}
        """Each meter's newest usage rows, as its last history read brought them."""

    @property
    def enterprise(self) -> bool:
        """Tell whether this is an enterprise account (else a Copper app user)."""
        return bool(self.credentials.get(CONF_ENTERPRISE_ID))

    @property
    def _eid(self) -> str:
        return quote_id(str(self.credentials[CONF_ENTERPRISE_ID]).strip())

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Mapping[str, Any]) -> str:
        """Copper counts requests per enterprise client, or per Copper app user."""
        host = URL(api_url).host or api_url
        if credentials.get(CONF_ENTERPRISE_ID):
            return f"{cls.key}:{host}:client:{credentials.get('client_id', '')}"
        if user := credentials.get(CONF_USER):
            return f"{cls.key}:{host}:app:{user}"
        # A user not known yet (a sign-in being checked) shares with no one: two
        # sign-ins must not renew each other's tokens through one token cache.
        return f"{cls.key}:{host}:app-new:{secrets.token_hex(8)}"

    # Authentication -----------------------------------------------------------------

    async def _grant(self, body: dict[str, str], what: str) -> Mapping[str, Any]:
        """Ask Auth0's token endpoint; a refused grant is refused credentials."""
        try:
            payload = await self._auth.request_json(
                "POST",
                self._token_url,
                json_body=body,
                headers={"Accept": "application/json"},
            )
        except AuthError as err:  # 401
            raise AuthError(f"Copper Labs refused the {what}") from err
        except RequestRejected as err:
            if err.status in (400, 403):
                raise AuthError(f"Copper Labs refused the {what}") from err
            raise
        if not isinstance(payload, dict):
            raise InvalidResponse("Copper Labs' token answer is no object")
        return payload

    def _token_of(self, payload: Mapping[str, Any], previous: str | None) -> Token:
        """Read a token answer; keep `previous` refresh token when none came."""
        access = parse.token(payload.get("access_token"), "access token")
        token_type = parse.token(payload.get("token_type") or "Bearer", "token type")
        try:
            lifetime = parse.lifetime(payload.get("expires_in"), "expires_in")
        except InvalidResponse:
            lifetime = DEFAULT_TOKEN_LIFETIME
        refresh = payload.get("refresh_token")
        refresh = parse.token(refresh, "refresh token") if refresh else previous
        now = datetime.now(UTC)
        return Token(
            access_token=access,
            expires_at=now + lifetime,
            refresh_token=refresh,
            token_type=token_type,
            issued_at=now,
        )

    def _rotated(self, token: Token, previous: str | None) -> Token:
        """Tell the layer above about a new refresh token, at once."""
        if token.refresh_token and token.refresh_token != previous:
            self._learn({CONF_REFRESH_TOKEN: token.refresh_token})
        return token

    async def async_exchange(self, code: str, verifier: str) -> str:
        """Exchange a pasted code and its PKCE verifier; return the refresh token.

        The access token that comes with it is kept for the next requests.
        """
        payload = await self._grant(
            {
                "grant_type": "authorization_code",
                "code_verifier": verifier,
                "client_id": PUBLIC_CLIENT_ID,
                "code": code,
                "redirect_uri": REDIRECT_URI,
            },
            "sign-in code (open the sign-in link again)",
        )
        token = self._token_of(payload, None)
        if not token.refresh_token:
            raise InvalidResponse("Copper Labs' sign-in gave no refresh token")
        self.state.tokens.set(token)
        return token.refresh_token

    async def _refresh(self, refresh_token: str) -> Token:
        """Trade the refresh token (rotated or not) for a new access token."""
        payload = await self._grant(
            {
                "grant_type": "refresh_token",
                "client_id": PUBLIC_CLIENT_ID,
                "refresh_token": refresh_token,
            },
            "refresh token (sign in again)",
        )
        return self._rotated(self._token_of(payload, refresh_token), refresh_token)

    async def _client_grant(self) -> Token:
        """Get an enterprise token (client credentials with the audience)."""
        payload = await self._grant(
            {
                "grant_type": "client_credentials",
                "client_id": str(self.credentials.get("client_id") or ""),
                "client_secret": str(self.credentials.get("client_secret") or ""),
                "audience": AUDIENCE,
            },
            "client id or secret",
        )
        return self._token_of(payload, None)

    def _current_refresh_token(self, previous: Token | None) -> str:
        """Return the newest refresh token: the cache's (rotated), else the entry's."""
        if previous is not None and previous.refresh_token:
            return previous.refresh_token
        current = self.state.tokens.token
        if current is not None and current.refresh_token:
            return current.refresh_token
        saved = self.credentials.get(CONF_REFRESH_TOKEN)
        if not isinstance(saved, str) or not saved:
            raise AuthError("Copper Labs: no refresh token (sign in again)")
        return saved

    async def _renew(self, previous: Token | None) -> Token:
        """Renew the access token of either kind of account."""
        if self.enterprise:
            return await self._client_grant()
        return await self._refresh(self._current_refresh_token(previous))

    @override
    async def async_login(self) -> Account:
        """Get a new token now and name the account.

        The token comes from Auth0, which Copper does not count: a restart costs no
        API request. An enterprise client proves itself with the grant (its right
        to the enterprise id shows at the first listing). A Copper app user is named
        by its smallest premise id (Auth0 tells no user id with this scope): listed
        at the first sign-in, then kept as the `user` credential.
        """
        self.state.tokens.set(await self._renew(None))
        if self.enterprise:
            eid = str(self.credentials[CONF_ENTERPRISE_ID]).strip()
            return Account(id=f"enterprise:{eid}", name=f"Enterprise {eid}")
        if user := str(self.credentials.get(CONF_USER) or ""):
            return Account(id=user, name="Copper app")
        account = self._app_account(await self._app_sites())
        self._learn({CONF_USER: account.id})
        return account

    @staticmethod
    def _app_account(sites: Sequence[Site]) -> Account:
        """Name a Copper app account by its first premise (Auth0 tells no user id).

        The id is the smallest premise id; the name, that premise's (the entry's
        title: "Copper Labs Home").
        """
        first = min(sites, key=lambda site: site.id, default=None)
        if first is None:
            return Account(id="app:", name="Copper app")
        return Account(id=f"app:{first.id}", name=first.name or "Copper app")

    async def _call(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET an API path with the token; on 401/403 a new token once, then report."""
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
                        "Authorization": f"{token.token_type} {token.access_token}",
                        "Accept": "application/json",
                    },
                    hold=partial(tokens.sending, token),
                    cache=self.cache,
                )
            except TokenReplaced:
                continue
            except (AuthError, RequestRejected) as err:
                if isinstance(err, RequestRejected) and err.status != 403:
                    raise
                if refused:
                    raise AuthError(
                        f"Copper Labs refuses this account ({err})"
                    ) from err
                refused = True
                tokens.invalidate(token)

    # Listings -----------------------------------------------------------------------

    async def _paged(self, path: str, what: str) -> list[Any]:
        """Read an offset/limit listing (plain lists) to its end.

        The end is an empty page or one shorter than the longest so far: a server
        that serves fewer rows than asked (its own cap) is still read whole, at the
        cost of one empty page when the first is short.
        """
        rows: list[Any] = []
        previous: list[Any] = []
        for _ in range(MAX_PAGES):
            params = {"offset": str(len(rows)), "limit": str(PAGE_LIMIT)}
            found = _objects(await self._call(path, params), None, what)
            if found and found == previous:  # the offset was ignored: no end
                self.refusals.add(path, f"a {what} page repeated")
                return rows
            rows.extend(found)
            if not found or len(found) < len(previous):
                return rows
            previous = found
        self.refusals.truncate(path, f"{what} pages", 1)
        return rows

    def _by_id(
        self, items: list[Any], endpoint: str, what: str, key: str = "id"
    ) -> dict[str, Mapping[str, Any]]:
        """Return a list's objects by id, once each, at most MAX_SITES."""
        found: dict[str, Mapping[str, Any]] = {}
        for item in items:
            try:
                item = parse.mapping(item, what)
                ident = parse.identifier(item.get(key), f"{what} {key}")
            except parse.ValueRefused as err:
                self.refusals.add(endpoint, err)
                continue
            if ident in found:
                self.refusals.add(endpoint, f"{what} listed twice")
                continue
            found[ident] = item
        if len(found) > MAX_SITES:
            self.refusals.truncate(endpoint, f"{what}s", len(found) - MAX_SITES)
            return dict(list(found.items())[:MAX_SITES])
        return found

    async def _app_state(self) -> dict[str, Mapping[str, Any]]:
        """Return the user's premises (with their meter lists) by id."""
        payload = await self._call("/app/state")
        return self._by_id(
            _objects(payload, "premise_list", "state"), "/app/state", "premise"
        )

    async def _app_sites(self) -> list[Site]:
        return self._sites(await self._app_state(), "/app/state")

    def _sites(self, raw: Mapping[str, Mapping[str, Any]], endpoint: str) -> list[Site]:
        sites: list[Site] = []
        for item in raw.values():
            try:
                sites.append(_site(item))
            except parse.ValueRefused as err:
                self.refusals.add(endpoint, err)
        return sites

    async def _enterprise_premises(self) -> dict[str, Mapping[str, Any]]:
        path = f"/partner/{self._eid}/premise"
        return self._by_id(await self._paged(path, "premise"), "/premise", "premise")

    @override
    async def _list_sites(self) -> list[Site]:
        """List the premises (one request, or one per 1,000 premises)."""
        if self.enterprise:
            return self._sites(await self._enterprise_premises(), "/premise")
        return await self._app_sites()

    def _meter(self, raw: Any, premise_id: str | None, endpoint: str) -> _Meter | None:
        """Read one meter of a listing; None (counted) when unusable."""
        try:
            raw = parse.mapping(raw, "meter")
            meter_id = parse.identifier(raw.get("id"), "meter id")
            premise = premise_id or parse.identifier(
                raw.get("premise_id"), "meter premise_id"
            )
            meter_type = parse.text(raw.get("type"))
            kind = meter_kind(meter_type, parse.text(raw.get("uom")))
        except parse.ValueRefused as err:
            self.refusals.add(endpoint, err)
            return None
        if kind is None:
            self.refusals.add(endpoint, "a meter of unknown type")
            return None
        return _Meter(meter_id, premise, meter_type or kind, kind)

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        """Describe the chosen premises: their meters (and gateways, enterprise)."""
        if self.enterprise:
            return await self._discover_enterprise(site_ids)
        raw = await self._app_state()
        sites = [s for s in self._sites(raw, "/app/state") if s.id in site_ids]
        meters: list[_Meter] = []
        for site in sites:
            listed = raw[site.id].get("meter_list")
            meters.extend(
                meter
                for item in (listed if isinstance(listed, list) else [])
                if (meter := self._meter(item, site.id, "/app/state")) is not None
            )
        return self._inventory(
            self._app_account(self._sites(raw, "/app/state")),
            sites,
            list(raw),
            meters,
            [],
        )

    async def _discover_enterprise(self, site_ids: Sequence[str]) -> Inventory:
        raw = await self._enterprise_premises()
        sites = [s for s in self._sites(raw, "/premise") if s.id in site_ids]
        chosen = {site.id for site in sites}
        meters: list[_Meter] = []
        if chosen:
            for item in await self._paged(f"/partner/{self._eid}/meter", "meter"):
                meter = self._meter(item, None, "/meter")
                if meter is not None and meter.premise_id in chosen:
                    meters.append(meter)
        gateways: list[tuple[str, Mapping[str, Any]]] = []
        if chosen:
            for gateway_id, item in self._by_id(
                await self._paged(f"/partner/{self._eid}/gateway", "gateway"),
                "/gateway",
                "gateway",
            ).items():
                premise = parse.text(item.get("premise_id"))
                if premise in chosen:
                    gateways.append((gateway_id, item))
        eid = str(self.credentials[CONF_ENTERPRISE_ID]).strip()
        account = Account(id=f"enterprise:{eid}", name=f"Enterprise {eid}")
        return self._inventory(account, sites, list(raw), meters, gateways)

    def _inventory(
        self,
        account: Account,
        sites: list[Site],
        listed: list[str],
        meters: list[_Meter],
        gateways: list[tuple[str, Mapping[str, Any]]],
    ) -> Inventory:
        """Build the inventory: a device per meter and per gateway, their channels."""
        devices: list[Device] = []
        channels: list[Channel] = []
        per_site: dict[str, int] = {}
        seen: set[str] = set()
        for meter in meters:
            if meter.id in seen:
                self.refusals.add("meters", "meter listed twice")
                continue
            if per_site.get(meter.premise_id, 0) >= MAX_DEVICES:
                self.refusals.truncate("meters", "meters", 1)
                continue
            seen.add(meter.id)
            per_site[meter.premise_id] = per_site.get(meter.premise_id, 0) + 1
            devices.append(
                Device(
                    id=meter.device_id,
                    site_id=meter.premise_id,
                    name=f"{meter.kind.capitalize()} meter {meter.id}",
                    model=_MODELS.get(meter.type)
                    or f"{meter.type.replace('_', ' ').capitalize()} meter",
                    serial_number=meter.id,
                    kind=meter.type,
                )
            )
            channels.extend(self._meter_channels(meter))
        for gateway_id, raw in gateways:
            premise_id = str(raw.get("premise_id"))
            device = Device(
                id=f"gateway_{gateway_id}",
                site_id=premise_id,
                name=f"Gateway {gateway_id}",
                manufacturer="Copper Labs",
                model=parse.text(raw.get("model")),
                serial_number=gateway_id,
                kind="gateway",
            )
            devices.append(device)
            channels.extend(_grid_channels(premise_id, gateway_id, device))
        return Inventory(
            account=account,
            sites=tuple(sites),
            channels=tuple(channels),
            listed=tuple(listed),
            devices=tuple(devices),
        )

    def _meter_channels(self, meter: _Meter) -> list[Channel]:
        """Describe a meter's register, its rate (power or flow) and its last hour."""
        kind = _KINDS[meter.kind]
        base = f"{meter.premise_id}:{meter.id}"
        name = f"{meter.kind.capitalize()} meter {meter.id}"
        role = _ROLES.get(meter.type, Role.CONSUMPTION)
        common = {
            "site_id": meter.premise_id,
            "source": name,
            "source_id": meter.id,
            "device_id": meter.device_id,
            "attributes": {"meter_type": meter.type},
        }
        register_ref = (
            ("bulk", meter.premise_id, meter.id, meter.kind)
            if self.enterprise
            else ("usage", meter.premise_id, meter.id, meter.kind, "register")
        )
        rate_ref = (
            ("usage", meter.premise_id, meter.id, meter.kind, "rate")
            if self.enterprise
            else ("instant", meter.premise_id, meter.id, meter.kind)
        )
        return [
            Channel(
                key=f"{base}:register",
                name=f"{name} register",
                label=kind.register_label,
                quantity=kind.quantity,
                kind=Kind.REGISTER,
                unit=kind.unit,
                role=role,
                ref=register_ref,
                **common,  # type: ignore[arg-type]
            ),
            Channel(
                key=f"{base}:rate",
                name=f"{name} {kind.rate_name}",
                label=kind.rate_label,
                quantity=kind.rate_quantity,
                kind=Kind.INSTANT,
                unit=kind.rate_unit,
                role=role,
                ref=rate_ref,
                **common,  # type: ignore[arg-type]
            ),
            Channel(
                key=f"{base}:hour",
                # The statistic's name: it holds every hour, not the last one.
                name=f"{name} {'production' if role is Role.PRODUCTION else 'usage'}",
                label=kind.interval_label,
                quantity=kind.quantity,
                kind=Kind.INTERVAL,
                unit=kind.unit,
                role=role,
                history=True,
                statistic=f"{meter.premise_id}_{meter.id}_{kind.quantity.value}",
                ref=("usage", meter.premise_id, meter.id, meter.kind, "hour"),
                **common,  # type: ignore[arg-type]
            ),
        ]

    # Latest values ------------------------------------------------------------------

    @staticmethod
    def _groups(channels: Sequence[Channel]) -> dict[tuple[str, ...], list[Channel]]:
        """Group channels by the request that reads them."""
        groups: dict[tuple[str, ...], list[Channel]] = {}
        for channel in channels:
            match channel.ref[0]:
                case "instant" | "usage":
                    group = (
                        channel.ref[:2]
                        if channel.ref[0] == "instant"
                        else channel.ref[:3]
                    )
                case _:
                    group = channel.ref[:1]
            groups.setdefault(group, []).append(channel)
        return groups

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        """One request per premise (instant), per bulk page, for the grid.

        A meter's usage channels (its last hour; the app's register; the enterprise
        rate) cost nothing: they come from the meter's newest usage rows, which its
        history import reads (one request per meter serves both).
        """
        cost = 0
        for group, members in self._groups(channels).items():
            if group[0] == "bulk":
                cost += max(1, math.ceil(len(members) / BULK_PAGE))
            elif group[0] != "usage":
                cost += 1
        return cost

    @override
    def memory(self) -> dict[str, Any]:
        """Keep each meter's newest usage rows and last register across a restart.

        Its register, last hour and rate come from those rows: without them the
        sensors would be unknown until the meter's next history read (hours away
        for a large account).
        """
        return {
            "recent": {meter: list(rows) for meter, rows in self._recent.items()},
            "registers": {
                meter: [kept.time.isoformat(), kept.value]
                for meter, kept in self._registers.items()
            },
        }

    @override
    def recall(self, memory: Mapping[str, Any]) -> None:
        """Take back the rows and registers kept before the restart.

        The rows are parsed where they are used, as an answer's are.
        """
        recent = memory.get("recent")
        if isinstance(recent, Mapping):
            for meter, rows in list(recent.items())[:MAX_CHANNELS]:
                if isinstance(rows, list):
                    kept: list[Mapping[str, Any]] = [
                        row for row in rows[:RECALLED_ROWS] if isinstance(row, dict)
                    ]
                    self._recent.setdefault(str(meter), kept)
        registers = memory.get("registers")
        if isinstance(registers, Mapping):
            for meter, pair in list(registers.items())[:MAX_CHANNELS]:
                try:
                    at, value = pair
                    kept_register = _Register(
                        parse.timestamp(at, "kept register time"),
                        parse.number(value, "kept register"),
                    )
                except TypeError, ValueError, parse.ValueRefused:
                    continue
                self._registers.setdefault(str(meter), kept_register)

    @override
    def listing_cost(self, site_ids: Sequence[str]) -> int:
        """Count the app's state, or an enterprise's premise, meter, gateway pages.

        One each per 1,000 rows, and an empty page after a full one.
        """
        if not self.enterprise:
            return 1
        return 3 * (1 + len(site_ids) // PAGE_LIMIT)

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        """Read each group's request once; a premise or meter not found is gone."""
        readings: dict[str, Reading] = {}
        gone: set[str] = set()
        for group, members in self._groups(channels).items():
            try:
                match group[0]:
                    case "instant":
                        readings.update(await self._instant(group[1], members))
                    case "usage":
                        readings.update(self._recent_usage(members))
                    case "bulk":
                        readings.update(await self._bulk(members))
                    case "grid":
                        readings.update(await self._grid(members))
                    case _:
                        continue
            except RequestRejected as err:
                if err.status not in (404, 410):
                    raise
                gone.update(channel.key for channel in members)
        return Latest(readings=readings, gone=frozenset(gone))

    async def _instant(
        self, premise_id: str, members: Sequence[Channel]
    ) -> dict[str, Reading]:
        """Read a premise's instant power and flow rates (Copper app)."""
        payload = await self._call(f"/app/instant/{quote_id(premise_id)}")
        by_meter: dict[str, Reading] = {}
        for item in _objects(payload, "results", "instant"):
            try:
                item = parse.mapping(item, "instant result")
                meter_id = parse.identifier(item.get("id"), "instant id")
                rate = parse.optional_number(item.get("instant_power"), "instant_power")
                if rate is None:
                    continue
                at = item.get("updated_at")
                moment = None if at is None else _time(at, "instant updated_at")
            except parse.ValueRefused as err:
                self.refusals.add("/app/instant", err)
                continue
            by_meter[meter_id] = Reading(value=rate, time=moment)
        found: dict[str, Reading] = {}
        for channel in members:
            if (reading := by_meter.get(channel.ref[2])) is not None:
                kind: MeterKind = channel.ref[3]  # type: ignore[assignment]
                found[channel.key] = Reading(
                    value=convert(float(reading.value), kind), time=reading.time
                )
        return found

    def _usage_path(self, meter_id: str) -> str:
        if self.enterprise:
            return f"/partner/{self._eid}/meter/{quote_id(meter_id)}/usage"
        return f"/app/usage/{quote_id(meter_id)}"

    async def _usage_rows(
        self, meter_id: str, start: datetime, end: datetime
    ) -> list[Mapping[str, Any]]:
        """Ask a meter's hourly usage rows in [start, end] (both ends)."""
        payload = await self._call(
            self._usage_path(meter_id),
            {"start": _iso(start), "end": _iso(end), "granularity": "hour"},
        )
        endpoint = "/usage"
        rows: list[Mapping[str, Any]] = []
        for item in _objects(payload, "results", "usage"):
            if isinstance(item, dict):
                rows.append(item)
            else:
                self.refusals.add(endpoint, "a row that is no object")
        return rows

    def _recent_usage(self, members: Sequence[Channel]) -> dict[str, Reading]:
        """Read a meter's register, rate and last hour from its newest usage rows."""
        meter_id = members[0].ref[2]
        kind: MeterKind = members[0].ref[3]  # type: ignore[assignment]
        parsed: list[tuple[datetime, Mapping[str, Any]]] = []
        for row in self._recent.get(meter_id, ()):
            try:
                parsed.append((_time(row.get("time"), "usage time"), row))
            except parse.ValueRefused:
                continue  # counted when the history read it
        parsed.sort(key=lambda pair: pair[0])
        checked = _checked_registers(parsed)
        found: dict[str, Reading] = {}
        for channel in members:
            field = channel.ref[4]
            for at, row in reversed(parsed):
                if field == "register" and checked is not None and at not in checked:
                    if row.get("value") is not None:
                        self.refusals.add(
                            "/usage", "a register jump the usage does not show"
                        )
                    continue
                try:
                    reading = self._usage_reading(meter_id, kind, field, at, row)
                except parse.ValueRefused as err:
                    self.refusals.add("/usage", err)
                    continue
                if reading is not None:
                    found[channel.key] = reading
                    break
        return found

    def _usage_reading(
        self,
        meter_id: str,
        kind: MeterKind,
        field: str,
        at: datetime,
        row: Mapping[str, Any],
    ) -> Reading | None:
        """Return one field of a usage row as a reading (None: null there)."""
        start, end = _bucket(at)
        if field == "hour":
            used = row.get("usage")
            if used is None:
                return None
            value = parse.amount(used, "usage usage")
            return Reading(value=convert(value, kind), time=end, start=start)
        if field == "rate":
            power = parse.optional_number(row.get("power"), "usage power")
            return None if power is None else Reading(convert(power, kind), time=end)
        register = parse.optional_number(row.get("value"), "usage value")
        if register is None or not self._plausible(
            meter_id, kind, at, register, "/usage"
        ):
            return None
        return Reading(value=convert(register, kind), time=at)

    def _has_reference(self, meter_id: str) -> bool:
        """Tell whether a register of the meter is known to measure others against.

        The last one accepted, else the newest its usage rows vouch for: a first
        register taken on trust could be one Copper serves x100 (then every true
        one after it would look like a fall). Rows that vouch for none (their usage
        is null) leave the next register to be trusted; no rows yet: wait for them.
        """
        if meter_id in self._registers:
            return True
        if not (rows := self._recent.get(meter_id)):
            return False
        parsed = sorted((at, row) for row in rows if (at := _row_time(row)) is not None)
        checked = _checked_registers(parsed)
        if checked is None:
            return True
        for at, row in reversed(parsed):
            if at in checked:
                value = parse.optional_number(row.get("value"), "usage value")
                if value is not None:
                    self._registers[meter_id] = _Register(at, value)
                    return True
        return False

    def _plausible(
        self, meter_id: str, kind: MeterKind, at: datetime, value: float, endpoint: str
    ) -> bool:
        """Accept a register unless it rose faster than any meter can.

        Measured against the last one accepted. A refused one is counted (logged
        once per call) and never used; a register that falls (a meter reset or
        replaced) is accepted. One older than the last accepted is not used either:
        shown after it, the register would go back (a reading before a refused one).
        """
        last = self._registers.get(meter_id)
        if last is not None and at < last.time:
            return False
        if last is not None:
            hours = max(0.0, (at - last.time).total_seconds() / 3600)
            if value - last.value > MAX_RATE[kind] * hours + REGISTER_SLACK:
                self.refusals.add(endpoint, "a register jump no meter can make")
                return False
        if last is None or at >= last.time:
            self._registers[meter_id] = _Register(at, value)
        return True

    async def _bulk(self, members: Sequence[Channel]) -> dict[str, Reading]:
        """Walk the bulk pages (linked by `next`): each meter's newest register."""
        by_meter: dict[str, Reading] = {}
        kinds = {channel.ref[2]: channel.ref[3] for channel in members}
        path: str | None = f"/partner/{self._eid}/bulk"
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if path is None:
                break
            seen.add(path)
            payload = await self._call(path)
            for item in _objects(payload, "results", "bulk"):
                try:
                    item = parse.mapping(item, "bulk result")
                    meter_id = parse.identifier(item.get("meter_id"), "bulk meter_id")
                    if meter_id not in kinds:
                        continue
                    value = parse.optional_number(item.get("value"), "bulk value")
                    if value is None:
                        continue
                    at = _time(item.get("timestamp"), "bulk timestamp")
                except parse.ValueRefused as err:
                    self.refusals.add("/bulk", err)
                    continue
                kind: MeterKind = kinds[meter_id]  # type: ignore[assignment]
                if not self._has_reference(meter_id):
                    continue  # until the meter's history read vouches for one
                if self._plausible(meter_id, kind, at, value, "/bulk"):
                    by_meter[meter_id] = Reading(value=convert(value, kind), time=at)
            path = self._next(payload, seen)
        else:
            self.refusals.truncate("/bulk", "bulk pages", 1)
        return {
            channel.key: by_meter[channel.ref[2]]
            for channel in members
            if channel.ref[2] in by_meter
        }

    def _next(self, payload: Any, seen: set[str]) -> str | None:
        """Return the next bulk page's address (same server only), else None."""
        link = payload.get("next") if isinstance(payload, dict) else None
        if link is None or link == "":
            return None
        if not isinstance(link, str) or len(link) > 2048:
            raise InvalidResponse("Copper bulk's next link is no address")
        if link.startswith("/"):
            link = f"{self._api.origin()}{link}"
        try:
            target = URL(link, encoded=True)
            # The token goes with the request: never to another server.
            same = target.absolute and target.origin() == self._api.origin()
        except ValueError:
            same = False
        if not same:
            raise InvalidResponse("Copper bulk's next link leads to another server")
        if link in seen:
            self.refusals.add("/bulk", "a next link seen before")
            return None
        return link

    async def _grid(self, members: Sequence[Channel]) -> dict[str, Reading]:
        """Read every gateway's latest voltage and frequency (enterprise)."""
        payload = await self._call(f"/partner/{self._eid}/grid/latest")
        by_gateway: dict[str, Mapping[str, Any]] = {}
        for item in _objects(payload, None, "grid latest"):
            try:
                item = parse.mapping(item, "grid reading")
                gateway = parse.identifier(item.get("gateway_id"), "grid gateway_id")
            except parse.ValueRefused as err:
                self.refusals.add("/grid/latest", err)
                continue
            by_gateway[gateway] = item
        found: dict[str, Reading] = {}
        for channel in members:
            item = by_gateway.get(channel.ref[2])
            if item is None:
                continue
            try:
                value = parse.optional_number(item.get(channel.ref[3]), "grid value")
                at = item.get("hw_timestamp")
                moment = None if at is None else _time(at, "grid hw_timestamp")
            except parse.ValueRefused as err:
                self.refusals.add("/grid/latest", err)
                continue
            if value is not None:
                found[channel.key] = Reading(value=value, time=moment)
        return found

    # History ------------------------------------------------------------------------

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield hourly usage, as long a window per request as the cloud accepts."""
        meter_id = channel.ref[2]
        kind: MeterKind = channel.ref[3]  # type: ignore[assignment]
        cursor = _hour_ceil(start)
        stop = _hour_ceil(end)
        while cursor < stop:
            window_end = min(stop, cursor + self._window)
            try:
                rows = await self._usage_rows(meter_id, cursor, window_end)
            except RequestRejected as err:
                # Too many rows for the cloud: ask shorter windows from now on.
                if err.status != 400 or self._window <= MIN_WINDOW:
                    raise
                self._window = max(MIN_WINDOW, self._window / 2)
                continue
            if window_end >= stop:
                self._remember(meter_id, rows)
            yield self._intervals(rows, kind, cursor, min(window_end, end))
            cursor = window_end

    def _remember(self, meter_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Keep a meter's newest rows for its latest values, unless older ones."""
        found = _newest(rows)
        kept = _newest(self._recent.get(meter_id, ()))
        if found is None or (kept is not None and kept > found):
            return
        cut = found - RECENT
        self._recent[meter_id] = [
            row for row in rows if (at := _row_time(row)) is not None and at >= cut
        ]

    def _intervals(
        self,
        rows: Sequence[Mapping[str, Any]],
        kind: MeterKind,
        first: datetime,
        last: datetime,
    ) -> list[Interval]:
        """Return the hours starting in [first, last): null ones absent, boundary once."""
        by_start: dict[datetime, Interval] = {}
        for row in rows:
            try:
                at = _time(row.get("time"), "usage time")
                used = row.get("usage")
                if used is None:
                    continue  # not known (yet): absent, never 0
                value = parse.amount(used, "usage usage")
            except parse.ValueRefused as err:
                self.refusals.add("/usage", err)
                continue
            low, high = _bucket(at)
            if first <= low < last:
                by_start[low] = Interval(low, high, convert(value, kind))
        return [by_start[key] for key in sorted(by_start)]


def _checked_registers(
    rows: Sequence[tuple[datetime, Mapping[str, Any]]],
) -> set[datetime] | None:
    """Return the times whose register agrees with the hour's usage beside it.

    Copper's known glitch multiplies the register (`value`) by 100 while `usage`
    stays true: two registers an hour apart must differ by the usage of the hour
    between them. A register in such an agreeing pair is checked; with no pair to
    check (null usage) None: the registers can only be trusted as they come.
    """
    checked: set[datetime] = set()
    checkable = False
    for (first, older), (second, newer) in itertools.pairwise(rows):
        if second - first != HOUR:
            continue
        try:
            low = parse.optional_number(older.get("value"), "usage value")
            high = parse.optional_number(newer.get("value"), "usage value")
            between = (newer if USAGE_LABEL == "end" else older).get("usage")
            amount = None if between is None else parse.amount(between, "usage usage")
        except parse.ValueRefused:
            continue  # counted where the row is read
        if low is None or high is None or amount is None:
            continue
        checkable = True
        if abs(high - low - amount) <= 0.001 + 0.02 * abs(amount):
            checked.update((first, second))
    return checked if checkable else None


def _row_time(row: Mapping[str, Any]) -> datetime | None:
    """Return a usage row's time; None for a broken one (refused where it is read)."""
    try:
        return _time(row.get("time"), "usage time")
    except parse.ValueRefused:
        return None


def _newest(rows: Sequence[Mapping[str, Any]]) -> datetime | None:
    """Return the newest time of usage rows (None: none readable)."""
    return max(filter(None, map(_row_time, rows)), default=None)


def _grid_channels(premise_id: str, gateway_id: str, device: Device) -> list[Channel]:
    """Describe a gateway's grid voltage and frequency (diagnostics, rarely wanted)."""
    return [
        Channel(
            key=f"{premise_id}:gateway:{gateway_id}:{field}",
            site_id=premise_id,
            name=f"{device.name} {title}",
            label=label,
            quantity=quantity,
            kind=Kind.INSTANT,
            unit=unit,
            source=device.name,
            source_id=gateway_id,
            common=False,
            device_id=device.id,
            diagnostic=True,
            ref=("grid", premise_id, gateway_id, field),
        )
        for field, title, label, quantity, unit in (
            (
                "voltage",
                "grid voltage",
                Label.VOLTAGE_LINE,
                Quantity.VOLTAGE,
                Unit.VOLT,
            ),
            (
                "frequency",
                "grid frequency",
                Label.FREQUENCY,
                Quantity.FREQUENCY,
                Unit.HERTZ,
            ),
        )
    ]
