"""Copper Labs sign-ins: the app's PKCE code flow with rotation, the enterprise client."""

from base64 import urlsafe_b64encode
from datetime import timedelta
import hashlib
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.providers.copper import (
    APP_SCOPE,
    AUDIENCE,
    PUBLIC_CLIENT_ID,
    REDIRECT_URI,
    CopperProvider,
    code_from,
    sign_in_link,
)
from custom_components.cloud_energy_meters.providers.errors import AuthError
from tests.provider_factory import MakeProvider, account_state
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.copper import DEMO_EMAIL, HOME_PREMISE_ID

from .conftest import MakeApp, auth_url, sign_in


def test_sign_in_link_carries_a_fresh_s256_challenge() -> None:
    """The link has NOTES' query; its challenge is the verifier's, which it omits."""
    link, verifier = sign_in_link("https://auth.example/tenant")
    again, other = sign_in_link("https://auth.example/tenant")
    parts = urlsplit(link)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    digest = hashlib.sha256(verifier.encode()).digest()
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://auth.example/tenant/authorize"
    )
    assert query == {
        "response_type": "code",
        "code_challenge": urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "client_id": PUBLIC_CLIENT_ID,
        "scope": APP_SCOPE,
        "audience": AUDIENCE,
        "redirect_uri": REDIRECT_URI,
    }
    assert 43 <= len(verifier) <= 128
    assert verifier not in link
    assert other != verifier and again != link


@pytest.mark.parametrize(
    ("pasted", "code"),
    [
        (f"{REDIRECT_URI}?code=Jf1bhR2_2L0XwPRY&state=x", "Jf1bhR2_2L0XwPRY"),
        (f"  {REDIRECT_URI}?state=x&code=abc-DEF_123  ", "abc-DEF_123"),
        ("Jf1bhR2_2L0XwPRY", "Jf1bhR2_2L0XwPRY"),
        ("https://example.com/cb#code=frag_Code1", "frag_Code1"),
        (f"{REDIRECT_URI}?error=access_denied", None),
        ("", None),
        ("hello world!", None),
        ("<script>", None),
        ("code=", None),
        ("x" * 5000, None),
    ],
)
def test_code_from_a_pasted_address_or_code(pasted: str, code: str | None) -> None:
    """An address's `code`, a bare code, or nothing that looks like one."""
    assert code_from(pasted) == code


async def test_the_whole_app_sign_in_and_its_premises(
    session: ClientSession, simulator: Simulator, make_app: MakeApp
) -> None:
    """Pasting the address, or the bare code, signs in; the account is named."""
    for bare in (False, True):
        address, verifier = await sign_in(session, simulator)
        code = code_from(address)
        assert code is not None
        provider = make_app("")
        refresh = await provider.async_exchange(
            code if bare else code_from(address) or "", verifier
        )
        signed = make_app(refresh)
        account = await signed.async_login()
        assert account.id == f"app:{HOME_PREMISE_ID}"
        sites = await signed.async_list_sites()
        assert [site.name for site in sites] == ["Home", "Cabin"]


async def test_a_code_is_refused_expired_reused_or_with_a_wrong_verifier(
    session: ClientSession,
    simulator: Simulator,
    sim_clock: FakeClock,
    make_app: MakeApp,
) -> None:
    """Auth0's refusals of the exchange are AuthError (the flow says invalid_auth)."""
    address, verifier = await sign_in(session, simulator)
    code = code_from(address)
    assert code is not None
    _, other_verifier = sign_in_link(auth_url(simulator))
    with pytest.raises(AuthError, match="open the sign-in link again"):
        await make_app("").async_exchange(code, other_verifier)  # PKCE mismatch
    with pytest.raises(AuthError):
        await make_app("").async_exchange(code, verifier)  # used once already

    address, verifier = await sign_in(session, simulator)
    sim_clock.advance(simulator.copper.code_lifetime + timedelta(seconds=1))
    with pytest.raises(AuthError, match="open the sign-in link again"):
        await make_app("").async_exchange(code_from(address) or "", verifier)
    with pytest.raises(AuthError):
        await make_app("").async_exchange("garbage", verifier)


