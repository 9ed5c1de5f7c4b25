"""The config flow against the simulator: every step, every error, every abort."""

from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from custom_components.cloud_energy_meters.forms import url_error
from custom_components.cloud_energy_meters.providers.climkit import (
    API_URL,
    ClimkitProvider,
)
from custom_components.cloud_energy_meters.providers.ratelimit import RatePolicy
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from .conftest import SITE_IDS, SetupEntry, climkit_entry_for, energydata_entry_for
from .simulator import Simulator
from .simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SITE_FERME, SITE_LAC

pytestmark = pytest.mark.usefixtures("recorder_mock")


async def _climkit_form(hass: HomeAssistant) -> dict[str, Any]:
    """Open the flow and pick Climkit in the menu."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["climkit", "energydata", "locus"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "climkit"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "climkit"
    return result


def _credentials(
    url: str, username: str = DEMO_USERNAME, password: str = DEMO_PASSWORD
) -> dict[str, Any]:
    return {
        CONF_USERNAME: username,
        CONF_PASSWORD: password,
        CONF_ADVANCED: {CONF_API_URL: url},
    }


async def test_add_account_with_several_sites(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Credentials, then the sites step (all preselected), then the entry."""
    result = await _climkit_form(hass)
    schema = result["data_schema"].schema
    advanced = next(key for key in schema if key == CONF_ADVANCED)
    assert schema[advanced].options["collapsed"] is True
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _credentials(simulator.url("climkit"))
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
    result = await _climkit_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _credentials(simulator.url("climkit"), "  solo ", "solo-password"),
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
    result = await _climkit_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _credentials(
            url,
            credentials.get("username", DEMO_USERNAME),
            credentials.get("password", DEMO_PASSWORD),
        ),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _credentials(simulator.url("climkit"))
    )
    assert result["step_id"] == "sites"


async def test_unexpected_error_is_unknown(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A bug (not a cloud failure) shows `unknown` and is logged with its traceback."""
    result = await _climkit_form(hass)
    with patch.object(ClimkitProvider, "async_login", side_effect=RuntimeError("bug")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _credentials(simulator.url("climkit"))
        )
    assert result["errors"] == {"base": "unknown"}


async def test_duplicate_account_aborts(
    hass: HomeAssistant, simulator: Simulator, climkit_entry: MockConfigEntry
) -> None:
    """The same account cannot be added twice."""
    climkit_entry.add_to_hass(hass)
    result = await _climkit_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _credentials(simulator.url("climkit"))
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_only_energydata_accounts_offer_subentries(
    hass: HomeAssistant, simulator: Simulator, climkit_entry: MockConfigEntry
) -> None:
    """Energydata.dk accounts add and edit datastreams; Climkit lists its own sites."""
    energydata_entry = energydata_entry_for(simulator)
    for entry in (climkit_entry, energydata_entry):
        entry.add_to_hass(hass)
    assert energydata_entry.supported_subentry_types == {
        "datastream": {"supports_reconfigure": True}
    }
    assert climkit_entry.supported_subentry_types == {}


async def test_default_api_url_is_the_official_endpoint(hass: HomeAssistant) -> None:
    """The advanced section offers Climkit's documented endpoint."""
    result = await _climkit_form(hass)
    section = result["data_schema"].schema[CONF_ADVANCED]
    url_key = next(iter(section.schema.schema))
    assert url_key.default() == API_URL == "https://api.climkit.io/api/v1"


async def test_a_site_belongs_to_one_entry(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Sites another entry of the same server reads are not offered again.

    With one site left the flow creates the entry at once; with none it aborts.
    A site that appears later joins the entry that does not hold it elsewhere.
    """
    simulator.climkit.add_user("solo", "pw", site_ids=[SITE_FERME.id, SITE_LAC.id])
    assert await setup_entry(climkit_entry_for(simulator, sites=[SITE_LAC.id]))
    result = await _climkit_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _credentials(simulator.url("climkit"), "solo", "pw")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SITES] == [SITE_FERME.id]
    assert set(result["data"][CONF_KNOWN_SITES]) == {SITE_FERME.id, SITE_LAC.id}
    await hass.async_block_till_done(wait_background_tasks=True)

    simulator.climkit.add_user("late", "pw", site_ids=[SITE_FERME.id, SITE_LAC.id])
    result = await _climkit_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _credentials(simulator.url("climkit"), "late", "pw")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    # Reconfiguring the first entry offers its own site and the free one, not solo's.
    first = next(
        e
        for e in hass.config_entries.async_entries(DOMAIN)
        if e.data[CONF_USERNAME] == DEMO_USERNAME
    )
    result = await first.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: simulator.url("climkit")}
    )
    sites_key = next(key for key in result["data_schema"].schema if key == CONF_SITES)
    offered = [
        o["value"] for o in result["data_schema"].schema[sites_key].config["options"]
    ]
    assert SITE_FERME.id not in offered
    assert set(offered) == {site_id for site_id in SITE_IDS if site_id != SITE_FERME.id}
    assert sites_key.default() == [SITE_LAC.id]


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
    assert result["errors"] == {"base": "insecure_url"}
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


async def test_options(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Options refuse an interval faster than the rate budget and reload on change."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    # A cloud allowing one request every 3 s: the demo account's refresh (42 requests)
    # may then poll every ⌈2 × 41 × 3.05 s⌉ = 5 minutes at most.
    monkeypatch.setattr(ClimkitProvider, "policy", RatePolicy(min_interval=3))
    coordinator._discovered_at = None
    await coordinator.async_refresh()
    result = await hass.config_entries.options.async_init(climkit_entry.entry_id)
    assert result["step_id"] == "init"
    assert result["description_placeholders"] == {"minimum": "5"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_UPDATE_INTERVAL: 2, CONF_BACKFILL_DAYS: 10}
    )
    assert result["errors"] == {CONF_UPDATE_INTERVAL: "interval_too_short"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_UPDATE_INTERVAL: 20, CONF_BACKFILL_DAYS: 10}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert climkit_entry.options == {CONF_UPDATE_INTERVAL: 20, CONF_BACKFILL_DAYS: 10}
    await hass.async_block_till_done(wait_background_tasks=True)
    assert climkit_entry.runtime_data is not coordinator, "the entry reloaded"
    assert climkit_entry.runtime_data.update_interval == timedelta(minutes=20)


async def test_options_of_an_entry_not_loaded(
    hass: HomeAssistant, climkit_entry: MockConfigEntry
) -> None:
    """Options can be edited while the entry is not loaded (no budget known yet)."""
    climkit_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(climkit_entry.entry_id)
    assert result["description_placeholders"] == {"minimum": "1"}


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://api.climkit.io/api/v1", None),
        ("http://127.0.0.1:8765/climkit/api/v1", None),
        ("http://[::1]:8765/x", None),
        ("http://localhost:8765/x", None),
        ("http://192.168.1.10/x", "insecure_url"),
        ("http://api.climkit.io/api/v1", "insecure_url"),
        ("api.climkit.io", "invalid_url"),
        ("https://", "invalid_url"),
        ("http://[bad", "invalid_url"),
    ],
)
def test_url_rules(url: str, error: str | None) -> None:
    """HTTPS only, except loopback hosts (the simulator, a local server)."""
    assert url_error(url) == error
