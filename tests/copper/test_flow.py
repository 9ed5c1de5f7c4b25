"""Copper Labs' config flow against the simulator: both sign-ins, reauth, reconfigure.

A person's part of the Copper app sign-in is played over HTTP: the link the form
shows is opened, the e-mail and its one-time code are posted to the simulator's
Auth0 stand-in, and the address it redirects to is pasted back into the form.
"""

from datetime import timedelta
import logging
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.config_flow import (
    PRESELECT_SITES,
    CloudEnergyMetersConfigFlow,
)
from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.extras.copper import flow as copper_flow
from custom_components.cloud_energy_meters.providers.copper import (
    API_URL,
    AUTH_URL,
    CONF_AUTH_URL,
    REDIRECT_URI,
    CopperProvider,
    code_from,
    sign_in_link,
)
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from tests.helpers import CLOUDS, section_open, settle
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.copper import (
    CABIN_PREMISE_ID,
    DEMO_EMAIL,
    DEMO_EMAIL_CODE,
    EMPTY_EMAIL,
    ENTERPRISE_CLIENT_ID,
    ENTERPRISE_CLIENT_SECRET,
    ENTERPRISE_ID,
    HOME_PREMISE_ID,
)

from .conftest import auth_url

pytestmark = pytest.mark.usefixtures("recorder_mock")

PREMISES = [HOME_PREMISE_ID, CABIN_PREMISE_ID]
OTHER_EMAIL = "other@copper.example"
NEW_SECRET = "copper-enterprise-secret-2"  # noqa: S105


def advanced(simulator: Simulator, **changes: str) -> dict[str, str]:
    """Return the advanced section pointing at the simulator."""
    return {
        CONF_API_URL: simulator.url("copper"),
        CONF_AUTH_URL: auth_url(simulator),
        **changes,
    }


def link(result: ConfigFlowResult) -> str:
    """Return the sign-in link a form shows."""
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    return placeholders["link"]


