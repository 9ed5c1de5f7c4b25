"""The Locus Energy config flow: both grants, every error, reauth and reconfigure."""

from typing import Any

import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import LOCUS_SMALL_SITES, SetupEntry
from tests.helpers import open_flow, section_open
from tests.simulator import Simulator
from tests.simulator.locus import (
    CC_CLIENT_ID,
    CC_CLIENT_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PARTNER_ID,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    OTHER_PARTNER_ID,
)

pytestmark = pytest.mark.usefixtures("recorder_mock")


def _form(simulator: Simulator, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "username": DEMO_USERNAME,
        "password": DEMO_PASSWORD,
        "partner_id": str(DEMO_PARTNER_ID),
        CONF_ADVANCED: {CONF_API_URL: simulator.url("locus")},
    }
    data.update(changes)
    return data


async def _locus_form(hass: HomeAssistant) -> str:
    """Open the flow on Locus's form, checking its fields; return the flow's id."""
    result = await open_flow(hass, "locus")
    keys = [str(key) for key in result["data_schema"].schema]
    assert keys == [
        "client_id",
        "client_secret",
        "username",
        "password",
        "partner_id",
        CONF_ADVANCED,
    ]
    return str(result["flow_id"])


async def test_password_grant_account(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Client id/secret plus SolarOS login, a partner id, then the sites."""
    flow_id = await _locus_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _form(simulator, username=f"  {DEMO_USERNAME} ", partner_id=" 4242 ")
    )
    assert result["step_id"] == "sites"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_SITES: [LOCUS_SMALL_SITES[0]]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = result["data"]
    assert data[CONF_PROVIDER] == "locus"
    assert data["username"] == DEMO_USERNAME
    assert data["partner_id"] == DEMO_PARTNER_ID
    assert isinstance(data["partner_id"], int)
    assert data[CONF_SITES] == [LOCUS_SMALL_SITES[0]]
    assert len(data[CONF_KNOWN_SITES]) == 6
    assert result["result"].unique_id == f"locus_{DEMO_PARTNER_ID}:{DEMO_USERNAME}"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert result["result"].state is ConfigEntryState.LOADED


async def test_client_credentials_account(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """An API client without a user: username and password left empty."""
    flow_id = await _locus_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        _form(
            simulator,
            client_id=CC_CLIENT_ID,
            client_secret=CC_CLIENT_SECRET,
            username="",
            password="",
        ),
    )
    assert result["step_id"] == "sites"
    grants = [
        r.body["grant_type"]
        for r in simulator.log_for("locus")
        if r.path == "/oauth/token"
    ]
    assert grants == ["client_credentials"]


async def test_the_same_user_for_another_partner_is_another_entry(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """One user, two partners: two entries (one account, one shared limit)."""
    flow_id = await _locus_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _form(simulator, partner_id=str(OTHER_PARTNER_ID))
    )
    # The other partner has a single site: no sites step.
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == f"locus_{OTHER_PARTNER_ID}:{DEMO_USERNAME}"
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"password": "wrong"}, "invalid_auth"),
        ({"client_secret": "wrong"}, "invalid_auth"),
        ({"password": ""}, "credentials_incomplete"),
        ({"username": ""}, "credentials_incomplete"),
        ({"partner_id": "999999"}, "not_permitted"),
        (
            {"client_id": CC_CLIENT_ID, "client_secret": CC_CLIENT_SECRET},
            "invalid_auth",
        ),
        (
            {CONF_ADVANCED: {CONF_API_URL: "http://127.0.0.1:9/locus/v3"}},
            "cannot_connect",
        ),
        ({CONF_ADVANCED: {CONF_API_URL: "http://api.example.com/v3"}}, "insecure_url"),
    ],
)
async def test_errors_then_recovery(
    hass: HomeAssistant,
    simulator: Simulator,
    changes: dict[str, Any],
    error: str,
) -> None:
    """Each failure shows its error; the corrected form goes on to the sites."""
    flow_id = await _locus_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _form(simulator, **changes)
    )
    # The URL refused: shown on the advanced section, opened.
    where = "advanced" if error == "insecure_url" else "base"
    assert result["errors"] == {where: error}
    assert section_open(result) is (where == "advanced")
    result = await hass.config_entries.flow.async_configure(flow_id, _form(simulator))
    assert result["step_id"] == "sites"


@pytest.mark.parametrize("partner", ["", "forty-two", "0", "-3", "4242.5"])
async def test_the_partner_id_is_a_whole_number(
    hass: HomeAssistant, simulator: Simulator, partner: str
) -> None:
    """The partner id starts empty (no default of 1); what is not an id is refused."""
    flow_id = await _locus_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _form(simulator, partner_id=partner)
    )
    assert result["errors"] == {"partner_id": "invalid_number"}
    schema = result["data_schema"].schema
    marker = next(key for key in schema if str(key) == "partner_id")
    assert marker.default is probatio.UNDEFINED
    assert "text" in schema[marker].serialize()["selector"]
    assert simulator.log_for("locus") == []  # nothing was sent


async def test_reauth_asks_the_secrets_the_account_uses(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    locus_entry: MockConfigEntry,
) -> None:
    """Client secret and password for a password-grant account; both checked."""
    assert await setup_entry(locus_entry)
    simulator.locus.users[DEMO_USERNAME] = "new-password"
    result = await locus_entry.start_reauth_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == [
        "client_secret",
        "password",
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_secret": DEMO_CLIENT_SECRET, "password": "nope"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"client_secret": DEMO_CLIENT_SECRET, "password": "new-password"},
    )
    assert result["reason"] == "reauth_successful"
    assert locus_entry.data["password"] == "new-password"
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_reauth_of_a_client_credentials_account(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Without a user, only the client secret is asked."""
    from tests.conftest import locus_entry_for  # noqa: PLC0415

    entry = locus_entry_for(
        simulator,
        client_id=CC_CLIENT_ID,
        client_secret=CC_CLIENT_SECRET,
        username="",
        password="",
        sites=[LOCUS_SMALL_SITES[1]],
    )
    assert await setup_entry(entry)
    result = await entry.start_reauth_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == ["client_secret"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_secret": CC_CLIENT_SECRET}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_reconfigure_sites(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    locus_entry: MockConfigEntry,
) -> None:
    """Reconfigure re-checks the URL and lets the user choose other sites.

    The site left out goes with its whole tree of component devices (an inverter
    below a meter below the site) and their entities; the site kept stays whole.
    """
    assert await setup_entry(locus_entry)
    dropped, kept = LOCUS_SMALL_SITES
    devices = dr.async_get(hass)

    def tree(site: str) -> set[str]:
        return {site} | {
            f"component-{c.id}"
            for c in simulator.locus.components_of(int(site))
            if not c.is_conceptual
        }

    def registered() -> set[str]:
        return {
            identifier
            for device in dr.async_entries_for_config_entry(
                devices, locus_entry.entry_id
            )
            for _, identifier in device.identifiers
        }

    assert registered() == tree(dropped) | tree(kept)
    result = await locus_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: simulator.url("locus")}
    )
    assert result["step_id"] == "sites"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SITES: [LOCUS_SMALL_SITES[1]]}
    )
    assert result["reason"] == "reconfigure_successful"
    assert locus_entry.data[CONF_SITES] == [LOCUS_SMALL_SITES[1]]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registered() == tree(kept)
    entities = er.async_entries_for_config_entry(
        er.async_get(hass), locus_entry.entry_id
    )
    assert entities
    assert all(devices.async_get(e.device_id) for e in entities if e.device_id)
