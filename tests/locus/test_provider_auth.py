"""Locus Energy OAuth against the simulator: grants, renewal, rotation, fallbacks.

The token endpoint lives at the API URL's origin (`/oauth/token`), takes a form,
and answers the password, refresh_token and client_credentials grants. Renewal
must be silent (before expiry, or once after a 401) and must never turn a
refusal of an entity (403) into a login problem.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    InvalidResponse,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.locus import (
    DEFAULT_TOKEN_LIFETIME,
    LocusProvider,
)
from custom_components.cloud_energy_meters.providers.model import Account
from tests.provider_factory import LOCUS_CLIENT_CREDENTIALS, MakeProvider, account_state
from tests.simulator import Simulator
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
    OTHER_PARTNER_ID,
)
from tests.stub import StubServer

DEMO_ACCOUNT = f"{DEMO_CLIENT_ID}:{DEMO_USERNAME}"
SITES_PATH = f"/partners/{DEMO_PARTNER_ID}/sites"
TOKEN = "/oauth/token"
HOUR = timedelta(seconds=3600)


def requests(simulator: Simulator) -> list[tuple[str, str, int]]:
    """Return (method, path, status) of every Locus request, oldest first."""
    return [(r.method, r.path, r.status) for r in simulator.log_for("locus")]


def grants(simulator: Simulator) -> list[tuple[str, int]]:
    """Return (grant_type, status) of every token request, oldest first."""
    return [
        (r.body["grant_type"], r.status)
        for r in simulator.log_for("locus")
        if r.path == TOKEN
    ]


def spy_refresh_tokens(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Record the refresh token of every refresh_token grant the simulator receives.

    The request log masks refresh tokens, so the grant itself is watched.
    """
    sent: list[str] = []
    original = simulator.locus._refresh_grant

    def spy(client_id: str, token: str, now: datetime) -> dict[str, Any]:
        sent.append(token)
        return original(client_id, token, now)

    monkeypatch.setattr(simulator.locus, "_refresh_grant", spy)
    return sent


def refresh_token_of(provider: LocusProvider) -> str:
    """Return the refresh token the provider holds now."""
    token = provider.state.tokens.token
    assert token is not None
    assert token.refresh_token is not None
    return token.refresh_token


async def raw_refresh(simulator: Simulator, locus: LocusProvider, token: str) -> int:
    """POST a refresh_token grant with `token` ourselves and return the status."""
    async with locus.session.post(
        f"{simulator.base_url}{TOKEN}",
        data={
            "grant_type": "refresh_token",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "refresh_token": token,
        },
    ) as response:
        return response.status


async def test_password_grant(simulator: Simulator, locus: LocusProvider) -> None:
    """Login POSTs the password grant as a form to the API origin's /oauth/token.

    The API URL has a path (/locus/v3) the token URL must not inherit; the account
    is named by partner and user, and the token then serves the API calls.
    """
    assert await locus.async_login() == Account(
        id=f"{DEMO_PARTNER_ID}:{DEMO_USERNAME}",
        name=f"{DEMO_USERNAME} (partner {DEMO_PARTNER_ID})",
    )
    await locus.async_list_sites()
    assert requests(simulator) == [
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 200),
    ]
    grant, call = simulator.log_for("locus")
    assert grant.cloud == "locus"
    # The simulator only reads forms (it refuses JSON): the body parsed as a form.
    assert grant.body == {
        "grant_type": "password",
        "username": DEMO_USERNAME,
        "password": "***",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": "***",
    }
    assert grant.account == call.account == DEMO_ACCOUNT
    token = locus.state.tokens.token
    assert token is not None
    assert token.access_token in simulator.locus._tokens
    assert token.refresh_token in simulator.locus._refresh


