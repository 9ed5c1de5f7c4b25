"""Climkit's config flow against the simulator: every step, every error, every abort."""

from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
)
from custom_components.cloud_energy_meters.providers.climkit import (
    API_URL,
    ClimkitProvider,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from tests.conftest import SITE_IDS, SetupEntry, climkit_entry_for
from tests.helpers import climkit_credentials, open_flow, section_open
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SITE_FERME, SITE_LAC

pytestmark = pytest.mark.usefixtures("recorder_mock")


async def test_add_account_with_several_sites(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Credentials, then the sites step (all preselected), then the entry."""
    result = await open_flow(hass, "climkit")
    schema = result["data_schema"].schema
    advanced = next(key for key in schema if key == CONF_ADVANCED)
    assert schema[advanced].options["collapsed"] is True
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], climkit_credentials(simulator.url("climkit"))
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "sites"
    sites_key = next(key for key in result["data_schema"].schema if key == CONF_SITES)
    assert sites_key.default() == SITE_IDS

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SITES: []}
    )
    assert result["errors"] == {"base": "no_sites_selected"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SITES: [SITE_LAC.id, SITE_FERME.id]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Climkit {DEMO_USERNAME}"
    assert result["data"] == {
        CONF_PROVIDER: "climkit",
        CONF_USERNAME: DEMO_USERNAME,
        CONF_PASSWORD: DEMO_PASSWORD,
        CONF_API_URL: simulator.url("climkit"),
        CONF_SITES: [SITE_LAC.id, SITE_FERME.id],
        CONF_KNOWN_SITES: SITE_IDS,
    }
    entry = result["result"]
    assert entry.unique_id == f"climkit_{DEMO_USERNAME}"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def test_add_account_with_one_site_skips_the_sites_step(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """An account with a single site is created right after the credentials."""
    simulator.climkit.add_user("solo", "solo-password", site_ids=[SITE_FERME.id])
    result = await open_flow(hass, "climkit")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        climkit_credentials(simulator.url("climkit"), "  solo ", "solo-password"),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_USERNAME] == "solo"
    assert result["data"][CONF_SITES] == [SITE_FERME.id]
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize(
    ("prepare", "credentials", "error"),
    [
        (None, {"password": "wrong"}, "invalid_auth"),
        ("no_sites", {"username": "nobody", "password": "pw"}, "no_sites"),
        ("http_500", {}, "cannot_connect"),
        ("malformed_json", {}, "cannot_connect"),
        ("unreachable", {}, "cannot_connect"),
        ("insecure", {}, "insecure_url"),
        ("not_a_url", {}, "invalid_url"),
    ],
)
async def test_credential_errors_then_recovery(
    hass: HomeAssistant,
    simulator: Simulator,
    prepare: str | None,
    credentials: dict[str, str],
    error: str,
) -> None:
    """Each failure shows its translated error and the form can be sent again."""
    url = simulator.url("climkit")
    if prepare == "no_sites":
        simulator.climkit.add_user("nobody", "pw", site_ids=[])
    elif prepare in ("http_500", "malformed_json"):
        simulator.faults.add(prepare, count=1, path="all_installations")
    elif prepare == "unreachable":
        url = "http://127.0.0.1:9/climkit/api/v1"
    elif prepare == "insecure":
        url = "http://api.example.com/api/v1"
    elif prepare == "not_a_url":
        url = "ftp:/nowhere"
    result = await open_flow(hass, "climkit")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        climkit_credentials(
            url,
            credentials.get("username", DEMO_USERNAME),
            credentials.get("password", DEMO_PASSWORD),
        ),
    )
    assert result["type"] is FlowResultType.FORM
    # An address refused is shown on the section it is typed in, opened (Home
    # Assistant shows no error on a field inside a section).
    url_refused = prepare in ("insecure", "not_a_url")
    assert result["errors"] == {"advanced" if url_refused else "base": error}
    assert section_open(result) is url_refused

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], climkit_credentials(simulator.url("climkit"))
    )
    assert result["step_id"] == "sites"


async def test_unexpected_error_is_unknown(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A bug (not a cloud failure) shows `unknown` and is logged with its traceback."""
    result = await open_flow(hass, "climkit")
    with patch.object(ClimkitProvider, "async_login", side_effect=RuntimeError("bug")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], climkit_credentials(simulator.url("climkit"))
        )
    assert result["errors"] == {"base": "unknown"}


async def test_duplicate_account_aborts(
    hass: HomeAssistant, simulator: Simulator, climkit_entry: MockConfigEntry
) -> None:
    """The same account cannot be added twice."""
    climkit_entry.add_to_hass(hass)
    result = await open_flow(hass, "climkit")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], climkit_credentials(simulator.url("climkit"))
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_default_api_url_is_the_official_endpoint(hass: HomeAssistant) -> None:
    """The advanced section offers Climkit's documented endpoint."""
    result = await open_flow(hass, "climkit")
    section = result["data_schema"].schema[CONF_ADVANCED]
    url_key = next(iter(section.schema.schema))
    assert url_key.default() == API_URL == "https://api.climkit.io/api/v1"


async def test_reconfigure_a_new_password(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Reconfigure takes a new password (checked); left empty, the old one stays."""
    assert await setup_entry(climkit_entry)
    simulator.climkit.users[DEMO_USERNAME] = "new-password"
    result = await climkit_entry.start_reconfigure_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == [
        CONF_API_URL,
        CONF_PASSWORD,
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: simulator.url("climkit")}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_API_URL: simulator.url("climkit"), CONF_PASSWORD: "new-password"},
    )
    assert result["step_id"] == "sites"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SITES: SITE_IDS}
    )
    assert result["reason"] == "reconfigure_successful"
    assert climkit_entry.data[CONF_PASSWORD] == "new-password"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert climkit_entry.state is ConfigEntryState.LOADED


async def test_reauth(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A new password is checked, stored, and the entry reloads."""
    assert await setup_entry(climkit_entry)
    simulator.climkit.users[DEMO_USERNAME] = "new-password"
    result = await climkit_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert list(result["data_schema"].schema) == [CONF_PASSWORD]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: DEMO_PASSWORD}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "new-password"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert climkit_entry.data[CONF_PASSWORD] == "new-password"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert climkit_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_url_and_sites(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Reconfigure checks the URL with the stored credentials, then re-chooses sites."""
    assert await setup_entry(climkit_entry)
    result = await climkit_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: "http://api.example.com/api/v1"}
    )
    assert result["errors"] == {CONF_API_URL: "insecure_url"}  # on its field
    new_url = simulator.url("climkit") + "/"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: new_url}
    )
    assert result["step_id"] == "sites"
    sites_key = next(key for key in result["data_schema"].schema if key == CONF_SITES)
    assert sites_key.default() == SITE_IDS
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SITES: [SITE_LAC.id]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert climkit_entry.data[CONF_API_URL] == new_url
    assert climkit_entry.data[CONF_SITES] == [SITE_LAC.id]
    assert climkit_entry.data[CONF_PASSWORD] == DEMO_PASSWORD
    await hass.async_block_till_done(wait_background_tasks=True)
    assert climkit_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_account_with_one_site(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """When the account has one site left, reconfigure keeps just that one."""
    simulator.climkit.add_user("solo", "pw", site_ids=[SITE_FERME.id])
    entry = climkit_entry_for(
        simulator, "solo", "pw", [SITE_FERME.id, SITE_LAC.id], options={}
    )
    assert await setup_entry(entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: simulator.url("climkit")}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_SITES] == [SITE_FERME.id]
    await hass.async_block_till_done(wait_background_tasks=True)