async def configure(
    hass: HomeAssistant, result: ConfigFlowResult, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Send a step of the flow `result` belongs to."""
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def open_copper(hass: HomeAssistant, kind: str) -> ConfigFlowResult:
    """Open the flow, choose Copper Labs, then `app` or `enterprise` in its menu."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["menu_options"] == CLOUDS
    result = await configure(hass, result, {"next_step_id": "copper"})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "copper"
    assert result["menu_options"] == ["copper_app", "copper_enterprise"]
    result = await configure(hass, result, {"next_step_id": f"copper_{kind}"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == f"copper_{kind}"
    return result


async def open_app(hass: HomeAssistant, simulator: Simulator) -> ConfigFlowResult:
    """Open the app form and point it at the simulator's Auth0 (its link follows).

    The first form links to Copper's own Auth0: a developer changes the sign-in URL,
    sends the form with nothing pasted yet, and gets the simulator's link.
    """
    result = await open_copper(hass, "app")
    result = await configure(
        hass, result, {"code": "-", CONF_ADVANCED: advanced(simulator)}
    )
    assert result["errors"] == {"code": "invalid_code"}
    assert link(result).startswith(f"{auth_url(simulator)}/authorize?")
    return result


async def browse(session: ClientSession, address: str, email: str = DEMO_EMAIL) -> str:
    """Open a sign-in link, sign in with the e-mail code; return where it ends."""
    async with session.get(address) as page:
        assert page.status == 200, await page.text()
    async with session.post(
        address, data={"email": email, "otp": DEMO_EMAIL_CODE}, allow_redirects=False
    ) as answer:
        assert answer.status == 302, await answer.text()
        location = answer.headers["Location"]
    assert location.startswith(f"{REDIRECT_URI}?code=")
    return location


async def paste(
    hass: HomeAssistant,
    simulator: Simulator,
    result: ConfigFlowResult,
    pasted: str,
    **changes: str,
) -> ConfigFlowResult:
    """Paste an address (or code) into the app form."""
    return await configure(
        hass, result, {"code": pasted, CONF_ADVANCED: advanced(simulator, **changes)}
    )


def offered(result: ConfigFlowResult) -> list[str]:
    """Return the sites a sites step offers."""
    assert result["step_id"] == "sites"
    selector = result["data_schema"].schema[CONF_SITES]
    return [option["value"] for option in selector.config["options"]]


def preselected(result: ConfigFlowResult) -> list[str]:
    """Return the sites a sites step preselects."""
    assert result["step_id"] == "sites"
    key = next(key for key in result["data_schema"].schema if key == CONF_SITES)
    return list(key.default())


async def add_app_entry(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    sites: list[str] | None = None,
) -> tuple[ConfigEntry, str]:
    """Add the demo user's entry through the flow and set it up.

    Return the entry and the refresh token the flow created it with.
    """
    result = await open_app(hass, simulator)
    result = await paste(hass, simulator, result, await browse(session, link(result)))
    result = await configure(hass, result, {CONF_SITES: sites or PREMISES})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    return entry, result["data"]["refresh_token"]


def tokens(simulator: Simulator, email: str = DEMO_EMAIL) -> dict[str, str]:
    """Return the user's refresh tokens by state, as the simulator knows them."""
    return simulator.copper.truth_refresh_tokens(email)


def token_requests(simulator: Simulator) -> int:
    """Count the requests the simulator's token endpoint received."""
    return sum(1 for record in simulator.log if record.path.endswith("/oauth/token"))


# The Copper app ------------------------------------------------------------------------


async def test_app_sign_in_with_the_whole_address(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """Link, e-mail code, address pasted, both premises: the newest token is kept.

    A restart (reload) right after signs in with what the entry holds; the token it
    replaced is dead (presenting it would revoke them all).
    """
    result = await open_copper(hass, "app")
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == ["code", CONF_ADVANCED]
    section = schema[CONF_ADVANCED]
    assert section.options["collapsed"] is True
    defaults = {str(key): key.default() for key in section.schema.schema}
    assert defaults == {
        CONF_API_URL: API_URL,
        CONF_AUTH_URL: AUTH_URL,
    }
    assert API_URL == "https://api.copperlabs.com/api/v2"
    assert AUTH_URL == "https://auth.copperlabs.com"
    assert link(result).startswith("https://auth.copperlabs.com/authorize?")
    query = parse_qs(urlsplit(link(result)).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "code_verifier" not in query

    result = await configure(
        hass, result, {"code": "-", CONF_ADVANCED: advanced(simulator)}
    )
    address = await browse(session, link(result))
    result = await paste(hass, simulator, result, address)
    assert offered(result) == PREMISES
    assert preselected(result) == PREMISES  # a home's few premises: all chosen
    result = await configure(hass, result, {CONF_SITES: PREMISES})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = result["data"]["refresh_token"]
    assert result["data"] == {
        CONF_PROVIDER: "copper",
        "client_id": "",
        "client_secret": "",
        "enterprise_id": "",
        "refresh_token": created,
        "user": f"app:{HOME_PREMISE_ID}",
        CONF_API_URL: simulator.url("copper"),
        CONF_AUTH_URL: auth_url(simulator),
        CONF_SITES: PREMISES,
        CONF_KNOWN_SITES: PREMISES,
    }
    entry = result["result"]
    assert entry.unique_id == f"copper_app:{HOME_PREMISE_ID}"
    assert result["title"] == "Copper Labs Home"

    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    saved = entry.data["refresh_token"]
    assert saved != created
    assert tokens(simulator)[saved] == "live"
    assert tokens(simulator)[created] == "retired"

    assert await hass.config_entries.async_reload(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data["refresh_token"] != saved
    assert tokens(simulator)[entry.data["refresh_token"]] == "live"
    assert tokens(simulator)[saved] == "retired"
    assert "revoked" not in tokens(simulator).values()


async def test_app_sign_in_with_the_bare_code(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """The code alone is enough; the premises not chosen stay known."""
    result = await open_app(hass, simulator)
    code = code_from(await browse(session, link(result)))
    assert code is not None
    result = await paste(hass, simulator, result, f"  {code} ")
    result = await configure(hass, result, {CONF_SITES: [CABIN_PREMISE_ID]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SITES] == [CABIN_PREMISE_ID]
    assert result["data"][CONF_KNOWN_SITES] == PREMISES
    await settle(hass)
    assert result["result"].state is ConfigEntryState.LOADED


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        "hello world!",
        f"{REDIRECT_URI}?error=access_denied&error_description=denied",
        f"{REDIRECT_URI}?code=",
        "<script>",
    ],
)
async def test_garbage_pasted_is_invalid_code(
    hass: HomeAssistant, simulator: Simulator, pasted: str
) -> None:
    """Nothing that looks like a code: said on the field; no code was spent."""
    result = await open_app(hass, simulator)
    shown = link(result)
    requests = token_requests(simulator)
    result = await paste(hass, simulator, result, pasted)
    assert result["step_id"] == "copper_app"
    assert result["errors"] == {"code": "invalid_code"}
    assert link(result) == shown
    assert token_requests(simulator) == requests


async def test_an_expired_code_is_refused_and_a_new_link_shown(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    sim_clock: FakeClock,
) -> None:
    """A code pasted after its lifetime: invalid_auth, a new link; that one works."""
    result = await open_app(hass, simulator)
    address = await browse(session, link(result))
    sim_clock.advance(simulator.copper.code_lifetime + timedelta(seconds=1))
    first = link(result)
    result = await paste(hass, simulator, result, address)
    assert result["errors"] == {"base": "invalid_auth"}
    assert link(result) != first
    result = await paste(hass, simulator, result, await browse(session, link(result)))
    assert offered(result) == PREMISES


async def test_a_code_made_for_another_link_is_refused(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """PKCE: a code whose challenge is not this flow's verifier's is refused."""
    result = await open_app(hass, simulator)
    foreign, _ = sign_in_link(auth_url(simulator))
    first = link(result)
    result = await paste(hass, simulator, result, await browse(session, foreign))
    assert result["errors"] == {"base": "invalid_auth"}
    assert link(result) != first
    result = await paste(hass, simulator, result, await browse(session, link(result)))
    assert offered(result) == PREMISES


async def test_cannot_connect_and_a_used_code(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """Auth0 or the API failing is cannot_connect; the code is spent all the same."""
    result = await open_app(hass, simulator)
    simulator.faults.add("http_500", cloud="copper", path="oauth/token")
    result = await paste(hass, simulator, result, await browse(session, link(result)))
    assert result["errors"] == {"base": "cannot_connect"}

    address = await browse(session, link(result))
    simulator.faults.add("http_500", cloud="copper", path="^/app/state")
    result = await paste(hass, simulator, result, address)
    assert result["errors"] == {"base": "cannot_connect"}
    result = await paste(hass, simulator, result, address)  # exchanged already
    assert result["errors"] == {"base": "invalid_auth"}

    address = await browse(session, link(result))
    result = await paste(
        hass, simulator, result, address, api_url="http://127.0.0.1:9/copper/api/v2"
    )
    assert result["errors"] == {"base": "cannot_connect"}  # the API is unreachable
    result = await paste(hass, simulator, result, await browse(session, link(result)))
    assert offered(result) == PREMISES


async def test_a_user_without_premises_then_another(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """no_sites; another e-mail in the same flow signs in as that user, not the first."""
    result = await open_app(hass, simulator)
    result = await paste(
        hass, simulator, result, await browse(session, link(result), EMPTY_EMAIL)
    )
    assert result["errors"] == {"base": "no_sites"}
    result = await paste(hass, simulator, result, await browse(session, link(result)))
    assert offered(result) == PREMISES


async def test_an_unexpected_error_is_unknown(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """A bug (not a cloud failure) while exchanging or signing in: unknown."""
    result = await open_app(hass, simulator)
    with patch.object(CopperProvider, "async_exchange", side_effect=RuntimeError):
        result = await paste(
            hass, simulator, result, await browse(session, link(result))
        )
    assert result["errors"] == {"base": "unknown"}
    with patch.object(CopperProvider, "async_login", side_effect=RuntimeError):
        result = await paste(
            hass, simulator, result, await browse(session, link(result))
        )
    assert result["errors"] == {"base": "unknown"}


async def test_a_sign_in_address_must_be_https(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The code and its verifier go nowhere in plain HTTP (loopback excepted)."""
    result = await open_app(hass, simulator)
    result = await paste(
        hass, simulator, result, "abcdefgh", auth_url="http://auth.example.com"
    )
    # On the section the sign-in URL is typed in, opened.
    assert result["errors"] == {CONF_ADVANCED: "insecure_url"}
    assert section_open(result)
    result = await paste(hass, simulator, result, "abcdefgh", auth_url="nowhere")
    assert result["errors"] == {CONF_ADVANCED: "invalid_url"}


# Enterprise ----------------------------------------------------------------------------


def enterprise_input(simulator: Simulator, secret: str) -> dict[str, Any]:
    """Return what an enterprise types."""
    return {
        "client_id": ENTERPRISE_CLIENT_ID,
        "client_secret": secret,
        "enterprise_id": ENTERPRISE_ID,
        CONF_ADVANCED: advanced(simulator),
    }


async def add_enterprise_entry(
    hass: HomeAssistant, simulator: Simulator
) -> ConfigEntry:
    """Add the demo enterprise with two premises through the flow, set up."""
    result = await open_copper(hass, "enterprise")
    result = await configure(
        hass, result, enterprise_input(simulator, ENTERPRISE_CLIENT_SECRET)
    )
    chosen = offered(result)[:2]
    result = await configure(hass, result, {CONF_SITES: chosen})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    entry: ConfigEntry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def test_enterprise_sign_in_and_its_errors(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Client id, secret, enterprise id; every error, then the premises."""
    result = await open_copper(hass, "enterprise")
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == [
        "client_id",
        "client_secret",
        "enterprise_id",
        CONF_ADVANCED,
    ]
    result = await configure(hass, result, enterprise_input(simulator, "wrong"))
    assert result["errors"] == {"base": "invalid_auth"}
    simulator.faults.add("http_500", cloud="copper", path="^/partner/")
    result = await configure(
        hass, result, enterprise_input(simulator, ENTERPRISE_CLIENT_SECRET)
    )
    assert result["errors"] == {"base": "cannot_connect"}
    with patch.object(CopperProvider, "async_login", side_effect=RuntimeError):
        result = await configure(
            hass, result, enterprise_input(simulator, ENTERPRISE_CLIENT_SECRET)
        )
    assert result["errors"] == {"base": "unknown"}
    result = await configure(
        hass, result, enterprise_input(simulator, ENTERPRISE_CLIENT_SECRET)
    )
    premises = [p.id for p in simulator.copper.premises_of_enterprise(ENTERPRISE_ID)]
    assert offered(result) == premises
    # Sixty premises: none chosen to start with (all would spend the budget).
    assert len(premises) > PRESELECT_SITES
    assert preselected(result) == []
    result = await configure(hass, result, {CONF_SITES: premises[:2]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_PROVIDER: "copper",
        "client_id": ENTERPRISE_CLIENT_ID,
        "client_secret": ENTERPRISE_CLIENT_SECRET,
        "enterprise_id": ENTERPRISE_ID,
        "refresh_token": "",
        "user": "",
        CONF_API_URL: simulator.url("copper"),
        CONF_AUTH_URL: auth_url(simulator),
        CONF_SITES: premises[:2],
        CONF_KNOWN_SITES: premises,
    }
    assert result["result"].unique_id == f"copper_enterprise:{ENTERPRISE_ID}"
    await settle(hass)
    assert result["result"].state is ConfigEntryState.LOADED


async def test_the_same_enterprise_cannot_be_added_twice(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A second sign-in of the same enterprise aborts."""
    await add_enterprise_entry(hass, simulator)
    result = await open_copper(hass, "enterprise")
    result = await configure(
        hass, result, enterprise_input(simulator, ENTERPRISE_CLIENT_SECRET)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# Reauthentication ----------------------------------------------------------------------


async def start_reauth(hass: HomeAssistant, entry: ConfigEntry) -> ConfigFlowResult:
    """Start the reauthentication of an entry."""
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_REAUTH, "entry_id": entry.entry_id},
        data=entry.data,
    )


async def test_reuse_detection_asks_to_sign_in_again_and_a_new_code_fixes_it(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """An entry holding a retired token is refused (all revoked): reauth, link, code."""
    entry, created = await add_app_entry(hass, simulator, session)
    assert tokens(simulator)[created] == "retired"
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, "refresh_token": created}
    )
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert set(tokens(simulator).values()) == {"revoked"}

    (flow,) = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]
    assert flow["step_id"] == "copper_reauth"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert [str(key) for key in result["data_schema"].schema] == ["code"]
    assert result["description_placeholders"]["account"] == entry.title
    assert link(result).startswith(f"{auth_url(simulator)}/authorize?")
    result = await configure(hass, result, {"code": "no code here"})
    assert result["errors"] == {"code": "invalid_code"}
    code = code_from(await browse(session, link(result)))
    result = await configure(hass, result, {"code": f"{REDIRECT_URI}?code={code}"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data["user"] == f"app:{HOME_PREMISE_ID}"
    assert tokens(simulator)[entry.data["refresh_token"]] == "live"


async def test_reauth_refuses_an_expired_code_and_another_user(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    sim_clock: FakeClock,
) -> None:
    """An expired code: invalid_auth and a new link; another Copper user: aborted."""
    entry, _ = await add_app_entry(hass, simulator, session)
    kept = dict(entry.data)
    simulator.copper.user_premises[OTHER_EMAIL] = (CABIN_PREMISE_ID,)
    result = await start_reauth(hass, entry)
    assert result["step_id"] == "copper_reauth"
    address = await browse(session, link(result))
    sim_clock.advance(simulator.copper.code_lifetime + timedelta(seconds=1))
    first = link(result)
    result = await configure(hass, result, {"code": address})
    assert result["errors"] == {"base": "invalid_auth"}
    assert link(result) != first

    result = await configure(
        hass, result, {"code": await browse(session, link(result), OTHER_EMAIL)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert dict(entry.data) == kept
    assert tokens(simulator)[kept["refresh_token"]] == "live"
    assert entry.state is ConfigEntryState.LOADED


async def test_enterprise_reauth_asks_the_client_secret(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """An enterprise entry gets the generic form: its client secret only."""
    entry = await add_enterprise_entry(hass, simulator)
    simulator.copper.set_client_secret(ENTERPRISE_CLIENT_ID, NEW_SECRET)
    result = await start_reauth(hass, entry)
    assert result["step_id"] == "reauth_confirm"
    assert [str(key) for key in result["data_schema"].schema] == ["client_secret"]
    result = await configure(hass, result, {"client_secret": ENTERPRISE_CLIENT_SECRET})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result, {"client_secret": NEW_SECRET})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data["client_secret"] == NEW_SECRET
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED


# Reconfiguration -----------------------------------------------------------------------


async def start_reconfigure(
    hass: HomeAssistant, entry: ConfigEntry
) -> ConfigFlowResult:
    """Start the reconfiguration of an entry."""
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )


async def test_reconfigure_an_app_entry(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """URLs (checked) and premises; no secret to type; the newest token is kept."""
    entry, _ = await add_app_entry(hass, simulator, session)
    result = await start_reconfigure(hass, entry)
    assert [str(key) for key in result["data_schema"].schema] == [
        CONF_API_URL,
        CONF_AUTH_URL,
    ]
    result = await configure(
        hass, result, advanced(simulator, auth_url="http://auth.example.com")
    )
    assert result["errors"] == {CONF_AUTH_URL: "insecure_url"}  # on its field
    result = await configure(hass, result, advanced(simulator))
    assert offered(result) == PREMISES
    result = await configure(hass, result, {CONF_SITES: [HOME_PREMISE_ID]})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_SITES] == [HOME_PREMISE_ID]
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert tokens(simulator)[entry.data["refresh_token"]] == "live"


async def test_a_reconfigure_left_at_the_sites_step_keeps_the_token_it_rotated(
    hass: HomeAssistant, simulator: Simulator, session: ClientSession
) -> None:
    """Checking the account rotated the token: saved at once, so a restart signs in."""
    entry, _ = await add_app_entry(hass, simulator, session)
    result = await start_reconfigure(hass, entry)
    result = await configure(hass, result, advanced(simulator))
    assert result["step_id"] == "sites"
    hass.config_entries.flow.async_abort(result["flow_id"])
    await hass.config_entries.async_reload(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert tokens(simulator)[entry.data["refresh_token"]] == "live"
    assert "revoked" not in tokens(simulator).values()


async def test_reconfigure_an_enterprise_entry(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """URLs and an optional new client secret (left empty: kept)."""
    entry = await add_enterprise_entry(hass, simulator)
    chosen = entry.data[CONF_SITES]
    result = await start_reconfigure(hass, entry)
    assert [str(key) for key in result["data_schema"].schema] == [
        CONF_API_URL,
        CONF_AUTH_URL,
        "client_secret",
    ]
    simulator.copper.set_client_secret(ENTERPRISE_CLIENT_ID, NEW_SECRET)
    result = await configure(hass, result, advanced(simulator))
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(
        hass, result, {**advanced(simulator), "client_secret": NEW_SECRET}
    )
    result = await configure(hass, result, {CONF_SITES: chosen[:1]})
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["client_secret"] == NEW_SECRET
    assert entry.data[CONF_SITES] == chosen[:1]
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED


# Secrets -------------------------------------------------------------------------------


async def test_no_secret_in_any_log_line(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refresh tokens, codes, verifiers and client secrets stay out of the log."""
    caplog.set_level(logging.DEBUG)
    made: list[tuple[str, str]] = []

    def spy(auth: str) -> tuple[str, str]:
        made.append(sign_in_link(auth))
        return made[-1]

    addresses: list[str] = []
    with patch.object(copper_flow, "sign_in_link", side_effect=spy):
        result = await open_app(hass, simulator)
        addresses.append(await browse(session, sign_in_link(auth_url(simulator))[0]))
        result = await paste(hass, simulator, result, addresses[-1])  # PKCE mismatch
        assert result["errors"] == {"base": "invalid_auth"}
        addresses.append(await browse(session, link(result)))
        simulator.faults.add("http_500", cloud="copper", path="^/app/state")
        result = await paste(hass, simulator, result, addresses[-1])
        assert result["errors"] == {"base": "cannot_connect"}
        addresses.append(await browse(session, link(result)))
        result = await paste(hass, simulator, result, addresses[-1])
        result = await configure(hass, result, {CONF_SITES: PREMISES})
        await settle(hass)
        entry = result["result"]
        assert await hass.config_entries.async_reload(entry.entry_id)
        await settle(hass)
        result = await start_reauth(hass, entry)
        addresses.append(await browse(session, link(result)))
        result = await configure(hass, result, {"code": addresses[-1]})
        assert result["reason"] == "reauth_successful"
        await settle(hass)
        assert entry.state is ConfigEntryState.LOADED

    result = await open_copper(hass, "enterprise")
    result = await configure(hass, result, enterprise_input(simulator, "wrong-secret"))
    result = await configure(
        hass, result, enterprise_input(simulator, ENTERPRISE_CLIENT_SECRET)
    )
    result = await configure(hass, result, {CONF_SITES: offered(result)[:1]})
    await settle(hass)

    codes = [code_from(address) for address in addresses]
    secrets = [
        *tokens(simulator),
        *(code for code in codes if code),
        *(verifier for _, verifier in made),
        ENTERPRISE_CLIENT_SECRET,
        "wrong-secret",
    ]
    assert len(tokens(simulator)) >= 6
    assert len(made) >= 5
    assert "copper" in caplog.text.casefold()
    assert [secret for secret in secrets if secret in caplog.text] == []


def test_the_flow_routes_copper_steps() -> None:
    """The menu, both forms and the app's reauthentication are steps of the flow."""
    flow = CloudEnergyMetersConfigFlow()
    for step in ("copper", "copper_app", "copper_enterprise", "copper_reauth"):
        assert callable(getattr(flow, f"async_step_{step}"))
