"""Climkit login and tokens against the simulator: errors, silent renewal, single flight."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.providers.climkit import (
    TOKEN_LIFETIME_FALLBACK,
    ClimkitProvider,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    InvalidResponse,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.model import Account
from custom_components.cloud_energy_meters.providers.provider import AccountState
from custom_components.cloud_energy_meters.providers.ratelimit import (
    RateLimiter,
    RatePolicy,
)
from custom_components.cloud_energy_meters.providers.tokens import TokenCache
from tests.provider_factory import MakeProvider, account_state
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SITE_LAC, SITES
from tests.simulator.clock import FakeClock
from tests.stub import StubServer


def requests(simulator: Simulator) -> list[tuple[str, str, int]]:
    """Return (method, path, status) of every Climkit request, oldest first."""
    return [(r.method, r.path, r.status) for r in simulator.log_for("climkit")]


def auth_count(simulator: Simulator) -> int:
    """Return how many POST /auth the simulator saw."""
    return sum(1 for r in simulator.log_for("climkit") if r.path == "/auth")


async def test_login(simulator: Simulator, climkit: ClimkitProvider) -> None:
    """Login names the account by its username and keeps the token for what follows."""
    assert await climkit.async_login() == Account(id=DEMO_USERNAME, name=DEMO_USERNAME)
    await climkit.async_list_sites()
    assert requests(simulator) == [
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 200),
    ]
    auth = simulator.log_for("climkit")[0]
    assert auth.body == {"username": DEMO_USERNAME, "password": "***"}
    assert auth.account == DEMO_USERNAME


async def test_login_proves_credentials_again(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Every async_login logs in anew, even with a fresh token cached."""
    await climkit.async_login()
    await climkit.async_login()
    assert auth_count(simulator) == 2


async def test_account_id_is_case_insensitive(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """The account id (the entry's unique id) is the casefolded username."""
    simulator.climkit.add_user("Alice.Example", "alice-pw")
    provider = make_provider("climkit", username="Alice.Example", password="alice-pw")
    assert await provider.async_login() == Account(
        id="alice.example", name="Alice.Example"
    )
    assert ClimkitProvider.account_key(
        "https://api.climkit.io/api/v1", {"username": "Alice.Example"}
    ) == ClimkitProvider.account_key(
        "https://api.climkit.io/api/v1/", {"username": "alice.example"}
    )
    assert ClimkitProvider.account_key(
        "https://api.climkit.io/api/v1", {"username": "a"}
    ) != ClimkitProvider.account_key("http://127.0.0.1:1/api/v1", {"username": "a"})


async def test_wrong_password(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A wrong password raises AuthError, without the password in the message."""
    provider = make_provider("climkit", password="not-the-password")
    with pytest.raises(AuthError) as caught:
        await provider.async_login()
    assert "not-the-password" not in str(caught.value)
    assert requests(simulator) == [("POST", "/auth", 401)]


async def test_unknown_user(simulator: Simulator, make_provider: MakeProvider) -> None:
    """An unknown user raises AuthError, also when the first call is not a login."""
    provider = make_provider("climkit", username="nobody", password="whatever")
    with pytest.raises(AuthError):
        await provider.async_list_sites()
    assert requests(simulator) == [("POST", "/auth", 401)]


async def test_malformed_login_is_not_an_auth_error(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A login refused as malformed (400) is no proof of a wrong password: no reauth."""
    provider = make_provider("climkit", password=None)
    with pytest.raises(RequestRejected) as caught:
        await provider.async_login()
    assert caught.value.status == 400
    assert requests(simulator) == [("POST", "/auth", 400)]


async def test_revoked_user(simulator: Simulator, make_provider: MakeProvider) -> None:
    """A revoked user fails with AuthError: token refused, then the password too."""
    provider = make_provider("climkit")
    await provider.async_login()
    simulator.climkit.revoke(DEMO_USERNAME)
    with pytest.raises(AuthError):
        await provider.async_list_sites()
    assert requests(simulator) == [
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 401),
        ("POST", "/auth", 401),
    ]
    with pytest.raises(AuthError):
        await make_provider("climkit").async_login()


async def test_token_expiry_follows_valid_until(
    simulator: Simulator, sim_clock: FakeClock, climkit: ClimkitProvider
) -> None:
    """The cached token expires when the cloud's valid_until says (epoch ms)."""
    simulator.climkit.token_lifetime = timedelta(minutes=7)
    await climkit.async_login()
    token = climkit.state.tokens.token
    assert token is not None
    expected = sim_clock() + timedelta(minutes=7)
    assert token.expires_at is not None
    assert abs(token.expires_at - expected) < timedelta(milliseconds=1)
    assert token.expires_at.tzinfo is not None


async def test_missing_valid_until_assumes_14_minutes(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """Without valid_until the token is taken to last 14 minutes."""
    stub.climkit_auth(valid_until=False)
    provider = make_provider("climkit", api_url=stub.url)
    before = datetime.now(UTC)
    await provider.async_login()
    token = provider.state.tokens.token
    assert token is not None
    assert token.expires_at is not None
    assert (
        before + TOKEN_LIFETIME_FALLBACK
        <= token.expires_at
        <= datetime.now(UTC) + TOKEN_LIFETIME_FALLBACK
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"access_token": 42},
        ["access_token"],
        {"token": "x"},
        {"access_token": "abc\u0000def"},  # would inject into the header
        {"access_token": "abc\r\nX-Evil: 1"},
    ],
)
async def test_login_without_token_is_invalid(
    stub: StubServer, make_provider: MakeProvider, body: object
) -> None:
    """An /auth answer without a string access_token raises InvalidResponse."""
    stub.json("POST", "/auth", body)
    with pytest.raises(InvalidResponse):
        await make_provider("climkit", api_url=stub.url).async_login()


