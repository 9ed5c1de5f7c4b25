"""Tests of the cloud simulator itself (tests/simulator), Copper Labs part.

The integration's tests will trust the simulator's ground truth, so it must
first be shown to follow the Copper document and NOTES: both Auth0 sign-ins
(PKCE S256, refresh rotation and reuse detection, client credentials with the
audience), the consumer and enterprise endpoints and their shapes, paging by
offset/limit and by ``next``, percent-encoded meter ids, the 100/hour and
1,000/day budgets, units and the x100 raw registers, and ground truth.
"""

from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import hashlib
import json
import re
import signal
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_socket
from yarl import URL

from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.copper import (
    APP_SCOPE,
    AUDIENCE,
    AUTH_PREFIX,
    CABIN_PREMISE_ID,
    DEMO_EMAIL,
    DEMO_EMAIL_CODE,
    ENTERPRISE_CLIENT_ID,
    ENTERPRISE_CLIENT_SECRET,
    ENTERPRISE_ID,
    HOME_ELECTRIC_ID,
    HOME_GAS_ID,
    HOME_PREMISE_ID,
    HOME_WATER_ID,
    OTHER_ENTERPRISE_ID,
    PUBLIC_CLIENT_ID,
    REDIRECT_URI,
    quote_id,
)
from tests.simulator.process import ROOT

pytestmark = pytest.mark.usefixtures("socket_enabled")

NOW = datetime(2026, 11, 3, 12, 7, 30, tzinfo=UTC)  # two days after the US DST end
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass(frozen=True)
class Reply:
    """What the simulator answered."""

    status: int
    body: Any
    headers: dict[str, str]


