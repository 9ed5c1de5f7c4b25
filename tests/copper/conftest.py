"""Copper Labs providers of the simulator's accounts: a Copper app user, an enterprise.

The Copper app user signs in as a person would: the sign-in link, the e-mail and
its one-time code posted to the simulator's Auth0 stand-in, the address it
redirects to pasted back (`code_from`), the code exchanged.
"""

from collections.abc import Callable
from typing import Any

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.providers.copper import (
    CONF_REFRESH_TOKEN,
    CopperProvider,
    code_from,
    sign_in_link,
)
from tests.provider_factory import MakeProvider
from tests.simulator import Simulator
from tests.simulator.copper import AUTH_PREFIX, DEMO_EMAIL, DEMO_EMAIL_CODE


def auth_url(simulator: Simulator) -> str:
    """Return the simulator's Auth0 tenant (the provider's `auth_url` setting)."""
    return f"{simulator.base_url}{AUTH_PREFIX}"


async def sign_in(
    session: ClientSession,
    simulator: Simulator,
    email: str = DEMO_EMAIL,
    otp: str = DEMO_EMAIL_CODE,
) -> tuple[str, str]:
    """Open a fresh sign-in link and sign in; return (redirected address, verifier)."""
    link, verifier = sign_in_link(auth_url(simulator))
    async with session.get(link) as page:
        assert page.status == 200, await page.text()
    async with session.post(
        link, data={"email": email, "otp": otp}, allow_redirects=False
    ) as answer:
        assert answer.status == 302, await answer.text()
        return answer.headers["Location"], verifier


type MakeApp = Callable[..., Any]


@pytest.fixture
def make_app(make_provider: MakeProvider, simulator: Simulator) -> MakeApp:
    """Return a factory of Copper app providers holding a given refresh token."""

    def make(refresh_token: str, **changes: Any) -> CopperProvider:
        credentials = {
            "client_id": "",
            "client_secret": "",
            "enterprise_id": "",
            CONF_REFRESH_TOKEN: refresh_token,
        }
        return make_provider(  # type: ignore[no-any-return]
            "copper", **(credentials | changes)
        )

    return make


@pytest.fixture
async def app(
    session: ClientSession, simulator: Simulator, make_app: MakeApp
) -> CopperProvider:
    """Return a Copper app provider of the demo user, signed in (code exchanged)."""
    address, verifier = await sign_in(session, simulator)
    signing = make_app("")
    code = code_from(address)
    assert code is not None
    refresh = await signing.async_exchange(code, verifier)
    provider: CopperProvider = make_app(refresh, state=signing.state)
    return provider


@pytest.fixture
def enterprise(make_provider: MakeProvider) -> CopperProvider:
    """Return a provider of the simulator's demo enterprise (not signed in yet)."""
    return make_provider("copper")  # type: ignore[no-any-return]
