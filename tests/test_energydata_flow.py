"""Energydata.dk flows: the token and first datastreams, subentries, reauth."""

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    DOMAIN,
)
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from .conftest import SetupEntry, energydata_entry_for
from .helpers import settle
from .simulator import Simulator
from .simulator.energydata import DEMO_TOKEN, READ_ONLY_TOKEN

pytestmark = pytest.mark.usefixtures("recorder_mock")

METER = {
    "name": "Main meter",
    "quantity": "energy",
    "unit": "kWh",
    "meaning": "register",
    "topic": "dtu-b101/meter/main/energy",
}


async def _form(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "energydata"}
    )
    assert result["step_id"] == "energydata"
    return str(result["flow_id"])


def _token_step(simulator: Simulator, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "api_token": DEMO_TOKEN,
        "datastreams": "65603, 65863",
        CONF_ADVANCED: {
            CONF_API_URL: simulator.url("energydata"),
            "mqtt_host": "127.0.0.1",
            "mqtt_port": 8883,
        },
    }
    data.update(changes)
    return data


async def test_token_then_each_datastream(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The first step takes several ids; each is described; the entry has them all."""
    flow_id = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator)
    )
    assert result["step_id"] == "datastream"
    assert result["description_placeholders"] == {
        "id": "65603",
        "number": "1",
        "count": "2",
    }
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**METER, "unit": "°C"}
    )
    assert result["errors"] == {"base": "unit_mismatch"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**METER, "topic": "no-suffix"}
    )
    assert result["errors"] == {"base": "invalid_topic"}
    result = await hass.config_entries.flow.async_configure(flow_id, METER)
    assert result["description_placeholders"]["id"] == "65863"
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "name": "Room 12",
            "quantity": "temperature",
            "unit": "",
            "meaning": "measurement",
            "topic": "",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.data["api_token"] == DEMO_TOKEN
    assert entry.data["mqtt_port"] == 8883
    described = {s.data["id"]: dict(s.data) for s in entry.subentries.values()}
    assert described[65603]["topic"] == "dtu-b101/meter/main/energy"
    assert described[65863]["unit"] == "°C"  # the quantity's default
    assert {s.title for s in entry.subentries.values()} == {"Main meter", "Room 12"}
    await settle(hass)  # its MQTT listener lasts as long as the entry
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"api_token": "wrong"}, {"base": "invalid_auth"}),
        (
            {"api_token": READ_ONLY_TOKEN, "datastreams": "65603, 70001"},
            {"base": "datastream_forbidden"},
        ),
        ({"datastreams": "65603, 99999"}, {"base": "unknown_datastream"}),
        ({"datastreams": "meter one"}, {"datastreams": "invalid_datastreams"}),
        (
            {CONF_ADVANCED: {CONF_API_URL: "http://api.example.com/v1"}},
            {"base": "insecure_url"},
        ),
    ],
)
async def test_token_step_errors(
    hass: HomeAssistant,
    simulator: Simulator,
    changes: dict[str, Any],
    error: dict[str, str],
) -> None:
    """Each problem is shown on the form; a corrected form goes on."""
    flow_id = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator, **changes)
    )
    assert result["errors"] == error
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator)
    )
    assert result["step_id"] == "datastream"


async def test_the_same_token_twice_aborts(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """One entry per token."""
    energydata_entry_for(simulator).add_to_hass(hass)
    flow_id = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_add_edit_and_refuse_datastreams(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Subentries: add one (checked with a latest read), refuse a duplicate, edit one."""
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "user"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"id": 99999, **METER, "name": "Nope", "topic": ""}
    )
    assert result["errors"] == {"base": "unknown_datastream"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "id": 70001,
            "name": "Heating",
            "quantity": "water",
            "unit": "m³",
            "meaning": "register",
            "topic": "",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert {s.data["id"] for s in entry.subentries.values()} == {65603, 70001}
    assert hass.states.get("sensor.heating") is not None

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"id": 65603, **METER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    heating = next(s for s in entry.subentries.values() if s.data["id"] == 70001)
    result = await entry.start_subentry_reconfigure_flow(hass, heating.subentry_id)
    assert "id" not in [str(key) for key in result["data_schema"].schema]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "name": "District heating",
            "quantity": "water",
            "unit": "m³",
            "meaning": "register",
            "topic": "",
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.subentries[heating.subentry_id].data["name"] == "District heating"


async def test_a_token_that_may_not_read_the_new_datastream(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """The check of a new datastream uses the entry's own token."""
    entry = energydata_entry_for(simulator, streams=[65603], token=READ_ONLY_TOKEN)
    assert await setup_entry(entry)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"id": 70001, **METER, "name": "Heating", "topic": ""}
    )
    assert result["errors"] == {"base": "datastream_forbidden"}


async def test_datastreams_need_a_loaded_account(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Without a loaded entry there is no token to check with: say so."""
    entry = energydata_entry_for(simulator, streams=[65603])
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"


async def test_reauth_with_a_new_token(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A new token for the same account replaces the old one."""
    entry: MockConfigEntry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await entry.start_reauth_flow(hass)
    assert [str(k) for k in result["data_schema"].schema] == ["api_token"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_token": "not-a-token"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_token": DEMO_TOKEN}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_reconfigure_the_broker(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Reconfigure changes the API URL and the MQTT broker together."""
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await entry.start_reconfigure_flow(hass)
    assert [str(k) for k in result["data_schema"].schema] == [
        CONF_API_URL,
        "mqtt_host",
        "mqtt_port",
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_API_URL: simulator.url("energydata"),
            "mqtt_host": "127.0.0.1",
            "mqtt_port": 18883,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["mqtt_port"] == 18883
    await hass.async_block_till_done(wait_background_tasks=True)