def pkce() -> tuple[str, str]:
    """Return a fresh (verifier, S256 challenge) pair, as the official script makes it."""
    verifier = urlsafe_b64encode(b"v" * 32).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Api:
    """A tiny Copper client for the tests: raw requests, no validation."""

    session: aiohttp.ClientSession
    sim: Simulator
    token: str | None = None

    @property
    def auth(self) -> str:
        """The Auth0 tenant's root."""
        return f"{self.sim.base_url}{AUTH_PREFIX}"

    async def get(self, path: str, params: dict[str, str] | None = None) -> Reply:
        """GET an API path (already percent-encoded) with the token, if any."""
        headers = (
            {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        )
        url = URL(f"{self.sim.url('copper')}{path}", encoded=True)
        if params:
            url = url.update_query(params)
        async with self.session.get(url, headers=headers) as response:
            return await _reply(response)

    async def token_request(self, body: dict[str, str]) -> Reply:
        """POST the Auth0 token endpoint with a JSON body."""
        async with self.session.post(f"{self.auth}/oauth/token", json=body) as response:
            return await _reply(response)

    def authorize_query(self, challenge: str, **extra: str) -> dict[str, str]:
        """Return the /authorize query NOTES gives."""
        return {
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "client_id": PUBLIC_CLIENT_ID,
            "scope": APP_SCOPE,
            "audience": AUDIENCE,
            "redirect_uri": REDIRECT_URI,
            **extra,
        }

    async def sign_in(self, challenge: str, otp: str = DEMO_EMAIL_CODE) -> Reply:
        """Open the sign-in page, post e-mail and code, do not follow the redirect."""
        query = self.authorize_query(challenge, state="xyz")
        async with self.session.get(f"{self.auth}/authorize", params=query) as page:
            assert page.status == 200
            assert "<form" in await page.text()
        async with self.session.post(
            f"{self.auth}/authorize",
            params=query,
            data={"email": DEMO_EMAIL, "otp": otp},
            allow_redirects=False,
        ) as response:
            return await _reply(response)

    async def app_login(self) -> dict[str, Any]:
        """Sign in as the demo user (the full flow) and keep the access token."""
        verifier, challenge = pkce()
        redirect = await self.sign_in(challenge)
        code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
        reply = await self.token_request(
            {
                "grant_type": "authorization_code",
                "code_verifier": verifier,
                "client_id": PUBLIC_CLIENT_ID,
                "code": code,
                "redirect_uri": REDIRECT_URI,
            }
        )
        assert reply.status == 200, reply.body
        self.token = reply.body["access_token"]
        return dict(reply.body)

    async def enterprise_login(self) -> dict[str, Any]:
        """Use the client-credentials grant and keep the token."""
        reply = await self.token_request(
            {
                "grant_type": "client_credentials",
                "client_id": ENTERPRISE_CLIENT_ID,
                "client_secret": ENTERPRISE_CLIENT_SECRET,
                "audience": AUDIENCE,
            }
        )
        assert reply.status == 200, reply.body
        self.token = reply.body["access_token"]
        return dict(reply.body)


async def _reply(response: aiohttp.ClientResponse) -> Reply:
    """Read and parse an answer."""
    text = await response.text()
    try:
        body = json.loads(text)
    except ValueError:
        body = text
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
    """Run a simulator with the documented defaults."""
    simulator = Simulator(now=clock)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    """Return an unauthenticated client."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim)


def usage_path(meter_id: str, enterprise: bool = False) -> str:
    """Return the usage path of a meter, its id percent-encoded."""
    if enterprise:
        return f"/partner/{ENTERPRISE_ID}/meter/{quote_id(meter_id)}/usage"
    return f"/app/usage/{quote_id(meter_id)}"


# --------------------------------------------------------------------------- Auth0


async def test_app_sign_in_redirects_with_a_code_and_exchanges_it(
    sim: Simulator, api: Api
) -> None:
    """NOTES: authorize -> ?code=… on the redirect URI; exchange with verifier (JSON)."""
    _, challenge = pkce()
    redirect = await api.sign_in(challenge)
    assert redirect.status == 302
    location = urlsplit(redirect.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    assert parse_qs(location.query)["state"] == ["xyz"]
    body = await api.app_login()
    assert set(body) == {
        "access_token",
        "refresh_token",
        "scope",
        "expires_in",
        "token_type",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400  # NOTES: ~24 h access
    assert body["scope"] == APP_SCOPE
    assert (await api.get("/app/state")).status == 200
    # Secrets never reach the request log.
    logged = json.dumps([r.body for r in sim.log_for("copper")])
    assert body["refresh_token"] not in logged
    assert DEMO_EMAIL_CODE not in logged
    token_record = next(r for r in sim.log_for("copper") if r.path.endswith("/token"))
    assert token_record.body["code_verifier"] == "***"
    assert token_record.account == DEMO_EMAIL


async def test_sign_in_refuses_a_wrong_code_and_bad_queries(api: Api) -> None:
    """Wrong e-mail code 403; unknown client, other redirect, plain PKCE are 400."""
    _, challenge = pkce()
    assert (await api.sign_in(challenge, otp="000000")).status == 403
    for bad in (
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.example/app"},
        {"code_challenge_method": "plain"},
        {"audience": "https://other.example"},
    ):
        query = api.authorize_query(challenge, **bad)
        async with api.session.get(f"{api.auth}/authorize", params=query) as page:
            assert page.status == 400


async def test_pkce_wrong_verifier_is_refused_and_the_code_is_single_use(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    """S256 checked: a wrong verifier is 403 invalid_grant; a code works once, briefly."""
    verifier, challenge = pkce()
    exchange = {
        "grant_type": "authorization_code",
        "client_id": PUBLIC_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
    }
    code = sim.copper.authorization_code(challenge)
    wrong = await api.token_request(
        {**exchange, "code": code, "code_verifier": verifier + "x"}
    )
    assert wrong.status == 403
    assert wrong.body == {
        "error": "invalid_grant",
        "error_description": "Failed to verify code verifier",
    }
    code = sim.copper.authorization_code(challenge)
    good = {**exchange, "code": code, "code_verifier": verifier}
    assert (await api.token_request(good)).status == 200
    again = await api.token_request(good)
    assert (again.status, again.body["error"]) == (403, "invalid_grant")
    code = sim.copper.authorization_code(challenge)
    clock.advance(sim.copper.code_lifetime)
    expired = await api.token_request({**good, "code": code})
    assert (expired.status, expired.body["error"]) == (403, "invalid_grant")


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(
    sim: Simulator, api: Api
) -> None:
    """Each refresh answers a new refresh token; the used one then revokes all."""
    first = (await api.app_login())["refresh_token"]
    refresh = {"grant_type": "refresh_token", "client_id": PUBLIC_CLIENT_ID}
    rotated = await api.token_request({**refresh, "refresh_token": first})
    assert rotated.status == 200
    second = rotated.body["refresh_token"]
    assert second != first
    reused = await api.token_request({**refresh, "refresh_token": first})
    assert reused.status == 403
    assert reused.body == {
        "error": "invalid_grant",
        "error_description": "Unknown or invalid refresh token.",
    }
    # Reuse detection: the family is gone, the newest token included.
    newest = await api.token_request({**refresh, "refresh_token": second})
    assert newest.status == 403


async def test_refresh_without_rotation_answers_no_refresh_token(
    sim: Simulator, api: Api
) -> None:
    """The official script's server: the refresh answer carries no new refresh token."""
    sim.copper.rotate_refresh_tokens = False
    first = (await api.app_login())["refresh_token"]
    refresh = {
        "grant_type": "refresh_token",
        "client_id": PUBLIC_CLIENT_ID,
        "refresh_token": first,
    }
    for _ in range(2):
        reply = await api.token_request(refresh)
        assert reply.status == 200
        assert "refresh_token" not in reply.body


async def test_client_credentials_need_secret_and_audience(api: Api) -> None:
    """NOTES: client credentials with audience https://api.copperlabs.com."""
    body = await api.enterprise_login()
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    base = {
        "grant_type": "client_credentials",
        "client_id": ENTERPRISE_CLIENT_ID,
        "client_secret": ENTERPRISE_CLIENT_SECRET,
    }
    wrong = await api.token_request(
        {**base, "client_secret": "nope", "audience": AUDIENCE}
    )
    assert (wrong.status, wrong.body["error"]) == (401, "access_denied")
    no_audience = await api.token_request(base)
    assert (no_audience.status, no_audience.body["error"]) == (403, "access_denied")
    assert (await api.get(f"/partner/{ENTERPRISE_ID}/premise")).status == 200


async def test_tokens_expire_are_revoked_and_are_scoped(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    """401 after 24 h or revocation; a consumer token may not read /partner (403)."""
    await api.app_login()
    assert (await api.get(f"/partner/{ENTERPRISE_ID}/premise")).status == 403
    sim.copper.revoke_user(DEMO_EMAIL)
    assert (await api.get("/app/state")).status == 401
    await api.app_login()
    clock.advance(timedelta(hours=24))
    assert (await api.get("/app/state")).status == 401
    await api.enterprise_login()
    assert (await api.get("/app/state")).status == 403
    assert (await api.get(f"/partner/{OTHER_ENTERPRISE_ID}/premise")).status == 403


# --------------------------------------------------------------------------- consumer


async def test_app_state_and_instant_shapes(sim: Simulator, api: Api) -> None:
    """/app/state premise_list with meter_list; /app/instant results and rates."""
    await api.app_login()
    state = await api.get("/app/state")
    assert state.headers["Cache-Control"] == "max-age=900"
    premises = state.body["premise_list"]
    assert [p["id"] for p in premises] == [HOME_PREMISE_ID, CABIN_PREMISE_ID]
    assert {p["timezone"] for p in premises} == {"America/Denver", "America/New_York"}
    home = premises[0]
    assert [(m["id"], m["type"]) for m in home["meter_list"]] == [
        (HOME_ELECTRIC_ID, "power_net"),
        (HOME_GAS_ID, "gas"),
        (HOME_WATER_ID, "water_indoor"),
    ]
    instant = await api.get(f"/app/instant/{HOME_PREMISE_ID}")
    rows = instant.body["results"]
    assert [set(row) for row in rows] == [
        {"id", "type", "instant_power", "updated_at"}
    ] * 3
    for row in rows:
        updated, rate = sim.copper.truth_instant(row["id"])
        assert (
            row["updated_at"]
            == "2026-11-03T12:00:00.000Z"
            == updated.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        )
        assert row["instant_power"] == rate
    assert (
        await api.get(
            f"/app/instant/{sim.copper.premises_of_enterprise(ENTERPRISE_ID)[0].id}"
        )
    ).status == 404


async def test_meter_ids_must_be_percent_encoded(api: Api) -> None:
    """NOTES: ids contain ':' and are sent as %3A; a raw ':' is not found."""
    await api.app_login()
    params = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-02T02:00:00Z"}
    encoded = await api.get(usage_path(HOME_GAS_ID), params)
    assert encoded.status == 200
    assert encoded.body["meter_id"] == HOME_GAS_ID
    raw = await api.get(f"/app/usage/{HOME_GAS_ID}", params)
    assert raw.status == 404


async def test_usage_rows_units_and_both_ends(sim: Simulator, api: Api) -> None:
    """Rows {time, value, usage, power, actual}; both ends included; gas raw x100."""
    await api.app_login()
    start, end = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC)
    params = {
        "start": "2026-11-02T00:00:00Z",
        "end": "2026-11-02T06:00:00Z",
        "granularity": "hour",
    }
    reply = await api.get(usage_path(HOME_GAS_ID), params)
    body = reply.body
    assert set(body) == {
        "meter_id",
        "meter_type",
        "granularity",
        "sum_usage",
        "results",
    }
    rows = body["results"]
    assert [r["time"] for r in rows][0::6] == [
        "2026-11-02T00:00:00.000Z",
        "2026-11-02T06:00:00.000Z",
    ]
    assert len(rows) == 7  # both ends: a client must drop the duplicated boundary
    assert all(ISO_Z.match(r["time"]) for r in rows)
    truth = sim.copper.truth_hourly(HOME_GAS_ID, start - timedelta(hours=1), end)
    for row in rows:
        at = datetime.fromisoformat(row["time"])
        assert set(row) == {"time", "value", "usage", "power", "actual"}
        assert row["value"] == sim.copper.truth_register(HOME_GAS_ID, at)  # CCF
        assert row["actual"] == pytest.approx(row["value"] * 100)  # raw register x100
        assert row["usage"] == truth[at - timedelta(hours=1)]  # end-labelled bucket
        assert row["power"] == pytest.approx(row["usage"])  # per hour
    assert body["sum_usage"] == float(sum(Decimal(repr(r["usage"])) for r in rows))
    excluded = await api.get(
        usage_path(HOME_GAS_ID), {**params, "include_start": "False"}
    )
    assert [r["time"] for r in excluded.body["results"]] == [
        r["time"] for r in rows[1:]
    ]


async def test_newest_bucket_is_null_and_day_follows_local_midnight(
    sim: Simulator, api: Api
) -> None:
    """The bucket in progress is null; day buckets start at Denver midnight across DST."""
    await api.app_login()
    recent = await api.get(
        usage_path(HOME_ELECTRIC_ID),
        {"start": "2026-11-03T11:00:00Z", "end": "2026-11-03T14:00:00Z"},
    )
    rows = recent.body["results"]
    assert [r["time"] for r in rows] == [
        "2026-11-03T11:00:00.000Z",
        "2026-11-03T12:00:00.000Z",
        "2026-11-03T13:00:00.000Z",
    ]
    assert rows[-1]["usage"] is None and rows[-1]["value"] is None
    assert rows[1]["usage"] is not None
    days = await api.get(
        usage_path(HOME_ELECTRIC_ID),
        {
            "start": "2026-10-31T06:00:00Z",
            "end": "2026-11-03T00:00:00Z",
            "granularity": "day",
        },
    )
    times = [r["time"] for r in days.body["results"]]
    # Denver midnight is 06:00Z in MDT, 07:00Z in MST (DST ended 2026-11-01).
    assert times == [
        "2026-10-31T06:00:00.000Z",
        "2026-11-01T06:00:00.000Z",
        "2026-11-02T07:00:00.000Z",
    ]
    day_rows = days.body["results"]
    assert day_rows[2]["usage"] == sim.copper.truth_usage(
        HOME_ELECTRIC_ID,
        datetime(2026, 11, 1, 6, tzinfo=UTC),
        datetime(2026, 11, 2, 7, tzinfo=UTC),
    )


async def test_usage_refuses_bad_parameters_and_long_windows(api: Api) -> None:
    """400 for a missing start, an unknown granularity or too many points."""
    await api.app_login()
    path = usage_path(HOME_WATER_ID)
    assert (await api.get(path)).status == 400
    assert (await api.get(path, {"start": "yesterday"})).status == 400
    assert (
        await api.get(path, {"start": "2026-11-01T00:00:00Z", "granularity": "week"})
    ).status == 400
    long = {"start": "2026-01-01T00:00:00Z", "granularity": "minute"}
    assert (await api.get(path, long)).status == 400


# --------------------------------------------------------------------------- enterprise


async def test_premise_meter_and_gateway_lists_page_by_offset_limit(
    sim: Simulator, api: Api
) -> None:
    """Plain lists; a page shorter than the limit is the last; fields per NOTES."""
    await api.enterprise_login()
    base = f"/partner/{ENTERPRISE_ID}"
    expected = sim.copper.meters_of_enterprise(ENTERPRISE_ID)
    assert len(expected) > 200
    meters: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await api.get(f"{base}/meter", {"limit": "50", "offset": str(offset)})
        meters += page.body
        if len(page.body) < 50:
            break
        offset += 50
    assert [m["id"] for m in meters] == [m.id for m in expected]
    first = meters[0]
    assert set(first) == {
        "id",
        "type",
        "premise_id",
        "uom",
        "state",
        "created_at",
        "last_reading",
    }
    assert set(first["last_reading"]) == {"value", "hw_timestamp"}
    units = {m["type"]: m["uom"] for m in meters}
    assert units["power_net"] == "kwh" and units["gas"] == "ccf"
    assert units["water_indoor"] == "gal"
    assert {m["type"] for m in meters} >= {
        "power",
        "power_net",
        "power_gen",
        "power_sub",
        "electric",
        "gas",
        "water",
        "water_indoor",
        "water_outdoor",
    } - {"power"}
    premises = (await api.get(f"{base}/premise")).body
    assert len(premises) == 60
    assert {
        "id",
        "name",
        "street_address",
        "city_town",
        "postal_code",
        "state_region",
        "timezone",
    } <= set(premises[0])
    gateways = (await api.get(f"{base}/gateway", {"limit": "7", "offset": "56"})).body
    assert len(gateways) == 4
    grid = (await api.get(f"{base}/grid/latest")).body
    assert {"gateway_id", "voltage", "frequency"} <= set(grid[0])


async def test_last_reading_is_raw_and_bulk_value_normalised(
    sim: Simulator, api: Api
) -> None:
    """NOTES: last_reading not normalised (x100 on some meters); bulk value is."""
    await api.enterprise_login()
    meters = (await api.get(f"/partner/{ENTERPRISE_ID}/meter")).body
    gas = next(m for m in meters if m["type"] == "gas" and m["last_reading"])
    at = datetime.fromisoformat(gas["last_reading"]["hw_timestamp"])
    truth = sim.copper.truth_register(gas["id"], at)
    assert gas["last_reading"]["value"] == pytest.approx(truth * 100)
    bulk = (await api.get(f"/partner/{ENTERPRISE_ID}/bulk")).body
    row = next(r for r in bulk["results"] if r["meter_id"] == gas["id"])
    assert set(row) == {"meter_id", "meter_type", "value", "timestamp"}
    assert row["value"] == truth


async def test_bulk_pages_follow_next_and_skip_silent_meters(
    sim: Simulator, api: Api
) -> None:
    """bulk: pages linked by ``next`` (a path from the origin); only recent meters."""
    await api.enterprise_login()
    url = f"{sim.url('copper')}/partner/{ENTERPRISE_ID}/bulk?limit=1000"
    seen: list[str] = []
    pages = 0
    while url:
        async with api.session.get(
            URL(url, encoded=True), headers={"Authorization": f"Bearer {api.token}"}
        ) as response:
            body = await response.json()
        pages += 1
        seen += [r["meter_id"] for r in body["results"]]
        url = f"{sim.base_url}{body['next']}" if body["next"] else ""
    assert pages == 3  # 200+ meters, at most 100 a page
    meters = sim.copper.meters_of_enterprise(ENTERPRISE_ID)
    silent = {m.id for m in meters if m.silent_from is not None}
    assert silent
    assert seen == [m.id for m in meters if m.id not in silent]


async def test_readings_and_usage_agree_with_ground_truth(
    sim: Simulator, api: Api
) -> None:
    """Readings every 15 min; usage between two readings = their value difference."""
    await api.enterprise_login()
    meter = sim.copper.meters_of_enterprise(ENTERPRISE_ID)[2]  # water, raw x100
    window = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-02T03:00:00Z"}
    encoded = quote_id(meter.id)
    readings = await api.get(
        f"/partner/{ENTERPRISE_ID}/meter/{encoded}/readings", window
    )
    rows = readings.body["results"]
    assert len(rows) == 13
    assert set(rows[0]) == {"time", "actual", "value"}
    usage = await api.get(usage_path(meter.id, enterprise=True), window)
    by_time = {r["time"]: r["value"] for r in rows}
    for row in usage.body["results"][1:]:
        at = datetime.fromisoformat(row["time"])
        before = (at - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        exact = Decimal(repr(by_time[row["time"]])) - Decimal(repr(by_time[before]))
        assert Decimal(repr(row["usage"])) == exact
        assert row["usage"] == sim.copper.truth_usage(
            meter.id, at - timedelta(hours=1), at
        )


async def test_late_publishing_and_register_jumps(sim: Simulator, api: Api) -> None:
    """publish_late nulls the hidden buckets until released; a jump is x100 in value only."""
    await api.app_login()
    hour = (datetime(2026, 11, 2, 1, tzinfo=UTC), datetime(2026, 11, 2, 2, tzinfo=UTC))
    # Hide the readings inside the hour: its bucket has no ends, its neighbours do.
    sim.copper.publish_late(
        hour[0] + timedelta(minutes=15), hour[1], meter_id=HOME_ELECTRIC_ID
    )
    window = {"start": "2026-11-02T01:00:00Z", "end": "2026-11-02T03:00:00Z"}
    rows = (await api.get(usage_path(HOME_ELECTRIC_ID), window)).body["results"]
    assert [r["usage"] is None for r in rows] == [False, True, False]
    sim.copper.release_late()
    sim.copper.register_jump(HOME_ELECTRIC_ID, hour[1], hour[1] + timedelta(minutes=1))
    rows = (await api.get(usage_path(HOME_ELECTRIC_ID), window)).body["results"]
    assert rows[1]["value"] == pytest.approx(
        sim.copper.truth_register(HOME_ELECTRIC_ID, hour[1]) * 100
    )
    assert rows[1]["usage"] == sim.copper.truth_usage(HOME_ELECTRIC_ID, *hour)
    assert rows[0]["value"] == sim.copper.truth_register(HOME_ELECTRIC_ID, hour[0])


# --------------------------------------------------------------------------- budgets and faults


async def test_hourly_budget_answers_429_with_retry_after(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    """100 requests per hour: the 101st is 429; the window rolls with the clock."""
    await api.app_login()
    for _ in range(100):
        assert (await api.get("/app/state")).status == 200
        clock.advance(timedelta(seconds=1))
    refused = await api.get("/app/state")
    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(3600 - 100)
    assert sim.copper.used(DEMO_EMAIL, timedelta(hours=1)) == 100
    clock.advance(timedelta(seconds=3600 - 100))
    assert (await api.get("/app/state")).status == 200


async def test_daily_budget_counts_the_phone_app(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    """1,000 per rolling day, shared with the user's phone app (``spend``)."""
    await api.app_login()
    sim.copper.hourly_limit = 0  # off, to reach the daily budget quickly
    sim.copper.spend(DEMO_EMAIL, 999)
    clock.advance(timedelta(hours=2))
    assert (await api.get("/app/state")).status == 200
    refused = await api.get("/app/state")
    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(22 * 3600)


async def test_faults_use_the_shared_knobs(sim: Simulator, api: Api) -> None:
    """500, malformed JSON, missing fields, 401 and 429 land on the next request."""
    await api.app_login()
    sim.faults.add("http_500", cloud="copper")
    assert (await api.get("/app/state")).status == 500
    sim.faults.add("malformed_json", cloud="copper")
    assert isinstance((await api.get("/app/state")).body, str)
    sim.faults.add("missing_fields", cloud="copper")
    damaged = (await api.get(f"/app/instant/{HOME_PREMISE_ID}")).body["results"]
    assert "id" not in damaged[0] and "instant_power" not in damaged[1]
    sim.faults.add("http_401", cloud="copper")
    assert (await api.get("/app/state")).status == 401
    sim.faults.add("http_429", cloud="copper")
    assert (await api.get("/app/state")).headers["Retry-After"] == "60"
    sim.faults.add("http_500", cloud="copper", path=r"/oauth/token")
    reply = await api.token_request({"grant_type": "client_credentials"})
    assert reply.status == 500


def test_cli_prints_the_copper_credentials() -> None:
    """``python -m tests.simulator`` serves Copper and prints its demo credentials."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            lines = [process.stdout.readline() for _ in range(4)]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    copper = next(line for line in lines if line.startswith("Copper Labs:"))
    assert "/copper/api/v2 " in copper
    for part in (
        "auth_url=http://127.0.0.1:",
        f"{AUTH_PREFIX} ",
        f"e-mail={DEMO_EMAIL}",
        f"code={DEMO_EMAIL_CODE}",
        f"client_id={ENTERPRISE_CLIENT_ID}",
        f"client_secret={ENTERPRISE_CLIENT_SECRET}",
        f"enterprise_id={ENTERPRISE_ID}",
    ):
        assert part in copper


def test_determinism_and_monotonic_registers() -> None:
    """Two simulators agree; registers never decrease; usage is never negative."""
    first, second = Simulator(now=lambda: NOW), Simulator(now=lambda: NOW)
    start, end = datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    for meter in first.copper.meters_of_enterprise(ENTERPRISE_ID)[:40]:
        hours = first.copper.truth_hourly(meter.id, start, end)
        assert hours == second.copper.truth_hourly(meter.id, start, end)
        assert len(hours) == 48
        assert min(hours.values()) >= 0
        assert sum(hours.values()) > 0
