"""Tests of the cloud simulator itself (tests/simulator), Locus Energy part.

The integration's tests trust the simulator's ground truth, so the simulator
must first be shown to follow the Locus Energy API v3 document: the OAuth
grants, "one request at a time", the hierarchy, dataavailable, data windows,
interval-start timestamps across DST, omitted fields, alerts, faults and the
request log.
"""

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import json
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
import pytest_socket

from tests.simulator import Simulator
from tests.simulator.__main__ import parse_args
from tests.simulator.clock import FakeClock
from tests.simulator.locus import (
    CC_CLIENT_ID,
    CC_CLIENT_SECRET,
    CEDAR_SITE_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PARTNER_ID,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    EPOCH,
    HARBOR_SITE_ID,
    MAPLE_ARRAY_GROUP_ID,
    MAPLE_INVERTER_ID,
    MAPLE_NET_METER_ID,
    MAPLE_PV_METER_ID,
    MAPLE_SITE_ID,
    MAPLE_WEATHER_ID,
    OTHER_PARTNER_ID,
    RIVERSIDE_METER_ID,
    RIVERSIDE_SITE_ID,
    SONORAN_INVERTER_ID,
)
from tests.simulator.process import ROOT

pytestmark = pytest.mark.usefixtures("socket_enabled")

NOW = datetime(2026, 11, 3, 12, 7, 30, tzinfo=UTC)  # two days after the US DST end
DEMO_ACCOUNT = f"{DEMO_CLIENT_ID}:{DEMO_USERNAME}"
MODEL = {
    "modelType": "simple",
    "irradianceSource": "weatherStation",
    "inverterClipping": "false",
}
TOO_MANY = {"message": "Too many requests", "statusCode": 429}


@dataclass(frozen=True)
class Reply:
    """What the simulator answered."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Api:
    """A tiny Locus client for the tests: raw requests, no validation."""

    session: aiohttp.ClientSession
    base: str
    token_url: str
    token: str | None = None
    refresh: str | None = None
    replies: list[Reply] = field(default_factory=list)

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """GET an API path with the bearer token (if any) and parse the answer."""
        sent = dict(headers or {})
        if (bearer := token or self.token) is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        async with self.session.get(
            f"{self.base}{path}", params=params, headers=sent
        ) as response:
            return await _reply(response)

    async def grant(self, form: dict[str, str], *, as_json: bool = False) -> Reply:
        """POST the token endpoint (form-encoded unless ``as_json``)."""
        kwargs: dict[str, Any] = {"json": form} if as_json else {"data": form}
        async with self.session.post(self.token_url, **kwargs) as response:
            return await _reply(response)

    async def login(
        self,
        username: str = DEMO_USERNAME,
        password: str = DEMO_PASSWORD,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
    ) -> Reply:
        """Use the password grant and keep the tokens."""
        reply = await self.grant(
            {
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": client_secret,
                "username": username,
                "password": password,
            }
        )
        if reply.status == 200:
            self.token = reply.body["access_token"]
            self.refresh = reply.body["refresh_token"]
        return reply

    async def refresh_grant(self, refresh: str | None = None) -> Reply:
        """Use the refresh_token grant."""
        return await self.grant(
            {
                "grant_type": "refresh_token",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "refresh_token": refresh or self.refresh or "",
            }
        )

    async def data(
        self,
        path: str,
        fields: str,
        start: str | None,
        end: str | None,
        gran: str = "15min",
        tz: str = "UTC",
        **extra: str,
    ) -> Reply:
        """GET a data endpoint."""
        params = {"fields": fields, "gran": gran, "tz": tz, **extra}
        if start is not None:
            params["start"] = start
        if end is not None:
            params["end"] = end
        return await self.get(path, params)


async def _reply(response: aiohttp.ClientResponse) -> Reply:
    """Read and parse an answer."""
    text = await response.text()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return Reply(response.status, body, dict(response.headers))


@pytest.fixture(autouse=True)
def allow_loopback() -> None:
    """Let the tests reach the simulator on the loopback interface only."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)


@pytest.fixture
def clock() -> FakeClock:
    """Time frozen two days after the autumn DST change of 2026 in the US."""
    return FakeClock(NOW)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    """Run a simulator with the documented defaults (one request at a time)."""
    simulator = Simulator(now=clock)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    """Return an unauthenticated client of the simulated Locus API."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim.url("locus"), f"{sim.base_url}/oauth/token")


@pytest.fixture
async def authed(api: Api) -> Api:
    """Return a client logged in as the demo user."""
    assert (await api.login()).status == 200
    return api


def utc(ts: str) -> datetime:
    """Convert a response timestamp to aware UTC."""
    return datetime.fromisoformat(ts).astimezone(UTC)


def exact_sum(values: Iterable[float]) -> float:
    """Sum published decimals exactly, as the ground truth does."""
    return float(sum((Decimal(repr(value)) for value in values), Decimal(0)))


def hourly_sums(points: list[dict[str, Any]], key: str) -> dict[datetime, float]:
    """Sum 15-minute points per UTC hour of their start (ts), skipping empty points."""
    hours: dict[datetime, list[float]] = {}
    for point in points:
        if key in point:
            start = utc(point["ts"])
            hours.setdefault(start.replace(minute=0), []).append(point[key])
    return {hour: exact_sum(values) for hour, values in hours.items()}


def day(index: int) -> datetime:
    """Return the UTC start of day ``index`` since the data epoch."""
    return EPOCH + timedelta(days=index)


# --------------------------------------------------------------------------- OAuth


async def test_password_grant_answers_the_documented_object(
    sim: Simulator, api: Api
) -> None:
    """The password grant answers access and refresh token, bearer, 3600 s."""
    assert api.base == f"{sim.base_url}/locus/v3" == sim.url("locus")
    reply = await api.login()
    assert reply.status == 200
    assert list(reply.body) == [
        "access_token",
        "issued_at",
        "token_type",
        "refresh_token",
        "expires_in",
    ]
    assert reply.body["issued_at"] == int(NOW.timestamp())
    assert reply.body["token_type"] == "bearer"
    assert reply.body["expires_in"] == 3600
    for key in ("access_token", "refresh_token"):
        int(reply.body[key], 16)
        assert len(reply.body[key]) == 32
    assert (await api.get(f"/partners/{DEMO_PARTNER_ID}/sites")).status == 200
    token_log = sim.log_for("locus")[0]
    assert (token_log.path, token_log.account) == ("/oauth/token", DEMO_ACCOUNT)


async def test_refresh_without_rotation_keeps_the_refresh_token(
    clock: FakeClock, authed: Api
) -> None:
    """A refresh answers no refresh_token, exactly as the document's example."""
    first_access, refresh = authed.token, authed.refresh
    clock.advance(timedelta(minutes=50))
    reply = await authed.refresh_grant()
    assert reply.status == 200
    assert list(reply.body) == ["access_token", "issued_at", "token_type", "expires_in"]
    assert reply.body["access_token"] != first_access
    assert reply.body["issued_at"] == int(clock().timestamp())
    assert (await authed.refresh_grant(refresh)).status == 200
    new = reply.body["access_token"]
    assert (await authed.get(f"/sites/{MAPLE_SITE_ID}", token=new)).status == 200
    assert (
        await authed.get(f"/sites/{MAPLE_SITE_ID}", token=first_access)
    ).status == 200


async def test_refresh_with_rotation_retires_the_old_token(
    sim: Simulator, authed: Api
) -> None:
    """With rotation a refresh answers a new refresh token; the old one stops working."""
    sim.locus.rotate_refresh_tokens = True
    old = authed.refresh
    reply = await authed.refresh_grant()
    assert reply.status == 200
    assert reply.body["refresh_token"] not in (None, old)
    refused = await authed.refresh_grant(old)
    assert (refused.status, refused.body) == (400, {"error": "invalid_grant"})
    assert (await authed.refresh_grant(reply.body["refresh_token"])).status == 200