@pytest.mark.parametrize(
    "valid_until",
    [
        {"$date": float("inf")},
        {"$date": 10**30},
        {"$date": -(10**20)},
        "9999-12-31T23:59:59-14:00",
        "Europe/Zurich\u0000",
        [[[]]],
    ],
)
async def test_an_unreadable_valid_until_assumes_14_minutes(
    stub: StubServer, make_provider: MakeProvider, valid_until: object
) -> None:
    """A valid_until that is no time the sign-in can use: the documented lifetime."""
    stub.json("POST", "/auth", {"access_token": "t", "valid_until": valid_until})
    provider = make_provider("climkit", api_url=stub.url)
    before = datetime.now(UTC)
    await provider.async_login()
    token = provider.state.tokens.token
    assert token is not None
    assert token.expires_at is not None
    assert before + TOKEN_LIFETIME_FALLBACK <= token.expires_at


async def test_renewed_before_valid_until(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """Within the margin before valid_until, the next call logs in first: no 401 seen."""
    clock = FakeClock(datetime.now(UTC))
    provider = make_provider(
        "climkit", state=account_state("climkit", timedelta(seconds=60), clock=clock)
    )
    await provider.async_login()
    clock.advance(timedelta(minutes=13, seconds=59))
    await provider.async_list_sites()
    assert auth_count(simulator) == 1
    clock.advance(timedelta(seconds=2))  # 59 s left: inside the 60 s margin
    await provider.async_list_sites()
    assert requests(simulator) == [
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 200),
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 200),
    ]
    assert provider.state.tokens.renewals == 1


