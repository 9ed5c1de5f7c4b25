"""FlexMeasures' config flow: server address, e-mail and password; reauth, reconfigure.

Against the simulator (its errors, its versions) and, for the way a user meets it
first, against the real FlexMeasures server.
"""

from dataclasses import replace
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from tests.conftest import SetupEntry
from tests.flexmeasures_real import FlexMeasuresServer
from tests.helpers import open_flow, settle
from tests.simulator import Simulator
from tests.simulator.flexmeasures_data import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    GARAGE_ID,
    HOUSE_ID,
)

pytestmark = pytest.mark.usefixtures("recorder_mock")


def server_of(url: str) -> str:
    """Return a server address's host and port (the ids' server part)."""
    return url.split("://", 1)[1].split("/", 1)[0]


def typed(
    url: str, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD
) -> dict[str, Any]:
    """Return what a user types in the FlexMeasures form."""
    return {"url": url, "email": email, "password": password}


async def add_demo(hass: HomeAssistant, simulator: Simulator) -> ConfigEntry:
    """Add the simulator's demo user through the flow, both top-level assets."""
    result = await open_flow(hass, "flexmeasures")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], typed(simulator.url("flexmeasures"))
    )
    assert result["step_id"] == "sites"
    server = server_of(simulator.url("flexmeasures"))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_SITES: [f"{server}:{HOUSE_ID}", f"{server}:{GARAGE_ID}"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await settle(hass)
    return entry


async def test_the_form_and_a_new_entry(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Server address first (no advanced section), then e-mail and password."""
    result = await open_flow(hass, "flexmeasures")
    assert [str(key) for key in result["data_schema"].schema] == [
        "url",
        "email",
        "password",
    ]
    entry = await add_demo(hass, simulator)
    server = server_of(simulator.url("flexmeasures"))
    assert entry.title == f"FlexMeasures {DEMO_EMAIL}"
    assert entry.unique_id == f"flexmeasures_{server}:1"
    assert entry.data == {
        CONF_PROVIDER: "flexmeasures",
        CONF_API_URL: simulator.url("flexmeasures"),
        "email": DEMO_EMAIL,
        "password": DEMO_PASSWORD,
        "server": server,
        CONF_SITES: [f"{server}:{HOUSE_ID}", f"{server}:{GARAGE_ID}"],
        CONF_KNOWN_SITES: [f"{server}:{HOUSE_ID}", f"{server}:{GARAGE_ID}"],
    }
    assert entry.state is ConfigEntryState.LOADED
    assert DEMO_PASSWORD not in str(entry.unique_id)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"password": "wrong"}, "invalid_auth"),
        ({"email": "nobody@example.com"}, "invalid_auth"),
        ({"url": "http://flexmeasures.example.com"}, "insecure_url"),
        ({"url": "ftp://127.0.0.1"}, "invalid_url"),
        ({"url": "http://127.0.0.1:9"}, "cannot_connect"),
        ({"versions": ()}, "unsupported_server"),
        ({"versions": ("v2_0",)}, "unsupported_server"),
        ({"fault": "http_500"}, "cannot_connect"),
    ],
)
async def test_sign_in_errors(
    hass: HomeAssistant,
    simulator: Simulator,
    change: dict[str, Any],
    error: str,
) -> None:
    """Each refusal is a translated form error, and the form stays filled in."""
    if "versions" in change:
        simulator.flexmeasures.api_versions = change.pop("versions")
    if "fault" in change:
        simulator.faults.add(change.pop("fault"), cloud="flexmeasures")
    result = await open_flow(hass, "flexmeasures")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], typed(simulator.url("flexmeasures")) | change
    )
    assert result["type"] is FlowResultType.FORM
    # The server's address is the form's first field: a refused one shows there.
    where = "url" if error in ("insecure_url", "invalid_url") else "base"
    assert result["errors"] == {where: error}


async def test_a_user_of_an_account_without_assets(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """no_sites: the user's account holds no asset."""
    cloud = simulator.flexmeasures
    lonely = replace(
        cloud.users[DEMO_EMAIL], id=99, email="lonely@example.com", account_id=99
    )
    cloud.users[lonely.email] = lonely
    result = await open_flow(hass, "flexmeasures")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], typed(simulator.url("flexmeasures"), email=lonely.email)
    )
    assert result["errors"] == {"base": "no_sites"}


async def test_reauth_with_a_new_password(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The password changed on the server: reauth asks for it, checks it, reloads."""
    entry = await add_demo(hass, simulator)
    cloud = simulator.flexmeasures
    cloud.users[DEMO_EMAIL] = replace(cloud.users[DEMO_EMAIL], password="new-pass-2")
    cloud.revoke_tokens()
    result = await MockConfigEntry.start_reauth_flow(entry, hass)  # type: ignore[arg-type]
    assert [str(key) for key in result["data_schema"].schema] == ["password"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": "new-pass-2"}
    )
    assert result["reason"] == "reauth_successful"
    assert entry.data["password"] == "new-pass-2"
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_a_server_that_moved(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A new address for the same server keeps the entry's ids and entities.

    (Another host name cannot be resolved in tests: the address changes by its
    path; tests/flexmeasures/test_provider_sim.py shows ids follow `server`.)
    """
    entry = await add_demo(hass, simulator)
    entities = er.async_get(hass)
    before = {
        e.unique_id for e in er.async_entries_for_config_entry(entities, entry.entry_id)
    }
    assert before
    result = await MockConfigEntry.start_reconfigure_flow(entry, hass)  # type: ignore[arg-type]
    assert [str(key) for key in result["data_schema"].schema] == ["url", "password"]
    moved = simulator.url("flexmeasures") + "/"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": moved}
    )
    assert result["step_id"] == "sites"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SITES: entry.data[CONF_SITES]}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_API_URL] == moved
    assert entry.data["server"] == server_of(simulator.url("flexmeasures"))
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    after = {
        e.unique_id for e in er.async_entries_for_config_entry(entities, entry.entry_id)
    }
    assert after == before


@pytest.mark.usefixtures("loopback")
async def test_sign_in_to_the_real_server(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    flexmeasures_real: FlexMeasuresServer,
) -> None:
    """The real server, as a user meets it: one top-level asset, no sites step."""
    server = flexmeasures_real
    result = await open_flow(hass, "flexmeasures")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        typed(server.url, server.demo.email, server.demo.password),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    ident = server_of(server.url)
    assert entry.unique_id == f"flexmeasures_{ident}:{server.demo.user_id}"
    assert entry.data[CONF_SITES] == [f"{ident}:{server.assets['Demo house']}"]
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.async_entity_ids("sensor")
    assert DOMAIN in hass.config.components


async def test_an_old_server_that_serves_v1_1_only(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A server before FlexMeasures 0.13: its connections are the sites offered."""
    simulator.flexmeasures.api_versions = ("v1_1",)
    result = await open_flow(hass, "flexmeasures")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], typed(simulator.url("flexmeasures"))
    )
    assert result["step_id"] == "sites"
    offered = [
        o["label"] for o in result["data_schema"].schema[CONF_SITES].config["options"]
    ]
    assert "grid power" in offered