async def test_refuse_refresh_and_refresh_lifetime(
    sim: Simulator, clock: FakeClock, authed: Api
) -> None:
    """refuse_refresh answers invalid_grant until allowed; refresh tokens can expire."""
    sim.locus.refuse_refresh()
    reply = await authed.refresh_grant()
    assert (reply.status, reply.body) == (400, {"error": "invalid_grant"})
    sim.locus.allow_refresh()
    assert (await authed.refresh_grant()).status == 200

    sim.locus.refresh_lifetime = timedelta(days=1)
    await authed.login()
    clock.advance(timedelta(hours=23, minutes=59))
    assert (await authed.refresh_grant()).status == 200
    clock.advance(timedelta(minutes=1))
    assert (await authed.refresh_grant()).status == 400


async def test_client_credentials_grant(api: Api) -> None:
    """The client-credentials answer has no refresh token and no token_type."""
    reply = await api.grant(
        {
            "grant_type": "client_credentials",
            "client_id": CC_CLIENT_ID,
            "client_secret": CC_CLIENT_SECRET,
        }
    )
    assert reply.status == 200
    assert list(reply.body) == ["access_token", "issued_at", "expires_in"]
    assert reply.body["expires_in"] == 3600
    api.token = reply.body["access_token"]
    sites = await api.get(f"/partners/{DEMO_PARTNER_ID}/sites")
    assert len(sites.body["sites"]) == 6
    forbidden = await api.get(f"/partners/{OTHER_PARTNER_ID}/sites")
    assert forbidden.status == 403
    assert forbidden.body["statusCode"] == 403
    assert (await api.get(f"/sites/{CEDAR_SITE_ID}")).status == 403

    # Each client is confined to its grants.
    wrong = await api.login(client_id=CC_CLIENT_ID, client_secret=CC_CLIENT_SECRET)
    assert (wrong.status, wrong.body) == (400, {"error": "unauthorized_client"})
    wrong = await api.grant(
        {
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        }
    )
    assert (wrong.status, wrong.body) == (400, {"error": "unauthorized_client"})


async def test_grant_errors(api: Api) -> None:
    """Bad clients 401 invalid_client, bad users 401 invalid_grant, bad forms 400."""
    reply = await api.login(client_secret="nope")
    assert (reply.status, reply.body) == (401, {"error": "invalid_client"})
    reply = await api.login(client_id="stranger")
    assert (reply.status, reply.body) == (401, {"error": "invalid_client"})
    reply = await api.login(password="wrong")
    assert (reply.status, reply.body) == (401, {"error": "invalid_grant"})
    reply = await api.login(username="nobody@example.com")
    assert (reply.status, reply.body) == (401, {"error": "invalid_grant"})
    reply = await api.grant({"grant_type": "password", "client_id": DEMO_CLIENT_ID})
    assert (reply.status, reply.body) == (400, {"error": "invalid_request"})
    reply = await api.grant({"grant_type": "authorization_code"})
    assert (reply.status, reply.body) == (400, {"error": "unsupported_grant_type"})
    reply = await api.grant(
        {
            "grant_type": "password",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "username": DEMO_USERNAME,
            "password": DEMO_PASSWORD,
        },
        as_json=True,
    )
    assert reply.status == 400
    async with api.session.get(api.token_url) as response:
        assert response.status == 405


async def test_api_tokens_missing_unknown_expired(
    clock: FakeClock, authed: Api
) -> None:
    """API calls need a live bearer token: missing, unknown, expired are 401."""
    path = f"/sites/{MAPLE_SITE_ID}"
    reply = await authed.get(path, token="0" * 32)
    assert reply.status == 401
    assert reply.body["statusCode"] == 401
    async with authed.session.get(f"{authed.base}{path}") as response:
        assert response.status == 401
    clock.advance(timedelta(seconds=3599))
    assert (await authed.get(path)).status == 200
    clock.advance(timedelta(seconds=1))
    assert (await authed.get(path)).status == 401


async def test_revoke_user(sim: Simulator, authed: Api) -> None:
    """A revoked user loses its tokens, its refresh tokens and its password."""
    sim.locus.revoke_user(DEMO_USERNAME)
    assert (await authed.get(f"/sites/{MAPLE_SITE_ID}")).status == 401
    assert (await authed.refresh_grant()).status == 400
    reply = await authed.login()
    assert (reply.status, reply.body) == (401, {"error": "invalid_grant"})


# --------------------------------------------------------------------------- one request at a time


async def test_one_request_at_a_time_per_account(sim: Simulator, authed: Api) -> None:
    """A request overlapping another of its account gets the documented 429."""
    sim.locus.processing_delay = 0.3
    path = f"/sites/{MAPLE_SITE_ID}"
    replies = await asyncio.gather(authed.get(path), authed.get(path))
    assert sorted(r.status for r in replies) == [200, 429]
    refused = next(r for r in replies if r.status == 429)
    assert refused.body == TOO_MANY
    assert "Retry-After" not in refused.headers
    assert (await authed.get(path)).status == 200
    assert {r.account for r in sim.log_for("locus")} == {DEMO_ACCOUNT}

    sim.locus.retry_after = 1
    replies = await asyncio.gather(authed.get(path), authed.get(path))
    assert next(r for r in replies if r.status == 429).headers["Retry-After"] == "1"

    sim.locus.max_concurrency = 0
    replies = await asyncio.gather(authed.get(path), authed.get(path))
    assert [r.status for r in replies] == [200, 200]


async def test_two_accounts_run_concurrently(sim: Simulator, authed: Api) -> None:
    """Different accounts (another user, a client-credentials client) do not collide."""
    sim.locus.add_user("second@solar.example", "pw-2")
    async with aiohttp.ClientSession() as session:
        second = Api(session, authed.base, authed.token_url)
        assert (await second.login("second@solar.example", "pw-2")).status == 200
        third = Api(session, authed.base, authed.token_url)
        reply = await third.grant(
            {
                "grant_type": "client_credentials",
                "client_id": CC_CLIENT_ID,
                "client_secret": CC_CLIENT_SECRET,
            }
        )
        third.token = reply.body["access_token"]
        sim.locus.processing_delay = 0.2
        path = f"/sites/{MAPLE_SITE_ID}"
        replies = await asyncio.gather(
            authed.get(path), second.get(path), third.get(path)
        )
        assert [r.status for r in replies] == [200, 200, 200]
        assert (await second.get(f"/sites/{CEDAR_SITE_ID}")).status == 403
    accounts = {r.account for r in sim.log_for("locus")}
    assert accounts == {
        DEMO_ACCOUNT,
        f"{DEMO_CLIENT_ID}:second@solar.example",
        CC_CLIENT_ID,
    }


async def test_token_requests_count_towards_the_limit(
    sim: Simulator, authed: Api
) -> None:
    """A token request of the account overlapping an API call is refused too."""
    sim.locus.processing_delay = 0.3
    call = asyncio.create_task(authed.get(f"/sites/{MAPLE_SITE_ID}"))
    while DEMO_ACCOUNT not in sim.locus._active:  # the call holds the account's slot
        await asyncio.sleep(0.01)
    login = await authed.login()
    assert (login.status, login.body) == (429, TOO_MANY)
    assert (await call).status == 200
    assert sim.log_for("locus")[-1].path == "/sites/3393701"
    assert [r.status for r in sim.log_for("locus")][-2:] == [429, 200]


# --------------------------------------------------------------------------- hierarchy