async def test_renewed_on_the_real_clock(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A short-lived token is renewed before it runs out, on the real clock too."""
    simulator.climkit.token_lifetime = timedelta(seconds=2)
    # Half the lifetime, at most 1 s: renewed once 1 s of the 2 s token is left.
    provider = make_provider(
        "climkit", state=account_state("climkit", timedelta(seconds=1), fraction=0.5)
    )
    await provider.async_login()
    await provider.async_list_sites()
    await asyncio.sleep(1.1)
    await provider.async_list_sites()
    assert [status for _, _, status in requests(simulator)] == [200] * 4
    assert auth_count(simulator) == 2


async def test_renewed_after_the_cloud_refuses_the_token(
    simulator: Simulator, sim_clock: FakeClock, climkit: ClimkitProvider
) -> None:
    """A token the cloud dropped is renewed once, silently, and the call succeeds."""
    await climkit.async_login()
    sim_clock.advance(timedelta(minutes=20))  # expired for the cloud, not for us
    sites = await climkit.async_list_sites()
    assert [site.id for site in sites] == [site.id for site in SITES]
    assert requests(simulator) == [
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 401),
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 200),
    ]
    assert len(simulator.climkit._tokens) == 2


async def test_concurrent_calls_log_in_once(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Calls that start together without a token share one login (single flight)."""
    sites, inventory, again = await asyncio.gather(
        climkit.async_list_sites(),
        climkit.async_discover([SITE_LAC.id]),
        climkit.async_list_sites(),
    )
    assert len(sites) == len(again) == len(SITES)
    assert [site.id for site in inventory.sites] == [SITE_LAC.id]
    assert auth_count(simulator) == 1
    assert simulator.log_for("climkit")[0].path == "/auth"
    assert all(r.status == 200 for r in simulator.log_for("climkit"))


async def test_concurrent_refusals_renew_once(
    simulator: Simulator, sim_clock: FakeClock, climkit: ClimkitProvider
) -> None:
    """Calls that all see their token refused renew it once between them."""
    await climkit.async_login()
    sim_clock.advance(timedelta(minutes=20))
    results = await asyncio.gather(*(climkit.async_list_sites() for _ in range(3)))
    assert all(len(sites) == len(SITES) for sites in results)
    assert auth_count(simulator) == 2
    statuses = [r.status for r in simulator.log_for("climkit") if r.path != "/auth"]
    assert statuses.count(401) == 3
    assert statuses.count(200) == 3


async def test_accounts_share_state_and_token(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """Two providers of one account state (two entries) use one token."""
    state = account_state("climkit")
    first = make_provider("climkit", state=state)
    second = make_provider("climkit", state=state)
    await first.async_login()
    await second.async_list_sites()
    assert auth_count(simulator) == 1
    assert DEMO_PASSWORD not in repr(state.tokens.token)


async def test_short_lived_tokens_sign_in_about_once_a_lifetime(
    simulator: Simulator, sim_clock: FakeClock, make_provider: MakeProvider
) -> None:
    """With 60-second tokens, an hour of requests every 5 s signs in once a minute.

    A fixed minute's margin made every request sign in first (each /auth a
    rate-limited request); 10 % of the lifetime lets each token serve 54 s.
    """
    simulator.climkit.token_lifetime = timedelta(seconds=60)
    provider = make_provider("climkit", state=account_state("climkit", clock=sim_clock))
    await provider.async_login()
    for _ in range(720):
        sim_clock.advance(timedelta(seconds=5))
        await provider.async_list_sites()
    log = simulator.log_for("climkit")
    sign_ins = sum(1 for r in log if r.path == "/auth")
    assert not any(r.status == 401 for r in log)
    assert sum(1 for r in log if r.path == "/all_installations") == 720
    # No token is used past its minute; each serves at least 54 s of the hour.
    assert 3600 // 60 <= sign_ins <= 3600 // 54 + 1


async def test_token_that_expires_while_waiting_for_the_turn_is_not_sent(
    simulator: Simulator, sim_clock: FakeClock, make_provider: MakeProvider
) -> None:
    """A request that took its token, then waited for its turn past expiry, logs in.

    Another request of the account holds the one-at-a-time turn (Climkit's real
    pacing) while the clock passes the token's expiry: no request goes out with it.
    """
    state = AccountState(
        limiter=RateLimiter(RatePolicy(max_concurrency=1)),
        tokens=TokenCache(clock=sim_clock),
    )
    provider = make_provider("climkit", state=state)
    await provider.async_login()
    simulator.clear_log()
    async with state.limiter.turn():  # another request of the account
        waiting = asyncio.create_task(provider.async_list_sites())
        for _ in range(5):  # it takes the cached token, then waits for the turn
            await asyncio.sleep(0)
        sim_clock.advance(timedelta(minutes=16))
    await waiting
    assert requests(simulator) == [
        ("POST", "/auth", 200),
        ("GET", "/all_installations", 200),
    ]
