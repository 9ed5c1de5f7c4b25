"""Copper Labs config entries of the simulator's accounts, for Home Assistant tests.

Made as MockConfigEntry (the config flow is not needed to test what an entry does):
a Copper app user's entry holds a refresh token from a real sign-in (the pasted
address exchanged), an enterprise entry the demo client.
"""

from typing import Any

from aiohttp import ClientSession
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.migration import VERSION
from custom_components.cloud_energy_meters.providers.copper import (
    CONF_AUTH_URL,
    CONF_REFRESH_TOKEN,
    code_from,
)
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.copper import (
    CABIN_PREMISE_ID,
    DEMO_EMAIL,
    ENTERPRISE_CLIENT_ID,
    ENTERPRISE_CLIENT_SECRET,
    ENTERPRISE_ID,
    HOME_PREMISE_ID,
)

from .conftest import auth_url, sign_in

APP_SITES = [HOME_PREMISE_ID, CABIN_PREMISE_ID]


async def app_refresh_token(session: ClientSession, simulator: Simulator) -> str:
    """Sign in as the demo user (link, e-mail code, pasted address); return the token."""
    address, verifier = await sign_in(session, simulator)
    code = code_from(address)
    assert code is not None
    signing = build_provider(
        "copper",
        session,
        api_url=simulator.url("copper"),
        client_id="",
        client_secret="",
        enterprise_id="",
    )
    return str(await signing.async_exchange(code, verifier))


def copper_entry(
    simulator: Simulator,
    *,
    refresh_token: str = "",
    sites: list[str] | None = None,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Return a Copper entry (not yet added).

    The app user's with a refresh token, else the demo enterprise's with `sites`
    (default: its first three premises).
    """
    app = bool(refresh_token)
    if app:
        known = APP_SITES
        credentials = {
            "client_id": "",
            "client_secret": "",
            "enterprise_id": "",
            CONF_REFRESH_TOKEN: refresh_token,
            "user": "",
        }
    else:
        known = [p.id for p in simulator.copper.premises_of_enterprise(ENTERPRISE_ID)]
        credentials = {
            "client_id": ENTERPRISE_CLIENT_ID,
            "client_secret": ENTERPRISE_CLIENT_SECRET,
            "enterprise_id": ENTERPRISE_ID,
            CONF_REFRESH_TOKEN: "",
            "user": "",
        }
    chosen = list(known if app else known[:3]) if sites is None else sites
    return MockConfigEntry(
        domain=DOMAIN,
        version=VERSION,
        title="Copper Labs Home" if app else f"Copper Labs Enterprise {ENTERPRISE_ID}",
        unique_id=f"copper_app:{DEMO_EMAIL}" if app else f"copper_{ENTERPRISE_ID}",
        data={
            CONF_PROVIDER: "copper",
            CONF_API_URL: simulator.url("copper"),
            CONF_AUTH_URL: auth_url(simulator),
            **credentials,
            CONF_SITES: chosen,
            CONF_KNOWN_SITES: known,
        },
        options={CONF_BACKFILL_DAYS: 3} if options is None else options,
    )