async def test_partner_sites_and_component_hierarchy(
    sim: Simulator, authed: Api
) -> None:
    """Six sites, hundreds of components with integer ids, the documented shapes."""
    sites = (await authed.get(f"/partners/{DEMO_PARTNER_ID}/sites")).body
    assert sites["statusCode"] == 200
    assert len(sites["sites"]) == 6
    maple = sites["sites"][0]
    assert maple == {
        "statusCode": 200,
        "id": MAPLE_SITE_ID,
        "clientId": 419010,
        "name": "Maple Street Residence",
        "address1": "112 Maple Street",
        "address2": "",
        "locale3": "Ithaca",
        "locale1": "New York",
        "localeCode1": "NY",
        "postalCode": "14850",
        "countryCode": "US",
        "locationTimezone": "America/New_York",
    }
    assert [s["locationTimezone"] for s in sites["sites"]] == [
        "America/New_York",
        "America/Los_Angeles",
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
    ]
    components = (await authed.get(f"/partners/{DEMO_PARTNER_ID}/components")).body
    ids = [c["id"] for c in components["components"]]
    assert len(ids) == len(set(ids)) >= 250
    assert all(isinstance(i, int) for i in ids)
    for site in sites["sites"][2:]:
        listed = (await authed.get(f"/sites/{site['id']}/components")).body
        assert 50 <= len(listed["components"]) <= 80
    assert len(ids) == sum(
        len(sim.locus.components_of(s["id"])) for s in sites["sites"]
    )

    maple_components = {
        c["id"]: c
        for c in (await authed.get(f"/sites/{MAPLE_SITE_ID}/components")).body[
            "components"
        ]
    }
    meter = maple_components[MAPLE_PV_METER_ID]
    assert (meter["parentType"], meter["parentId"], meter["nodeType"]) == (
        "SITE",
        MAPLE_SITE_ID,
        "METER",
    )
    assert (meter["application"], meter["isConceptualNode"]) == ("GENERATION", False)
    group = maple_components[MAPLE_ARRAY_GROUP_ID]
    assert group["isConceptualNode"] is True
    assert (group["parentType"], group["parentId"]) == ("COMPONENT", MAPLE_PV_METER_ID)
    inverter = maple_components[MAPLE_INVERTER_ID]
    assert (inverter["parentType"], inverter["parentId"], inverter["nodeType"]) == (
        "COMPONENT",
        MAPLE_ARRAY_GROUP_ID,
        "INVERTER",
    )
    net = maple_components[MAPLE_NET_METER_ID]
    assert (net["application"], net["generationType"]) == ("NET-GRID", "NET-GRID")
    assert maple_components[MAPLE_WEATHER_ID]["nodeType"] == "WEATHER_STATION"
    single = (await authed.get(f"/components/{MAPLE_PV_METER_ID}")).body
    assert single == {"statusCode": 200, **meter}
    assert single["serialNumber"] == "LG120-0042187"

    node = inverter["nodeId"]
    found = await authed.get(
        f"/partners/{DEMO_PARTNER_ID}/components", {"nodeId": node}
    )
    assert [c["id"] for c in found.body["components"]] == [MAPLE_INVERTER_ID]
    wildcard = await authed.get(
        f"/partners/{DEMO_PARTNER_ID}/components", {"nodeId": node[:-2] + "%"}
    )
    assert MAPLE_INVERTER_ID in [c["id"] for c in wildcard.body["components"]]

    other = (await authed.get(f"/partners/{OTHER_PARTNER_ID}/sites")).body["sites"]
    assert [(s["id"], s["name"]) for s in other] == [
        (CEDAR_SITE_ID, "Cedar Lane Cottage")
    ]
    assert (
        len((await authed.get(f"/sites/{CEDAR_SITE_ID}/components")).body["components"])
        == 2
    )


async def test_clients_installinfo_modelsettings(authed: Api) -> None:
    """Clients, install info and model settings answer the documented shapes."""
    clients = (await authed.get(f"/partners/{DEMO_PARTNER_ID}/clients")).body
    assert [c["id"] for c in clients["clients"]] == [419010, 419011, 419020]
    client = (await authed.get("/clients/419020")).body
    assert set(client) == {
        "statusCode",
        "id",
        "partnerId",
        "tz",
        "firstName",
        "lastName",
        "email",
    }
    assert len((await authed.get("/clients/419020/sites")).body["sites"]) == 4
    assert len((await authed.get("/clients/419010/components")).body["components"]) == 5

    info = (await authed.get(f"/sites/{MAPLE_SITE_ID}/installinfo")).body
    assert info == {
        "statusCode": 200,
        "installer": "Finger Lakes Solar",
        "installDate": "2024-09-12",
        "ptoDate": "2024-10-03",
        "startupDate": "2024-10-03",
    }
    settings = (await authed.get(f"/sites/{MAPLE_SITE_ID}/modelsettings")).body
    assert settings["size"] == 9.12
    assert set(settings) == {
        "statusCode",
        "size",
        "mismatch",
        "diodesAndConnections",
        "dcWiring",
        "soiling",
        "sunTracking",
        "nameplate",
        "acWiring",
        "transformer",
        "tmy3Id",
    }
    cedar = (await authed.get(f"/sites/{CEDAR_SITE_ID}/modelsettings")).body
    assert "size" not in cedar
    assert "tmy3Id" not in cedar


async def test_unknown_and_forbidden_entities(sim: Simulator, authed: Api) -> None:
    """Unknown ids are 404, other partners' entities 403, both with statusCode."""
    for path in (
        "/sites/1",
        "/components/1/data",
        "/partners/1/sites",
        "/clients/1",
        "/sites/abc",
    ):
        reply = await authed.get(path)
        assert reply.status == 404, path
        assert reply.body["statusCode"] == 404
        assert "message" in reply.body
    sim.locus.add_user("solo@solar.example", "pw", (DEMO_PARTNER_ID,))
    await authed.login("solo@solar.example", "pw")
    for path in (
        f"/sites/{CEDAR_SITE_ID}",
        f"/partners/{OTHER_PARTNER_ID}/components",
        "/components/5494001/dataavailable",
        "/clients/519001",
    ):
        reply = await authed.get(path)
        assert (reply.status, reply.body["statusCode"]) == (403, 403), path


# --------------------------------------------------------------------------- dataavailable


def _fields(reply: Reply) -> dict[str, list[str]]:
    """Map baseField -> shortNames of a dataavailable answer."""
    return {
        f["baseField"]: [a["shortName"] for a in f.get("aggregations", [])]
        for f in reply.body["baseFields"]
    }