async def test_rotation_is_reported_at_once_and_survives_a_restart(
    app: CopperProvider, make_app: MakeApp, simulator: Simulator
) -> None:
    """Each refresh's new token reaches the callback; a restart with it signs in."""
    saved: list[str] = []
    app.on_credentials = lambda c: (
        saved.append(c["refresh_token"]) if "refresh_token" in c else None
    )
    first = app.credentials["refresh_token"]
    await app.async_login()
    assert len(saved) == 1
    assert saved[0] != first
    await app.async_login()
    assert len(saved) == 2
    assert saved[1] != saved[0]

    # A restart: a new provider and state, from what was saved last.
    restarted = make_app(saved[-1], state=account_state("copper"))
    restarted.on_credentials = lambda c: (
        saved.append(c["refresh_token"]) if "refresh_token" in c else None
    )
    assert (await restarted.async_login()).id == f"app:{HOME_PREMISE_ID}"
    assert len(saved) == 3
    assert [s.id for s in await restarted.async_list_sites()]


async def test_a_retired_refresh_token_is_reuse_and_revokes_the_family(
    app: CopperProvider, make_app: MakeApp
) -> None:
    """Presenting a rotated-out token is AuthError, and so is the newest one after."""
    saved: list[str] = []
    app.on_credentials = lambda c: (
        saved.append(c["refresh_token"]) if "refresh_token" in c else None
    )
    first = app.credentials["refresh_token"]
    await app.async_login()
    stale = make_app(first, state=account_state("copper"))
    with pytest.raises(AuthError, match="sign in again"):
        await stale.async_login()
    newest = make_app(saved[-1], state=account_state("copper"))
    with pytest.raises(AuthError):
        await newest.async_login()


async def test_rotation_off_keeps_the_refresh_token(
    app: CopperProvider, simulator: Simulator
) -> None:
    """The official script's tenant answers no new refresh token: the old one stays."""
    simulator.copper.rotate_refresh_tokens = False
    saved: list[str] = []
    app.on_credentials = lambda c: (
        saved.append(c["refresh_token"]) if "refresh_token" in c else None
    )
    await app.async_login()
    await app.async_login()
    assert saved == []
    token = app.state.tokens.token
    assert token is not None
    assert token.refresh_token == app.credentials["refresh_token"]


async def test_a_revoked_user_must_sign_in_again(
    app: CopperProvider, simulator: Simulator
) -> None:
    """A refused refresh is AuthError (reauth), not an endless retry."""
    await app.async_list_sites()
    simulator.copper.revoke_user(DEMO_EMAIL)
    app.cache.clear()  # later: the state answer is no longer fresh
    with pytest.raises(AuthError):
        await app.async_list_sites()
    assert len([r for r in simulator.log_for("copper") if "/app/" in r.path]) == 2


async def test_enterprise_sign_in_and_its_refusals(
    enterprise: CopperProvider, make_provider: MakeProvider
) -> None:
    """Client credentials with the audience; a wrong secret or enterprise is refused."""
    account = await enterprise.async_login()
    assert account.id == "enterprise:demo-enterprise"
    with pytest.raises(AuthError, match="client id or secret"):
        await make_provider("copper", client_secret="wrong").async_login()
    # Another enterprise's id: the grant works, the first listing is refused.
    other = make_provider("copper", enterprise_id="other-enterprise")
    await other.async_login()
    with pytest.raises(AuthError, match="refuses this account"):
        await other.async_list_sites()


async def test_an_expired_enterprise_token_is_renewed_once(
    enterprise: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """A 401 gets a new token and the request again; the user sees nothing."""
    await enterprise.async_login()
    sim_clock.advance(simulator.copper.client_token_lifetime + timedelta(minutes=1))
    assert await enterprise.async_list_sites()
    assert enterprise.state.tokens.renewals == 1
    paths = [r.path for r in simulator.log_for("copper")]
    # The listing refused (401), then asked again with the new token: the premise
    # page, then the empty one after it.
    assert paths.count("/partner/demo-enterprise/premise") == 3


async def test_the_secret_of_a_changed_client_is_refused(
    enterprise: CopperProvider, simulator: Simulator
) -> None:
    """The client's secret changed: one new token is tried, then AuthError."""
    await enterprise.async_list_sites()
    simulator.copper.set_client_secret("copper-enterprise-demo", "new")
    enterprise.cache.clear()  # later: the premise answer is no longer fresh
    with pytest.raises(AuthError):
        await enterprise.async_list_sites()