async def test_token_url_is_the_origin(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A trailing slash or a deeper API path still leads to the origin's /oauth/token."""
    provider = make_provider("locus", api_url=simulator.url("locus") + "/")
    await provider.async_login()
    await provider.async_list_sites()
    assert requests(simulator) == [("POST", TOKEN, 200), ("GET", SITES_PATH, 200)]


async def test_login_proves_credentials_again(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """Every async_login asks for a new token, even with a fresh one cached."""
    await locus.async_login()
    first = locus.state.tokens.token
    await locus.async_login()
    assert grants(simulator) == [("password", 200), ("password", 200)]
    assert locus.state.tokens.token is not first


async def test_client_credentials_grant(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """Without a username the client-credentials grant is used: no refresh token."""
    provider = make_provider(
        "locus", **LOCUS_CLIENT_CREDENTIALS, partner_id=str(DEMO_PARTNER_ID)
    )
    assert await provider.async_login() == Account(
        id=f"{DEMO_PARTNER_ID}:{CC_CLIENT_ID}",
        name=f"{CC_CLIENT_ID} (partner {DEMO_PARTNER_ID})",
    )
    sites = await provider.async_list_sites()
    assert [site.id for site in sites] == [
        str(site.id) for site in simulator.locus.sites_of(DEMO_PARTNER_ID)
    ]
    grant = simulator.log_for("locus")[0]
    assert grant.body == {
        "grant_type": "client_credentials",
        "client_id": CC_CLIENT_ID,
        "client_secret": "***",
    }
    assert {r.account for r in simulator.log_for("locus")} == {CC_CLIENT_ID}
    token = provider.state.tokens.token
    assert token is not None
    assert token.refresh_token is None


async def test_partner_id_given_as_a_number(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A partner id typed in a number box (a float) names the same partner."""
    provider = make_provider("locus", partner_id=float(DEMO_PARTNER_ID))
    await provider.async_list_sites()
    assert requests(simulator)[-1] == ("GET", SITES_PATH, 200)


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"client_secret": "not-the-secret"}, 401),  # invalid_client
        ({"client_id": "stranger"}, 401),  # invalid_client
        ({"password": "not-the-password"}, 401),  # invalid_grant
        ({"username": "nobody@example.com"}, 401),  # invalid_grant
        # The client-credentials client may not use the password grant …
        ({"client_id": CC_CLIENT_ID, "client_secret": CC_CLIENT_SECRET}, 400),
        # … and the password client may not use client credentials.
        ({"username": "", "password": ""}, 400),
    ],
    ids=[
        "wrong-secret",
        "unknown-client",
        "wrong-password",
        "unknown-user",
        "password-grant-not-allowed",
        "client-credentials-not-allowed",
    ],
)
async def test_refused_credentials(
    simulator: Simulator,
    make_provider: MakeProvider,
    overrides: dict[str, str],
    status: int,
) -> None:
    """Refused grants raise AuthError (reauth), whatever call comes first.

    The message carries neither the secret nor the password that were sent.
    """
    provider = make_provider("locus", **overrides)
    with pytest.raises(AuthError) as caught:
        await provider.async_login()
    with pytest.raises(AuthError):
        await provider.async_list_sites()
    assert requests(simulator) == [("POST", TOKEN, status)] * 2
    for secret in ("not-the-secret", "not-the-password", DEMO_PASSWORD):
        assert secret not in str(caught.value)


async def test_malformed_grant_is_not_an_auth_error(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A grant refused as malformed (400 invalid_request) is no proof of bad credentials."""
    provider = make_provider("locus", password="")
    with pytest.raises(RequestRejected) as caught:
        await provider.async_login()
    assert (caught.value.status, caught.value.detail) == (400, "invalid_request")
    assert grants(simulator) == [("password", 400)]


async def test_renewed_before_expiry_with_the_refresh_token(
    simulator: Simulator, sim_clock: FakeClock, make_provider: MakeProvider
) -> None:
    """Within the margin before expires_in runs out, the refresh grant renews the token.

    The cloud's clock moves with ours: it would still accept the old token, so the
    renewal happened before expiry (no 401 anywhere) and used no password.
    """
    simulator.locus.token_lifetime = timedelta(minutes=10)
    clock = FakeClock(datetime.now(UTC))
    provider = make_provider("locus", state=account_state("locus", clock=clock))
    await provider.async_login()
    token = provider.state.tokens.token
    assert token is not None
    assert token.expires_at is not None
    assert (
        timedelta(minutes=9, seconds=59)
        < token.expires_at - clock()
        <= timedelta(minutes=10, seconds=1)
    )
    for moved in (timedelta(seconds=539), timedelta(seconds=2)):
        clock.advance(moved)
        sim_clock.advance(moved)
        await provider.async_list_sites()
    assert requests(simulator) == [
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 200),
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 200),
    ]
    assert grants(simulator) == [("password", 200), ("refresh_token", 200)]
    renewed = provider.state.tokens.token
    assert renewed is not None
    assert renewed.access_token != token.access_token
    assert renewed.refresh_token == token.refresh_token
    assert provider.state.tokens.renewals == 1


async def test_rotated_refresh_token_is_used_next_time(
    simulator: Simulator,
    make_provider: MakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With rotation, each refresh sends the refresh token the previous one returned."""
    simulator.locus.rotate_refresh_tokens = True
    sent = spy_refresh_tokens(simulator, monkeypatch)
    clock = FakeClock(datetime.now(UTC))
    provider = make_provider("locus", state=account_state("locus", clock=clock))
    await provider.async_login()
    refresh_tokens = [refresh_token_of(provider)]
    for _ in range(2):
        clock.advance(HOUR)
        await provider.async_list_sites()
        refresh_tokens.append(refresh_token_of(provider))
    assert len(set(refresh_tokens)) == 3
    assert sent == refresh_tokens[:2]
    assert grants(simulator) == [
        ("password", 200),
        ("refresh_token", 200),
        ("refresh_token", 200),
    ]
    # The rotated-out tokens are dead: sending one again would be refused.
    assert await raw_refresh(simulator, provider, refresh_tokens[0]) == 400
    assert await raw_refresh(simulator, provider, refresh_tokens[1]) == 400


async def test_refresh_token_kept_without_rotation(
    simulator: Simulator,
    make_provider: MakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refresh that returns no refresh token keeps the old one, used again next time."""
    sent = spy_refresh_tokens(simulator, monkeypatch)
    clock = FakeClock(datetime.now(UTC))
    provider = make_provider("locus", state=account_state("locus", clock=clock))
    await provider.async_login()
    first = provider.state.tokens.token
    assert first is not None
    for _ in range(2):
        clock.advance(HOUR)
        await provider.async_list_sites()
        token = provider.state.tokens.token
        assert token is not None
        assert token.refresh_token == first.refresh_token
    assert sent == [first.refresh_token] * 2
    assert grants(simulator) == [
        ("password", 200),
        ("refresh_token", 200),
        ("refresh_token", 200),
    ]


async def test_refused_refresh_falls_back_to_the_password(
    simulator: Simulator, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused refresh is followed by one password grant, then the call succeeds.

    Silently: no exception, nothing above DEBUG in the log.
    """
    clock = FakeClock(datetime.now(UTC))
    provider = make_provider("locus", state=account_state("locus", clock=clock))
    await provider.async_login()
    simulator.locus.refuse_refresh()
    clock.advance(HOUR)
    sites = await provider.async_list_sites()
    assert len(sites) == len(simulator.locus.sites_of(DEMO_PARTNER_ID))
    assert grants(simulator) == [
        ("password", 200),
        ("refresh_token", 400),
        ("password", 200),
    ]
    assert requests(simulator)[-1] == ("GET", SITES_PATH, 200)
    assert not [r for r in caplog.records if r.levelno > 10]
    # The new password grant brought a new refresh token, used once refreshes work.
    simulator.locus.allow_refresh()
    clock.advance(HOUR)
    await provider.async_list_sites()
    assert grants(simulator)[-1] == ("refresh_token", 200)


async def test_client_credentials_renewed_by_client_credentials(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """Client-credentials tokens have no refresh token: renewal asks the same grant."""
    clock = FakeClock(datetime.now(UTC))
    provider = make_provider(
        "locus", **LOCUS_CLIENT_CREDENTIALS, state=account_state("locus", clock=clock)
    )
    await provider.async_login()
    clock.advance(HOUR)
    await provider.async_list_sites()
    assert grants(simulator) == [
        ("client_credentials", 200),
        ("client_credentials", 200),
    ]
    assert requests(simulator) == [
        ("POST", TOKEN, 200),
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 200),
    ]


@pytest.mark.parametrize("cause", ["expired-at-the-cloud", "refused-once"])
async def test_401_renews_once_then_succeeds(
    simulator: Simulator,
    sim_clock: FakeClock,
    locus: LocusProvider,
    cause: str,
) -> None:
    """A token the cloud refuses (401) is renewed once, silently, and the call retried."""
    await locus.async_login()
    if cause == "expired-at-the-cloud":
        sim_clock.advance(HOUR)  # expired for the cloud, not yet for us
    else:
        simulator.faults.add("http_401", cloud="locus", path="/sites$")
    sites = await locus.async_list_sites()
    assert [site.id for site in sites] == [
        str(site.id) for site in simulator.locus.sites_of(DEMO_PARTNER_ID)
    ]
    assert requests(simulator) == [
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 401),
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 200),
    ]
    assert grants(simulator) == [("password", 200), ("refresh_token", 200)]


async def test_new_token_refused_again_is_not_reauth(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """A just-issued token refused again is a refusal of the call, not bad credentials."""
    await locus.async_login()
    simulator.faults.add("http_401", 2, cloud="locus", path="/sites$")
    with pytest.raises(RequestRejected) as caught:
        await locus.async_list_sites()
    assert not isinstance(caught.value, AuthError)
    assert requests(simulator) == [
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 401),
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 401),
    ]


async def test_revoked_user_fails_on_the_next_renewal(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """A revoked user: token refused, refresh refused, password refused: AuthError."""
    await locus.async_login()
    simulator.locus.revoke_user(DEMO_USERNAME)
    with pytest.raises(AuthError):
        await locus.async_list_sites()
    assert requests(simulator) == [
        ("POST", TOKEN, 200),
        ("GET", SITES_PATH, 401),
        ("POST", TOKEN, 400),
        ("POST", TOKEN, 401),
    ]
    assert grants(simulator) == [
        ("password", 200),
        ("refresh_token", 400),
        ("password", 401),
    ]


async def test_forbidden_entity_is_rejected_without_renewal(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A 403 on a data path raises RequestRejected, never AuthError, and keeps the token.

    The document: "403 Forbidden … Authenticating will make no difference": the
    client-credentials client may read partner 4242 only, so Cedar Lane's data
    (partner 4343) is forbidden to it, and no token request follows the 403.
    """
    demo = make_provider("locus", partner_id=OTHER_PARTNER_ID)
    inventory = await demo.async_discover([str(CEDAR_SITE_ID)])
    channels = [c for c in inventory.channels if c.device_id is not None]
    assert channels
    provider = make_provider("locus", **LOCUS_CLIENT_CREDENTIALS)
    await provider.async_login()
    token = provider.state.tokens.token
    simulator.clear_log()
    with pytest.raises(RequestRejected) as caught:
        await provider.async_latest(channels)
    assert not isinstance(caught.value, AuthError)
    assert caught.value.status == 403
    assert [(r.path, r.status) for r in simulator.log] == [
        (f"/components/{channels[0].ref[1]}/data", 403)
    ]
    assert provider.state.tokens.token is token


def test_account_key() -> None:
    """Requests are counted per API client and user: partner and case do not matter."""
    url = "https://api.locusenergy.com/v3"
    demo = {"client_id": DEMO_CLIENT_ID, "username": DEMO_USERNAME, "partner_id": 1}
    key = LocusProvider.account_key(url, demo)
    assert key == LocusProvider.account_key(
        url + "/", demo | {"partner_id": 2, "username": DEMO_USERNAME.upper()}
    )
    assert key != LocusProvider.account_key(url, demo | {"username": "other"})
    assert key != LocusProvider.account_key(url, demo | {"client_id": CC_CLIENT_ID})
    assert key != LocusProvider.account_key("http://127.0.0.1:1/v3", demo)
    assert LocusProvider.account_key(
        url, {"client_id": CC_CLIENT_ID, "username": ""}
    ) != LocusProvider.account_key(url, {"client_id": CC_CLIENT_ID, "username": "x"})


@pytest.mark.parametrize(
    "body",
    [{}, {"access_token": 42}, ["access_token"], {"token": "x"}],
)
async def test_token_answer_without_access_token(
    stub: StubServer, make_provider: MakeProvider, body: object
) -> None:
    """A token answer without a string access_token raises InvalidResponse."""
    stub.locus_auth(body)
    with pytest.raises(InvalidResponse):
        await make_provider("locus", api_url=f"{stub.url}/v3").async_login()
    assert [(m, p) for m, p, _ in stub.requests] == [("POST", TOKEN)]


@pytest.mark.parametrize(
    "lifetime",
    [None, "soon", True, 1e308, float("inf"), float("nan"), -1, 0, 10**30, [3600]],
)
async def test_missing_expires_in_assumes_an_hour(
    stub: StubServer, make_provider: MakeProvider, lifetime: object
) -> None:
    """Without a usable expires_in the token is taken to last the documented hour."""
    body: dict[str, Any] = {"access_token": "stub-token"}
    if lifetime is not None:
        body["expires_in"] = lifetime
    stub.locus_auth(body)
    provider = make_provider("locus", api_url=f"{stub.url}/v3")
    before = datetime.now(UTC)
    await provider.async_login()
    token = provider.state.tokens.token
    assert token is not None
    assert token.expires_at is not None
    lifetime_s = timedelta(seconds=DEFAULT_TOKEN_LIFETIME)
    assert before + lifetime_s <= token.expires_at <= datetime.now(UTC) + lifetime_s
    assert token.refresh_token is None


async def test_token_that_expires_while_waiting_for_the_turn_is_not_sent(
    simulator: Simulator, sim_clock: FakeClock, make_provider: MakeProvider
) -> None:
    """A request that took its token, then waited for its turn past expiry, renews.

    Another request of the account holds the one-at-a-time turn while the clock
    passes the token's expiry: the waiting request must not go out with that token
    (a 401), it takes the renewed one.
    """
    provider = make_provider("locus", state=account_state("locus", clock=sim_clock))
    await provider.async_login()
    simulator.clear_log()
    async with provider.state.limiter.turn():  # another request of the account
        waiting = asyncio.create_task(provider.async_list_sites())
        for _ in range(5):  # it takes the cached token, then waits for the turn
            await asyncio.sleep(0)
        sim_clock.advance(HOUR + timedelta(minutes=1))
    await waiting
    assert requests(simulator) == [("POST", TOKEN, 200), ("GET", SITES_PATH, 200)]
    assert grants(simulator) == [("refresh_token", 200)]