async def test_dataavailable_per_component_type(authed: Api) -> None:
    """Meters, inverters, net meters, weather stations and conceptual nodes differ."""
    conceptual = await authed.get(f"/components/{MAPLE_ARRAY_GROUP_ID}/dataavailable")
    assert conceptual.body == {"statusCode": 200, "baseFields": []}

    meter = await authed.get(f"/components/{MAPLE_PV_METER_ID}/dataavailable")
    assert set(_fields(meter)) == {
        "A", "Hz", "PF", "PPV", "PhV", "VA", "VAR", "W", "Wh", "WphA", "WphB", "WphC"
    }  # fmt: skip
    assert _fields(meter)["W"] == ["W_avg", "W_max", "W_min"]
    assert _fields(meter)["Wh"] == ["Wh_sum"]
    assert all("latest" in f["granularities"] for f in meter.body["baseFields"])
    assert meter.body["baseFields"][-4] == {
        "baseField": "Wh",
        "longName": "AC Energy",
        "source": "Measured",
        "unit": "Wh",
        "aggregations": [{"shortName": "Wh_sum", "aggregation": "sum"}],
        "granularities": [
            "latest", "1min", "5min", "15min", "hourly", "daily", "monthly", "yearly"
        ],
    }  # fmt: skip

    inverter = await authed.get(f"/components/{MAPLE_INVERTER_ID}/dataavailable")
    by_base = {f["baseField"]: f for f in inverter.body["baseFields"]}
    assert set(by_base) == {"A", "Hz", "PF", "PI_m", "PhV", "W", "W_m", "Wh", "Wh_m"}
    assert "aggregations" not in by_base["PI_m"]  # as in the document's example
    modeled = by_base["Wh_m"]
    assert modeled["source"] == "Modeled"
    assert "latest" not in modeled["granularities"]
    assert modeled["fieldParameters"] == [
        {"param": "modelType", "values": ["simple"]},
        {"param": "irradianceSource", "values": ["weatherStation"]},
        {"param": "inverterClipping", "values": ["true", "false"]},
    ]

    weather = await authed.get(f"/components/{MAPLE_WEATHER_ID}/dataavailable")
    assert _fields(weather) == {
        "POA": ["POA_avg", "POA_max", "POA_min"],
        "TmpAmb": ["TmpAmb_avg", "TmpAmb_max", "TmpAmb_min"],
    }
    net = await authed.get(f"/components/{MAPLE_NET_METER_ID}/dataavailable")
    assert _fields(net) == {"W": ["W_avg", "W_max", "W_min"], "Wh": ["Wh_sum"]}

    site = await authed.get(f"/sites/{MAPLE_SITE_ID}/dataavailable")
    assert list(_fields(site)) == ["GHI_m", "GHIh_m", "W", "W_m", "Wh", "Wh_e", "Wh_m"]
    site_by_base = {f["baseField"]: f for f in site.body["baseFields"]}
    assert site_by_base["W"]["aggregations"] == [
        {"shortName": "W_avg", "aggregation": "avg"},
        {"shortName": "W_max", "aggregation": "max"},
    ]
    assert site_by_base["Wh_e"]["granularities"] == ["daily", "monthly", "yearly"]
    assert site_by_base["GHI_m"]["unit"] == "W/m²"


# --------------------------------------------------------------------------- data


async def test_data_window_limits_and_validation(authed: Api) -> None:
    """Window limits per granularity, required parameters, fields and parameters."""
    inverter = f"/components/{MAPLE_INVERTER_ID}/data"
    site = f"/sites/{MAPLE_SITE_ID}/data"
    cases = [
        ("1min", "2026-10-20T00:00:00", "2026-10-25T00:00:00", 400),
        ("1min", "2026-10-20T00:00:00", "2026-10-20T06:00:00", 200),
        ("5min", "2026-10-01T00:00:00", "2026-11-01T00:00:00", 400),
        ("15min", "2026-10-01T00:00:00", "2026-11-01T00:00:00", 400),
        ("hourly", "2026-10-01T00:00:00", "2026-11-01T00:00:00", 400),
        ("hourly", "2026-10-02T00:00:00", "2026-11-01T00:00:00", 200),
        ("daily", "2025-06-01T00:00:00", "2026-06-01T00:00:00", 400),
        ("daily", "2025-06-01T00:00:00", "2026-05-31T00:00:00", 200),
        ("monthly", "2020-01-01T00:00:00", "2030-01-01T00:00:00", 200),
        ("15min", "2026-10-02T00:00:00", "2026-10-02T00:00:00", 400),
    ]
    for gran, start, end, status in cases:
        reply = await authed.data(inverter, "Wh_sum", start, end, gran)
        assert reply.status == status, (gran, start, end)
        if status == 400:
            assert reply.body["statusCode"] == 400
            assert reply.body["message"]

    started = time.monotonic()
    reply = await authed.data(
        f"/components/{SONORAN_INVERTER_ID}/data",
        "W_avg,Wh_sum,W_max",
        "2026-10-02T00:00:00",
        "2026-11-01T00:00:00",
    )
    assert reply.status == 200
    assert len(reply.body["data"]) == 30 * 96
    assert time.monotonic() - started < 1.0

    bad = [
        (inverter, {"fields": "Wh_sum", "gran": "15min", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "Wh_sum", "gran": "15min", "tz": "Mars/Olympus", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "Wh_sum", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00"}),
        (inverter, {"fields": "Wh_sum", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00+02:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "Wh_sum", "gran": "2min", "tz": "UTC", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "VA_avg", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "Wh_m_sum", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (inverter, {"fields": "Wh_m_sum", "gran": "latest", "tz": "UTC"} | MODEL),
        (site, {"fields": "Wh_sum", "gran": "latest", "tz": "UTC"}),
        (site, {"fields": "Wh_e_sum", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
        (f"/components/{MAPLE_ARRAY_GROUP_ID}/data", {"fields": "Wh_sum", "gran": "15min", "tz": "UTC", "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00"}),
    ]  # fmt: skip
    for path, params in bad:
        reply = await authed.get(path, params)
        assert reply.status == 400, params
        assert reply.body["statusCode"] == 400
    modeled = await authed.data(
        inverter,
        "Wh_m_sum,W_m_avg",
        "2026-10-01T12:00:00",
        "2026-10-01T13:00:00",
        **MODEL,
    )
    assert modeled.status == 200
    assert all(p["W_m_avg"] == p["Wh_m_sum"] * 4 for p in modeled.body["data"])


async def test_bounds_and_utc_timestamps(authed: Api) -> None:
    """Start inclusive, end exclusive, ts = interval start written +00:00 for UTC."""
    path = f"/components/{MAPLE_PV_METER_ID}/data"
    first = await authed.data(
        path, "Wh_sum,W_avg", "2026-10-26T15:00:00", "2026-10-26T16:00:00"
    )
    second = await authed.data(
        path, "Wh_sum,W_avg", "2026-10-26T16:00:00", "2026-10-26T17:00:00"
    )
    assert first.body["statusCode"] == 200
    assert [p["ts"] for p in first.body["data"]] == [
        "2026-10-26T15:00:00+00:00",
        "2026-10-26T15:15:00+00:00",
        "2026-10-26T15:30:00+00:00",
        "2026-10-26T15:45:00+00:00",
    ]
    assert second.body["data"][0]["ts"] == "2026-10-26T16:00:00+00:00"
    for point in first.body["data"] + second.body["data"]:
        assert point["id"] == MAPLE_PV_METER_ID
        assert list(point) == ["id", "ts", "Wh_sum", "W_avg"]
        assert point["W_avg"] * 0.25 == point["Wh_sum"] > 0
    odd = await authed.data(
        path, "Wh_sum", "2026-10-26T15:07:00", "2026-10-26T15:31:00"
    )
    assert [p["ts"][11:16] for p in odd.body["data"]] == ["15:15", "15:30"]


async def test_new_york_spring_forward(sim: Simulator, authed: Api) -> None:
    """2026-03-08: the 02:xx wall hour does not exist; offsets switch -05:00 → -04:00."""
    path = f"/components/{MAPLE_PV_METER_ID}/data"
    tz = "America/New_York"
    quarter = await authed.data(
        path, "Wh_sum", "2026-03-08T01:00:00", "2026-03-08T04:00:00", tz=tz
    )
    assert [p["ts"] for p in quarter.body["data"]] == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T01:15:00-05:00",
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T01:45:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:15:00-04:00",
        "2026-03-08T03:30:00-04:00",
        "2026-03-08T03:45:00-04:00",
    ]
    assert all(p["Wh_sum"] == 0 for p in quarter.body["data"])  # night: present, 0
    hourly = await authed.data(
        path, "Wh_sum", "2026-03-08T00:00:00", "2026-03-08T05:00:00", "hourly", tz
    )
    assert [p["ts"] for p in hourly.body["data"]] == [
        "2026-03-08T00:00:00-05:00",
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:00:00-04:00",
    ]
    daily = await authed.data(
        path, "Wh_sum", "2026-03-07T00:00:00", "2026-03-10T00:00:00", "daily", tz
    )
    assert [p["ts"] for p in daily.body["data"]] == [
        "2026-03-07T00:00:00-05:00",
        "2026-03-08T00:00:00-05:00",
        "2026-03-09T00:00:00-04:00",
    ]
    truth = sim.locus.truth_hourly(
        MAPLE_PV_METER_ID,
        "Wh_sum",
        datetime(2026, 3, 8, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 4, tzinfo=UTC),
    )
    assert len(truth) == 23
    assert daily.body["data"][1]["Wh_sum"] == exact_sum(truth.values())


async def test_new_york_fall_back(sim: Simulator, authed: Api) -> None:
    """2026-11-01: the 01:xx wall hour happens twice, -04:00 then -05:00."""
    path = f"/components/{MAPLE_PV_METER_ID}/data"
    tz = "America/New_York"
    quarter = await authed.data(
        path, "Wh_sum", "2026-11-01T01:30:00", "2026-11-01T02:00:00", tz=tz
    )
    assert [p["ts"] for p in quarter.body["data"]] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:45:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:15:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T01:45:00-05:00",
    ]
    hourly = await authed.data(
        path, "Wh_sum", "2026-11-01T00:00:00", "2026-11-01T03:00:00", "hourly", tz
    )
    assert [p["ts"] for p in hourly.body["data"]] == [
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    daily = await authed.data(
        path, "Wh_sum", "2026-11-01T00:00:00", "2026-11-02T00:00:00", "daily", tz
    )
    truth = sim.locus.truth_hourly(
        MAPLE_PV_METER_ID,
        "Wh_sum",
        datetime(2026, 11, 1, 4, tzinfo=UTC),
        datetime(2026, 11, 2, 5, tzinfo=UTC),
    )
    assert len(truth) == 25
    assert daily.body["data"] == [
        {
            "id": MAPLE_PV_METER_ID,
            "ts": "2026-11-01T00:00:00-04:00",
            "Wh_sum": exact_sum(truth.values()),
        }
    ]


async def test_fields_without_data_are_omitted(sim: Simulator, authed: Api) -> None:
    """Gaps give points with id and ts only; PF vanishes at night; future is empty."""
    gap_day = day(669)  # 2026-11-01, a third day: Maple's inverter is offline 13-15 UTC
    assert gap_day == datetime(2026, 11, 1, tzinfo=UTC)
    reply = await authed.data(
        f"/components/{MAPLE_INVERTER_ID}/data",
        "Wh_sum,W_avg,PF_avg",
        "2026-11-01T12:30:00",
        "2026-11-01T15:30:00",
    )
    points = {p["ts"][11:16]: p for p in reply.body["data"]}
    assert len(points) == 12
    for label in ("13:00", "13:45", "14:45"):
        assert points[label] == {
            "id": MAPLE_INVERTER_ID,
            "ts": f"2026-11-01T{label}:00+00:00",
        }
    assert set(points["12:45"]) == {"id", "ts", "Wh_sum", "W_avg", "PF_avg"}
    assert set(points["15:00"]) == {"id", "ts", "Wh_sum", "W_avg", "PF_avg"}
    night = await authed.data(
        f"/components/{MAPLE_INVERTER_ID}/data",
        "Wh_sum,PF_avg",
        "2026-11-02T03:00:00",
        "2026-11-02T03:15:00",
    )
    assert night.body["data"][0] == {
        "id": MAPLE_INVERTER_ID,
        "ts": "2026-11-02T03:00:00+00:00",
        "Wh_sum": 0.0,
    }
    future = await authed.data(
        f"/components/{MAPLE_INVERTER_ID}/data",
        "Wh_sum",
        "2026-11-03T11:30:00",
        "2026-11-03T12:30:00",
    )
    assert [set(p) for p in future.body["data"]] == [
        {"id", "ts", "Wh_sum"},
        {"id", "ts", "Wh_sum"},
        {"id", "ts"},  # 12:00-12:15 has not ended at 12:07:30
        {"id", "ts"},
    ]
    lifetime = await authed.data(
        f"/components/{MAPLE_INVERTER_ID}/data",
        "Wh_sum",
        "2000-01-01T00:00:00",
        "2030-01-01T00:00:00",
        "yearly",
    )
    years = lifetime.body["data"]
    assert len(years) == 30
    assert set(years[0]) == {"id", "ts"}
    assert years[0]["ts"] == "2000-01-01T00:00:00+00:00"
    assert [y["ts"][:4] for y in years if "Wh_sum" in y] == ["2025", "2026"]
    assert "null" not in json.dumps(years)


async def test_latest(sim: Simulator, clock: FakeClock, authed: Api) -> None:
    """gran=latest answers one point, the newest published interval, ignoring start/end."""
    path = f"/components/{MAPLE_WEATHER_ID}/data"
    reply = await authed.data(
        path, "TmpAmb_avg,POA_avg", None, None, "latest", "America/New_York"
    )
    point = reply.body["data"][0]
    assert len(reply.body["data"]) == 1
    assert point["ts"] == "2026-11-03T06:45:00-05:00"  # 11:45 UTC ended at 12:00
    assert (utc(point["ts"]), point["TmpAmb_avg"]) == sim.locus.truth_latest(
        MAPLE_WEATHER_ID, "TmpAmb_avg"
    )
    ignored = await authed.data(
        path, "TmpAmb_avg", "2020-01-01T00:00:00", "2020-01-02T00:00:00", "latest"
    )
    assert ignored.body["data"][0]["ts"] == "2026-11-03T11:45:00+00:00"

    sim.locus.publication_delay = timedelta(hours=1)
    meter = await authed.data(
        f"/components/{MAPLE_PV_METER_ID}/data", "Wh_sum,W_avg", None, None, "latest"
    )
    assert meter.body["data"][0]["ts"] == "2026-11-03T10:45:00+00:00"
    truth = sim.locus.truth_latest(MAPLE_PV_METER_ID, "Wh_sum")
    assert truth == (
        datetime(2026, 11, 3, 10, 45, tzinfo=UTC),
        meter.body["data"][0]["Wh_sum"],
    )

    # In a gap, latest falls back to the last interval the inverter reported.
    clock.value = day(669) + timedelta(hours=14, minutes=30)
    sim.locus.publication_delay = timedelta(0)
    gap = await authed.data(
        f"/components/{MAPLE_INVERTER_ID}/data", "Wh_sum", None, None, "latest"
    )
    assert gap.body["data"][0]["ts"] == "2026-11-01T12:45:00+00:00"


async def test_truth_hourly_equals_15min_sums(sim: Simulator, authed: Api) -> None:
    """Hourly sums of 15-minute points are the ground truth, exactly, gaps absent."""
    start, end = day(668), day(670)  # 2026-10-31 and 2026-11-01 (a gap day)
    points: list[dict[str, Any]] = []
    for t_s, t_e in (
        ("2026-10-31T00:00:00", "2026-11-01T00:00:00"),
        ("2026-11-01T00:00:00", "2026-11-02T00:00:00"),
    ):
        reply = await authed.data(
            f"/components/{MAPLE_INVERTER_ID}/data", "Wh_sum", t_s, t_e
        )
        points += reply.body["data"]
    truth = sim.locus.truth_hourly(MAPLE_INVERTER_ID, "Wh_sum", start, end)
    assert hourly_sums(points, "Wh_sum") == truth
    assert len(truth) == 48 - 2
    assert datetime(2026, 11, 1, 13, tzinfo=UTC) not in truth
    assert truth[datetime(2026, 11, 1, 3, tzinfo=UTC)] == 0.0

    hourly = await authed.data(
        f"/components/{MAPLE_INVERTER_ID}/data",
        "Wh_sum",
        "2026-10-31T00:00:00",
        "2026-11-02T00:00:00",
        "hourly",
    )
    assert {
        utc(p["ts"]): p["Wh_sum"] for p in hourly.body["data"] if "Wh_sum" in p
    } == truth

    site_points = (
        await authed.data(
            f"/sites/{HARBOR_SITE_ID}/data",
            "Wh_sum",
            "2026-10-27T00:00:00",
            "2026-10-28T00:00:00",
        )
    ).body["data"]
    site_truth = sim.locus.truth_hourly(
        HARBOR_SITE_ID, "Wh_sum", day(664), day(665), kind="site"
    )
    assert hourly_sums(site_points, "Wh_sum") == site_truth
    # Harbor's meter is silent 09-12 UTC every tenth day (day 664 = 2026-10-27).
    assert len(site_truth) == 24 - 3
    with pytest.raises(ValueError):
        sim.locus.truth_hourly(MAPLE_WEATHER_ID, "Wh_sum", start, end)


async def test_aggregations_and_sub_quarter_granularities(authed: Api) -> None:
    """Hourly: sum, mean, max, min of quarters; 5min/1min split a quarter's sums."""
    path = f"/components/{MAPLE_PV_METER_ID}/data"
    fields = "Wh_sum,W_avg,W_max,W_min"
    quarters = (
        await authed.data(path, fields, "2026-10-26T16:00:00", "2026-10-26T17:00:00")
    ).body["data"]
    hour = (
        await authed.data(
            path, fields, "2026-10-26T16:00:00", "2026-10-26T17:00:00", "hourly"
        )
    ).body["data"]
    assert len(hour) == 1
    assert hour[0]["Wh_sum"] == exact_sum(q["Wh_sum"] for q in quarters)
    assert hour[0]["W_max"] == max(q["W_max"] for q in quarters)
    assert hour[0]["W_min"] == min(q["W_min"] for q in quarters)
    assert hour[0]["W_avg"] == pytest.approx(
        sum(q["W_avg"] for q in quarters) / 4, abs=0.001
    )
    assert all(q["W_min"] <= q["W_avg"] <= q["W_max"] for q in quarters)

    fives = (
        await authed.data(
            path, fields, "2026-10-26T16:00:00", "2026-10-26T16:15:00", "5min"
        )
    ).body["data"]
    assert [p["ts"][11:16] for p in fives] == ["16:00", "16:05", "16:10"]
    assert exact_sum(p["Wh_sum"] for p in fives) == quarters[0]["Wh_sum"]
    assert all(p["W_max"] == quarters[0]["W_max"] for p in fives)
    ones = (
        await authed.data(
            path, "Wh_sum", "2026-10-26T16:00:00", "2026-10-26T16:15:00", "1min"
        )
    ).body["data"]
    assert len(ones) == 15
    assert exact_sum(p["Wh_sum"] for p in ones) == quarters[0]["Wh_sum"]

    month = (
        await authed.data(
            path, "Wh_sum", "2026-09-01T00:00:00", "2026-10-01T00:00:00", "monthly"
        )
    ).body["data"]
    days = (
        await authed.data(
            path, "Wh_sum", "2026-09-01T00:00:00", "2026-10-01T00:00:00", "daily"
        )
    ).body["data"]
    assert len(days) == 30
    assert month[0]["Wh_sum"] == exact_sum(d["Wh_sum"] for d in days)


async def test_site_is_the_sum_of_its_pv_meters(sim: Simulator, authed: Api) -> None:
    """Site Wh_sum/W_avg sum the site's top-level GENERATION meters (gaps left out)."""
    site = sim.locus.site(RIVERSIDE_SITE_ID)
    meters = [c.id for c in site.pv_meters]
    assert meters == [RIVERSIDE_METER_ID, RIVERSIDE_METER_ID + 1]
    gap_day = next(
        d for d in range(660, 671) if d % 11 == 5
    )  # meter 1 offline 15-18 UTC
    start = day(gap_day) + timedelta(hours=14)
    t_s = start.strftime("%Y-%m-%dT%H:%M:%S")
    t_e = (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    site_points = (
        await authed.data(f"/sites/{RIVERSIDE_SITE_ID}/data", "Wh_sum,W_avg", t_s, t_e)
    ).body["data"]
    per_meter = [
        (await authed.data(f"/components/{m}/data", "Wh_sum,W_avg", t_s, t_e)).body[
            "data"
        ]
        for m in meters
    ]
    assert len(site_points) == 12
    for i, point in enumerate(site_points):
        present = [rows[i] for rows in per_meter if "Wh_sum" in rows[i]]
        assert point["Wh_sum"] == exact_sum(r["Wh_sum"] for r in present)
        assert point["W_avg"] == exact_sum(r["W_avg"] for r in present)
    assert all(
        any("Wh_sum" in row for row in rows) for rows in zip(*per_meter, strict=True)
    )
    assert sum("Wh_sum" in p for p in per_meter[0]) == 4  # 14:00-15:00 only

    modeled = await authed.data(
        f"/sites/{RIVERSIDE_SITE_ID}/data",
        "GHI_m_avg,GHIh_m_sum,Wh_m_sum,W_m_avg,Wh_e_sum",
        "2026-10-20T00:00:00",
        "2026-10-21T00:00:00",
        "daily",
        **MODEL,
    )
    point = modeled.body["data"][0]
    assert point["Wh_m_sum"] > 0
    assert point["Wh_e_sum"] > 0
    assert point["GHIh_m_sum"] > 0


async def test_bulk_site_data(sim: Simulator, authed: Api) -> None:
    """Monthly bulk data: one point per site and month; fields it cannot have are null."""
    available = await authed.get(f"/partners/{DEMO_PARTNER_ID}/sites/dataavailable")
    assert [f["baseField"] for f in available.body["baseFields"]][:3] == [
        "Wh",
        "Whp",
        "Wh_e",
    ]
    params = {
        "fields": "Wh_sum,EER_avg",
        "gran": "monthly",
        "tz": "UTC",
        "start": "2026-09-01T00:00:00",
        "end": "2026-10-01T00:00:00",
    }
    bulk = (await authed.get(f"/partners/{DEMO_PARTNER_ID}/sites/data", params)).body[
        "data"
    ]
    assert [p["id"] for p in bulk] == [
        s.id for s in sim.locus.sites_of(DEMO_PARTNER_ID)
    ]
    assert all(p["EER_avg"] is None for p in bulk)
    maple = (
        await authed.data(
            f"/sites/{MAPLE_SITE_ID}/data",
            "Wh_sum",
            params["start"],
            params["end"],
            "monthly",
        )
    ).body["data"]
    assert bulk[0]["Wh_sum"] == maple[0]["Wh_sum"]
    too_long = params | {"end": "2027-09-02T00:00:00"}
    assert (
        await authed.get(f"/partners/{DEMO_PARTNER_ID}/sites/data", too_long)
    ).status == 400


# --------------------------------------------------------------------------- alerts


async def test_alert_schedule_and_shape(sim: Simulator, authed: Api) -> None:
    """Maple's inverter disconnects every third day 13-15 UTC; documented alert shape."""
    alerts = (await authed.get(f"/sites/{MAPLE_SITE_ID}/alerts", {"tz": "UTC"})).body[
        "alerts"
    ]
    assert len(alerts) == 224  # one every third day since 2025-01-01
    assert {a["alertType"] for a in alerts} == {"System Disconnect"}
    assert alerts[-1] == {
        "id": 810223,
        "componentId": MAPLE_INVERTER_ID,
        "componentName": "Inverter 1",
        "siteId": MAPLE_SITE_ID,
        "siteName": "Maple Street Residence",
        "alertType": "System Disconnect",
        "priority": "High",
        "start": "2026-11-01T13:00:00-00:00",
        "end": "2026-11-01T15:00:00-00:00",
        "updated": "2026-11-01T15:00:00-00:00",
    }
    local = (
        await authed.get(
            f"/components/{MAPLE_INVERTER_ID}/alerts", {"tz": "America/New_York"}
        )
    ).body["alerts"]
    assert local[-1]["start"] == "2026-11-01T08:00:00-05:00"
    assert local[-2]["start"] == "2026-10-29T09:00:00-04:00"

    harbor = (await authed.get(f"/sites/{HARBOR_SITE_ID}/alerts", {"tz": "UTC"})).body[
        "alerts"
    ]
    assert harbor[-1]["descriptionShort"] == "VDC high"
    assert harbor[-1]["descriptionLong"] == (
        "A voltage higher than 2100 V is present on the DC bus. (Resettable)"
    )
    open_now = sim.locus.open_alerts(3393713)
    assert any(a["alertType"] == "Device Fault" and "end" not in a for a in open_now)
    assert sim.locus.open_alerts(MAPLE_SITE_ID) == []
    assert (await authed.get(f"/sites/{MAPLE_SITE_ID}/alerts")).status == 400


async def test_alert_filters(authed: Api) -> None:
    """updatedSince, open-during, type, status and priority filters."""
    path = f"/sites/{MAPLE_SITE_ID}/alerts"
    since = await authed.get(path, {"tz": "UTC", "updatedSince": "2026-11-01T00:00:00"})
    assert [a["id"] for a in since.body["alerts"]] == [810223]
    during = await authed.get(
        path,
        {
            "tz": "UTC",
            "openDuringMin": "2026-11-01T14:00:00",
            "openDuringMax": "2026-11-01T14:30:00",
        },
    )
    assert [a["id"] for a in during.body["alerts"]] == [810223]
    after = await authed.get(
        path,
        {
            "tz": "UTC",
            "openDuringMin": "2026-11-01T15:30:00",
            "openDuringMax": "2026-11-01T16:00:00",
        },
    )
    assert after.body["alerts"] == []
    assert (
        await authed.get(path, {"tz": "UTC", "openDuringMin": "2026-11-01T15:30:00"})
    ).status == 400
    assert (await authed.get(path, {"tz": "UTC", "status": "open"})).body[
        "alerts"
    ] == []
    assert (await authed.get(path, {"tz": "UTC", "priority": "low"})).body[
        "alerts"
    ] == []
    assert (await authed.get(path, {"tz": "UTC", "alertType": "Device Fault"})).body[
        "alerts"
    ] == []
    assert (await authed.get(path, {"tz": "UTC", "alertType": "Bogus"})).status == 400

    partner = f"/partners/{DEMO_PARTNER_ID}/alerts"
    assert (await authed.get(partner, {"tz": "UTC"})).status == 400
    assert (
        await authed.get(partner, {"tz": "UTC", "updatedSince": "2026-10-27T12:00:00"})
    ).status == 400
    recent = await authed.get(
        partner, {"tz": "UTC", "updatedSince": "2026-10-27T12:07:30"}
    )
    assert recent.status == 200
    assert {a["siteId"] for a in recent.body["alerts"]} >= {
        MAPLE_SITE_ID,
        HARBOR_SITE_ID,
    }
    span = {"tz": "UTC", "openDuringMin": "2026-10-01T00:00:00"}
    assert (
        await authed.get(partner, span | {"openDuringMax": "2026-11-01T00:00:01"})
    ).status == 400
    assert (
        await authed.get(partner, span | {"openDuringMax": "2026-11-01T00:00:00"})
    ).status == 200


async def test_open_and_close_alert(
    sim: Simulator, clock: FakeClock, authed: Api
) -> None:
    """Tests drive alert transitions: open (no end, updated = start), then close."""
    alert_id = sim.locus.open_alert(
        MAPLE_INVERTER_ID,
        "Device Fault",
        "medium",
        short="Arc fault",
        long="Arc detected.",
    )
    path = f"/components/{MAPLE_INVERTER_ID}/alerts"
    query = {"tz": "UTC", "updatedSince": "2026-11-03T12:00:00"}
    alerts = (await authed.get(path, query)).body["alerts"]
    assert alerts == [
        {
            "id": alert_id,
            "componentId": MAPLE_INVERTER_ID,
            "componentName": "Inverter 1",
            "siteId": MAPLE_SITE_ID,
            "siteName": "Maple Street Residence",
            "alertType": "Device Fault",
            "priority": "Medium",
            "start": "2026-11-03T12:07:30-00:00",
            "updated": "2026-11-03T12:07:30-00:00",
            "descriptionShort": "Arc fault",
            "descriptionLong": "Arc detected.",
        }
    ]
    assert [a["id"] for a in sim.locus.open_alerts(MAPLE_SITE_ID)] == [alert_id]
    clock.advance(timedelta(minutes=50))
    sim.locus.close_alert(alert_id)
    after = (
        await authed.get(path, query | {"updatedSince": "2026-11-03T12:50:00"})
    ).body["alerts"]
    assert [(a["id"], a["end"], a["updated"]) for a in after] == [
        (alert_id, "2026-11-03T12:57:30-00:00", "2026-11-03T12:57:30-00:00")
    ]
    assert sim.locus.open_alerts(MAPLE_SITE_ID) == []

    future = sim.locus.open_alert(
        MAPLE_PV_METER_ID, "Zero Generation", "Low", start=NOW + timedelta(days=1)
    )
    assert future not in [
        a["id"]
        for a in (
            await authed.get(f"/sites/{MAPLE_SITE_ID}/alerts", {"tz": "UTC"})
        ).body["alerts"]
    ]
    sim.locus.close_alert(810223, at=datetime(2026, 11, 1, 14, tzinfo=UTC))
    last = (
        await authed.get(path, {"tz": "UTC", "updatedSince": "2026-11-01T00:00:00"})
    ).body["alerts"]
    assert last[0]["end"] == "2026-11-01T14:00:00-00:00"
    with pytest.raises(KeyError):
        sim.locus.close_alert(123)
    with pytest.raises(ValueError):
        sim.locus.open_alert(MAPLE_INVERTER_ID, "Meltdown", "High")


# --------------------------------------------------------------------------- knobs, faults, log


async def test_publish_late_and_correct(sim: Simulator, authed: Api) -> None:
    """Withheld intervals are empty points until released; corrections reach site sums."""
    start = datetime(2026, 10, 26, 16, tzinfo=UTC)
    sim.locus.publish_late(start, start + timedelta(minutes=30), MAPLE_PV_METER_ID)
    path = f"/components/{MAPLE_PV_METER_ID}/data"
    window = ("2026-10-26T16:00:00", "2026-10-26T17:00:00")
    points = (await authed.data(path, "Wh_sum", *window)).body["data"]
    assert [set(p) for p in points] == [{"id", "ts"}] * 2 + [{"id", "ts", "Wh_sum"}] * 2
    site = (
        await authed.data(
            f"/sites/{MAPLE_SITE_ID}/data", "Wh_sum,Wh_m_sum", *window, **MODEL
        )
    ).body["data"]
    assert set(site[0]) == {"id", "ts"}  # the site waits for all its meters
    assert "Wh_m_sum" in site[2]
    inverter = (
        await authed.data(f"/components/{MAPLE_INVERTER_ID}/data", "Wh_sum", *window)
    ).body["data"]
    assert all("Wh_sum" in p for p in inverter)
    truth = sim.locus.truth_hourly(
        MAPLE_PV_METER_ID, "Wh_sum", start, start + timedelta(hours=1)
    )
    sim.locus.release_late()
    points = (await authed.data(path, "Wh_sum", *window)).body["data"]
    assert hourly_sums(points, "Wh_sum") == truth

    before = (
        await authed.data(f"/sites/{MAPLE_SITE_ID}/data", "Wh_sum", *window)
    ).body["data"]
    sim.locus.correct(MAPLE_PV_METER_ID, start, 1234.567)
    corrected = (await authed.data(path, "Wh_sum,W_avg", *window)).body["data"][0]
    assert (corrected["Wh_sum"], corrected["W_avg"]) == (1234.567, 4938.268)
    after = (await authed.data(f"/sites/{MAPLE_SITE_ID}/data", "Wh_sum", *window)).body[
        "data"
    ]
    assert after[0]["Wh_sum"] == 1234.567
    assert after[1:] == before[1:]
    assert sim.locus.truth_hourly(
        MAPLE_PV_METER_ID, "Wh_sum", start, start + timedelta(hours=1)
    ) == {start: exact_sum([1234.567] + [p["Wh_sum"] for p in points[1:]])}
    assert sim.locus.corrections == {(MAPLE_PV_METER_ID, start): 1234.567}
    with pytest.raises(ValueError):
        sim.locus.correct(MAPLE_PV_METER_ID, start + timedelta(minutes=1), 1.0)
    with pytest.raises(ValueError):
        sim.locus.correct(MAPLE_WEATHER_ID, start, 1.0)


@pytest.mark.parametrize(
    ("kind", "status"),
    [("http_500", 500), ("http_401", 401), ("http_429", 429), ("timeout", 504)],
)
async def test_error_faults(
    sim: Simulator, authed: Api, kind: str, status: int
) -> None:
    """Faults hit the next matching Locus request once, after authentication."""
    sim.faults.timeout_seconds = 0.05
    sim.faults.add(kind, cloud="locus", path="/components/")
    assert (await authed.get(f"/sites/{MAPLE_SITE_ID}")).status == 200
    assert (
        await authed.get(f"/components/{MAPLE_PV_METER_ID}", token="x")
    ).status == 401
    reply = await authed.get(f"/components/{MAPLE_PV_METER_ID}")
    assert reply.status == status
    if kind == "http_429":
        assert reply.body == TOO_MANY
    assert (await authed.get(f"/components/{MAPLE_PV_METER_ID}")).status == 200
    assert sim.faults.pending == []


async def test_fault_shapes_and_token_endpoint(sim: Simulator, api: Api) -> None:
    """Faults skip /oauth/token unless named; missing_fields damages rows; JSON garbage."""
    sim.faults.add("http_500", cloud="locus")
    assert (await api.login()).status == 200
    assert (await api.get(f"/sites/{MAPLE_SITE_ID}")).status == 500
    sim.faults.add("http_500", cloud="locus", path="^/oauth/token$")
    assert (await api.login()).status == 500
    sim.faults.add("http_401", cloud="locus", path="oauth")
    reply = await api.login()
    assert (reply.status, reply.body) == (401, {"error": "invalid_client"})
    await api.login()

    sim.faults.add("missing_fields", cloud="locus", path="/data$")
    points = (
        await api.data(
            f"/components/{MAPLE_PV_METER_ID}/data",
            "Wh_sum",
            "2026-10-26T16:00:00",
            "2026-10-26T16:30:00",
        )
    ).body["data"]
    assert set(points[0]) == {"Wh_sum"}
    assert set(points[1]) == {"id", "ts"}
    sim.faults.add("malformed_json", cloud="locus")
    reply = await api.get(f"/sites/{MAPLE_SITE_ID}")
    assert (reply.status, reply.body) == (200, None)
    sim.faults.add("http_500", cloud="climkit")
    assert (await api.get(f"/sites/{MAPLE_SITE_ID}")).status == 200


async def test_hanging_request_gives_its_slot_back(sim: Simulator, authed: Api) -> None:
    """A request hanging in a timeout fault does not block its account."""
    sim.faults.timeout_seconds = 0.4
    sim.faults.add("timeout", cloud="locus")
    hanging = asyncio.create_task(authed.get(f"/sites/{MAPLE_SITE_ID}"))
    while sim.faults.pending:
        await asyncio.sleep(0.01)
    assert (await authed.get(f"/sites/{MAPLE_SITE_ID}")).status == 200
    assert (await hanging).status == 504


async def test_request_log_masks_secrets(sim: Simulator, api: Api) -> None:
    """Token requests are logged at /oauth/token under locus, secrets masked."""
    await api.login(password="wrong")
    await api.login()
    await api.refresh_grant()
    await api.get(f"/sites/{MAPLE_SITE_ID}/data", {"fields": "Wh_sum"})
    log = sim.log_for("locus")
    assert [(r.method, r.path, r.status, r.account) for r in log] == [
        ("POST", "/oauth/token", 401, DEMO_ACCOUNT),
        ("POST", "/oauth/token", 200, DEMO_ACCOUNT),
        ("POST", "/oauth/token", 200, DEMO_ACCOUNT),
        ("GET", f"/sites/{MAPLE_SITE_ID}/data", 400, DEMO_ACCOUNT),
    ]
    assert log[0].body == {
        "grant_type": "password",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": "***",
        "username": DEMO_USERNAME,
        "password": "***",
    }
    assert log[2].body["refresh_token"] == "***"
    assert log[3].query == {"fields": "Wh_sum"}
    assert all(r.cloud == "locus" and r.wall == NOW for r in log)
    text = repr(sim.log)
    for secret in (DEMO_PASSWORD, DEMO_CLIENT_SECRET, api.refresh or ""):
        assert secret not in text


async def test_gzip_on_request(authed: Api) -> None:
    """Accept-Encoding: gzip compresses the answer."""
    reply = await authed.get(
        f"/sites/{MAPLE_SITE_ID}", headers={"Accept-Encoding": "gzip"}
    )
    assert reply.headers.get("Content-Encoding") == "gzip"
    assert reply.body["id"] == MAPLE_SITE_ID
    plain = await authed.get(
        f"/sites/{MAPLE_SITE_ID}", headers={"Accept-Encoding": "identity"}
    )
    assert "Content-Encoding" not in plain.headers


# --------------------------------------------------------------------------- CLI and determinism


def test_cli_defaults() -> None:
    """The Locus CLI defaults match the document: one request at a time, 3600 s."""
    args = parse_args([])
    assert (args.locus_concurrency, args.locus_token_lifetime) == (1, 3600.0)
    args = parse_args(["--locus-concurrency", "0", "--locus-token-lifetime", "60"])
    assert (args.locus_concurrency, args.locus_token_lifetime) == (0, 60.0)


def test_cli_prints_the_locus_credentials() -> None:
    """The demo backend prints the Locus API URL and demo credentials."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            lines = [process.stdout.readline() for _ in range(2)]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    locus = next(line for line in lines if line.startswith("Locus Energy:"))
    assert "/locus/v3 " in locus
    for part in (
        f"client_id={DEMO_CLIENT_ID}",
        f"client_secret={DEMO_CLIENT_SECRET}",
        f"username={DEMO_USERNAME}",
        f"password={DEMO_PASSWORD}",
        f"partner_id={DEMO_PARTNER_ID}",
    ):
        assert part in locus


def test_url_and_determinism() -> None:
    """The API root is /locus/v3; two simulators agree on every value."""
    first, second = Simulator(now=lambda: NOW), Simulator(now=lambda: NOW)
    assert first.locus.prefix == "/locus/v3"
    start, end = datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    assert first.locus.truth_hourly(SONORAN_INVERTER_ID, "Wh_sum", start, end) == (
        second.locus.truth_hourly(SONORAN_INVERTER_ID, "Wh_sum", start, end)
    )
    assert first.locus.truth_hourly(
        RIVERSIDE_SITE_ID, "Wh_sum", start, end, kind="site"
    ) == second.locus.truth_hourly(RIVERSIDE_SITE_ID, "Wh_sum", start, end, kind="site")
    with pytest.raises(ValueError):
        first.locus.truth_latest(MAPLE_ARRAY_GROUP_ID, "Wh_sum")
