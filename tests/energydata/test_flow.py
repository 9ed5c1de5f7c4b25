"""Energydata.dk flows: the token and first datastreams, subentries, reauth."""

from datetime import datetime
from typing import Any
from unittest.mock import patch

import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    DOMAIN,
)
from custom_components.cloud_energy_meters.extras.energydata.datastreams import (
    TYPES,
    datastream_schema,
)
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.model import Kind, Quantity
from custom_components.cloud_energy_meters.sensor import channel_description
from homeassistant.components.sensor import DEVICE_CLASS_STATE_CLASSES
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from tests.conftest import SetupEntry, energydata_entry_for
from tests.helpers import open_flow, settle, stored
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.energydata import DEMO_TOKEN, READ_ONLY_TOKEN, EnergydataCloud

pytestmark = pytest.mark.usefixtures("recorder_mock")

METER = {
    "name": "Main meter",
    "type": "energy_register",
    "topic": "dtu-b101/meter/main/energy",
}


def unit_options(result: Any) -> list[str]:
    """Return the units a unit form offers."""
    assert result["step_id"] in ("datastream_unit", "unit")
    return list(result["data_schema"].schema["unit"].config["options"])


def shown(result: Any) -> dict[str, Any]:
    """Return the values a form shows filled in: suggestions, else defaults."""
    values: dict[str, Any] = {}
    for key in result["data_schema"].schema:
        if isinstance(key.description, dict) and "suggested_value" in key.description:
            values[str(key)] = key.description["suggested_value"]
        elif key.default is not probatio.UNDEFINED:
            values[str(key)] = key.default()
    return values


async def _add_datastream(
    hass: HomeAssistant, entry: MockConfigEntry, described: dict[str, Any]
) -> Any:
    """Open the entry's "add a datastream" flow and send its first form."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], described
    )


async def _form(hass: HomeAssistant) -> str:
    """Open the flow on Energydata.dk's token form; return the flow's id."""
    return str((await open_flow(hass, "energydata"))["flow_id"])


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
    """Several ids, checked with one read; each described on forms of its own.

    What a datastream measures comes first, then its unit among that quantity's
    units only (the usual one shown chosen); each datastream starts blank.
    """
    flow_id = await _form(hass)
    simulator.clear_log()
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator)
    )
    assert result["step_id"] == "datastream"
    # The token and both datastreams are proven by one latest read.
    assert [(r.path, r.query) for r in simulator.log_for("energydata")] == [
        ("/datastreams/values", {"ids": "65603,65863", "latest": "true"})
    ]
    assert result["description_placeholders"] == {
        "id": "65603",
        "number": "1",
        "count": "2",
    }
    # Nothing chosen for the user: no type (the frontend would preselect the first).
    assert shown(result) == {"name": "Datastream 65603", "type": "", "topic": ""}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**METER, "topic": "no-suffix"}
    )
    assert result["errors"] == {"topic": "invalid_topic"}
    assert shown(result)["topic"] == "no-suffix"  # the user's input is kept
    result = await hass.config_entries.flow.async_configure(flow_id, METER)
    assert result["step_id"] == "datastream_unit"
    assert unit_options(result) == ["kWh", "Wh", "MWh"]  # energy's units only
    # The usual unit, in the open; energy also says what it counts on the dashboard.
    assert shown(result) == {"unit": "kWh", "role": "consumption"}
    # Another unit, or none, is refused (the frontend shows it on the field).
    for unit in ("°C", ""):
        with pytest.raises(InvalidData):
            await hass.config_entries.flow.async_configure(flow_id, {"unit": unit})
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"unit": "Wh", "role": "grid_import"}
    )
    assert result["description_placeholders"]["id"] == "65863"
    # The next datastream starts blank: nothing of the previous answers.
    assert shown(result) == {"name": "Datastream 65863", "type": "", "topic": ""}
    # A temperature has one unit: no unit form.
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Room 12", "type": "temperature", "topic": ""}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.title == "Energydata.dk"
    assert entry.data["api_token"] == DEMO_TOKEN
    assert entry.data["mqtt_port"] == 8883
    account = entry.data["account_id"]
    assert entry.unique_id == f"energydata_{account}"
    assert entry.data["sites"] == [account]
    described = {s.data["id"]: dict(s.data) for s in entry.subentries.values()}
    assert described[65603] == {
        "id": 65603,
        "name": "Main meter",
        "quantity": "energy",
        "unit": "Wh",
        "meaning": "register",
        "topic": "dtu-b101/meter/main/energy",
        "role": "grid_import",
    }
    assert described[65863]["unit"] == "°C"  # the quantity's only unit
    assert described[65863]["meaning"] == "measurement"
    assert {s.title for s in entry.subentries.values()} == {"Main meter", "Room 12"}
    await settle(hass)  # its MQTT listener lasts as long as the entry
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("kind", "units"),
    [
        ("energy_amount_end", ["kWh", "Wh", "MWh"]),
        ("power", ["W", "kW"]),
        ("water_register", ["m³", "L"]),
        ("gas_amount_start", ["m³", "L"]),
    ],
)
async def test_the_units_follow_what_the_datastream_measures(
    hass: HomeAssistant, simulator: Simulator, kind: str, units: list[str]
) -> None:
    """The unit form offers the units of the chosen quantity, and only those."""
    flow_id = await _form(hass)
    await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator, datastreams="65603")
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Stream", "type": kind, "topic": ""}
    )
    assert unit_options(result) == units
    assert shown(result)["unit"] == units[0]
    # Only energy is asked what it counts on the Energy dashboard.
    assert ("role" in shown(result)) == kind.startswith("energy")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"unit": units[-1]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = result["result"].subentries.values()
    assert subentry.data["unit"] == units[-1]
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_an_energy_datastream_says_what_it_counts_on_the_dashboard(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """The unit form asks an energy datastream's role; its entity and offer follow.

    A datastream described before the form asked (no role) stays off the Energy
    dashboard; editing it shows "use of a device" to start with, the usual answer.
    """
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await _add_datastream(
        hass,
        entry,
        {"id": "65607", "name": "PV", "type": "energy_amount_end", "topic": ""},
    )
    role = result["data_schema"].schema["role"]
    assert role.config["options"] == [
        "consumption",
        "grid_import",
        "grid_export",
        "production",
        "measurement",
    ]
    with pytest.raises(InvalidData):  # a battery needs both ways: not offered
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"unit": "Wh", "role": "battery_charge"}
        )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"unit": "Wh", "role": "production"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    pv = next(s for s in entry.subentries.values() if s.data["id"] == 65607)
    assert pv.data["role"] == "production"
    channels = {c.source_id: c for c in entry.runtime_data.channels}
    assert channels["65607"].role == "production"
    assert channels["65603"].role == "measurement"  # described before: no role
    offer = ir.async_get(hass).async_get_issue(DOMAIN, f"energy_offer_{entry.entry_id}")
    assert offer is not None  # the solar production can be added

    main = next(s for s in entry.subentries.values() if s.data["id"] == 65603)
    result = await entry.start_subentry_reconfigure_flow(hass, main.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**METER, "name": "Main meter"}
    )
    assert shown(result) == {"unit": "kWh", "role": "consumption"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"unit": "kWh", "role": "grid_import"}
    )
    assert result["reason"] == "reconfigure_successful"
    await settle(hass)
    channels = {c.source_id: c for c in entry.runtime_data.channels}
    assert channels["65603"].role == "grid_import"
    # Edited again: its role is shown as it was.
    result = await entry.start_subentry_reconfigure_flow(hass, main.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**METER, "name": "Main meter"}
    )
    assert shown(result)["role"] == "grid_import"


async def test_text_has_no_unit_and_another_number_any(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Text skips the unit form (it has none); another number takes any unit or none."""
    flow_id = await _form(hass)
    await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator, datastreams="70002, 65863")
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Battery state", "type": "text", "topic": ""}
    )
    assert result["step_id"] == "datastream"  # straight to the next datastream
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Counter", "type": "other_measurement", "topic": ""}
    )
    assert result["step_id"] == "datastream_unit"
    assert shown(result) == {"unit": ""}
    result = await hass.config_entries.flow.async_configure(flow_id, {"unit": "ppm"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    units = {s.title: s.data["unit"] for s in result["result"].subentries.values()}
    assert units == {"Battery state": "", "Counter": "ppm"}
    await settle(hass)
    await hass.config_entries.async_unload(result["result"].entry_id)


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
            {CONF_ADVANCED: "insecure_url"},  # on the section the URL is in
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


async def test_an_api_url_that_is_no_api(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A URL that is not one, or a server that is not the API, is a form error.

    Another entry is there, so its server is compared with what the user typed,
    unreadable or not. Energydata.dk's file storage answers the datastream read
    with 405: the form says it cannot connect (not a refusal of the token); the
    right URL then goes on.
    """
    energydata_entry_for(simulator, streams=[65603]).add_to_hass(hass)
    flow_id = await _form(hass)
    storage = f"{simulator.base_url}/energydata-s3/import"
    for url, errors in (
        ("http://[broken", {CONF_ADVANCED: "invalid_url"}),
        (storage, {"base": "cannot_connect"}),
    ):
        simulator.clear_log()
        result = await hass.config_entries.flow.async_configure(
            flow_id,
            _token_step(
                simulator, datastreams="65863", **{CONF_ADVANCED: {CONF_API_URL: url}}
            ),
        )
        assert result["errors"] == errors, url
    assert [r.status for r in simulator.log_for("energydata")] == [405]
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator, datastreams="65863")
    )
    assert result["step_id"] == "datastream"


async def test_a_datastream_is_read_by_one_entry_per_server(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A datastream another entry reads is refused on the form; on another server not.

    The same token may serve a second entry for other datastreams.
    """
    energydata_entry_for(simulator, streams=[65603]).add_to_hass(hass)
    flow_id = await _form(hass)
    simulator.clear_log()
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator, datastreams="65863, 65603")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"datastreams": "already_configured"}
    assert shown(result)["datastreams"] == "65863, 65603"  # nothing is lost
    assert simulator.log_for("energydata") == []
    # The same id on another server is not refused as taken (that server is
    # unreachable here: the form says so instead).
    other_server = {CONF_API_URL: "http://127.0.0.1:9/energydata/api/v1"}
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        _token_step(simulator, datastreams="65603", **{CONF_ADVANCED: other_server}),
    )
    assert result["errors"] == {"base": "cannot_connect"}
    # The same token for another datastream on the same server: a second entry.
    flow_id = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _token_step(simulator, datastreams="65863")
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Room", "type": "temperature", "topic": ""}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_add_edit_and_refuse_datastreams(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Subentries: add one (checked with a latest read), refuse a duplicate, edit one.

    The id field starts empty; a wrong, duplicate or unknown id is an error on the
    id field that keeps what the user typed (the flow goes on); the unit comes
    next, among the quantity's.
    """
    other = energydata_entry_for(simulator, streams=[70003], account_id="0aa0bb0cc0dd")
    other.add_to_hass(hass)
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "user"
    assert shown(result) == {"type": "", "topic": ""}  # nothing chosen, no id
    for typed, error in (
        ("", "invalid_datastream_id"),
        ("sixty", "invalid_datastream_id"),
        ("65603", "already_configured"),  # this entry's
        ("70003", "already_configured"),  # another entry's
        ("99999", "unknown_datastream"),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**METER, "id": typed, "name": "Nope", "topic": ""}
        )
        assert result["type"] is FlowResultType.FORM, typed
        assert result["errors"] == {"id": error}, typed
        assert shown(result)["name"] == "Nope"
        assert shown(result)["id"] == typed
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"id": " 70001 ", "name": "Heating", "type": "water_register", "topic": ""},
    )
    assert result["step_id"] == "unit"
    assert unit_options(result) == ["m³", "L"]
    assert shown(result) == {"unit": "m³"}
    with pytest.raises(InvalidData):  # not a unit of water
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"unit": "kWh"}
        )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"unit": "m³"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert {s.data["id"] for s in entry.subentries.values()} == {65603, 70001}
    heating = next(s for s in entry.subentries.values() if s.data["id"] == 70001)
    assert heating.data["unit"] == "m³"
    assert hass.states.get("sensor.heating") is not None

    result = await entry.start_subentry_reconfigure_flow(hass, heating.subentry_id)
    assert "id" not in [str(key) for key in result["data_schema"].schema]
    assert shown(result) == {"name": "Heating", "type": "water_register", "topic": ""}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "District heating", "type": "water_register", "topic": ""},
    )
    assert shown(result) == {"unit": "m³"}  # its unit, as it was
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"unit": "L"}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    edited = entry.subentries[heating.subentry_id].data
    assert (edited["name"], edited["unit"]) == ("District heating", "L")
    # The entry took the edit at once (a reload): it reads litres now. (The sensor
    # still shows m³: Home Assistant converts to the unit it first registered.)
    await settle(hass)
    channels = {c.source_id: c for c in entry.runtime_data.channels}
    assert (channels["70001"].name, channels["70001"].unit) == ("District heating", "L")


def _assert_shows_the_text(hass: HomeAssistant, simulator: Simulator) -> None:
    """Assert the battery state's sensor shows its latest text, as text (no unit)."""
    state = hass.states.get("sensor.battery_state")
    assert state is not None
    latest = simulator.energydata.latest(70002)
    assert latest is not None
    assert state.state == str(latest[1])
    assert "unit_of_measurement" not in state.attributes
    assert "state_class" not in state.attributes


async def test_a_text_datastream_is_a_text_sensor(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Text has no unit, whatever the form held; its values show as written."""
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await _add_datastream(
        hass, entry, {"id": "70002", "name": "Battery state", "type": "text"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["unit"] == ""
    await hass.async_block_till_done(wait_background_tasks=True)
    await entry.runtime_data.async_refresh()
    _assert_shows_the_text(hass, simulator)


async def test_a_text_datastream_saved_with_a_unit_shows_its_text(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A text datastream an older form saved with a unit still shows its text.

    With a unit, Home Assistant would take the sensor for a number and refuse every
    text value (a ValueError at each refresh): a text sensor never has one.
    """
    entry = energydata_entry_for(simulator, streams=[70002])
    entry.add_to_hass(hass)
    (subentry,) = entry.subentries.values()
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "unit": "m³"}
    )
    assert await setup_entry(entry)
    await entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    _assert_shows_the_text(hass, simulator)


async def test_the_form_offers_only_combinations_home_assistant_accepts() -> None:
    """Every type the form offers becomes a sensor Home Assistant accepts.

    Energy, water and gas are registers or amounts (never measurements); power,
    temperature and humidity are measurements (never registers); text has no unit.
    """
    offered = datastream_schema(with_id=True).schema
    select = next(value for key, value in offered.items() if str(key) == "type")
    assert select.config["options"] == list(TYPES)
    provider = build_provider(
        "energydata",
        None,  # no request is sent
        api_url="https://example.invalid",
        api_token="x",
        settings={
            "account_id": "0123456789ab",
            "datastreams": [
                {"id": i, "quantity": quantity.value, "meaning": meaning}
                for i, (quantity, meaning) in enumerate(TYPES.values(), 1)
            ],
        },
    )
    channels = (await provider.async_discover([])).channels
    assert len(channels) == len(TYPES)
    for channel in channels:
        description = channel_description(channel)
        if description.device_class in DEVICE_CLASS_STATE_CLASSES:
            allowed = DEVICE_CLASS_STATE_CLASSES[description.device_class]
            assert description.state_class in allowed | {None}, channel.quantity
        if channel.quantity is Quantity.TEXT:
            assert description.native_unit_of_measurement is None
            assert description.state_class is None
    kinds = {(c.quantity, c.kind) for c in channels}
    assert (Quantity.ENERGY, Kind.INSTANT) not in kinds
    assert (Quantity.POWER, Kind.REGISTER) not in kinds


async def test_a_token_that_may_not_read_the_new_datastream(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """The check of a new datastream uses the entry's own token."""
    entry = energydata_entry_for(simulator, streams=[65603], token=READ_ONLY_TOKEN)
    assert await setup_entry(entry)
    result = await _add_datastream(
        hass, entry, {**METER, "id": "70001", "name": "Heating", "topic": ""}
    )
    assert result["errors"] == {"id": "datastream_forbidden"}


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


async def test_an_unexpected_error_while_checking_a_datastream_is_unknown(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A bug (not a cloud failure) during the check shows `unknown`; a retry adds it."""
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    heating = {**METER, "id": "70001", "name": "Heating", "type": "water_register"}
    with patch.object(EnergydataProvider, "async_check", side_effect=RuntimeError):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**heating, "topic": ""}
        )
    assert result["errors"] == {"base": "unknown"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**heating, "topic": ""}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"unit": "m³"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)


NEW_TOKEN = "edk-token-issued-2027"  # noqa: S105


async def _history(
    hass: HomeAssistant, entry: MockConfigEntry
) -> dict[str, dict[datetime, tuple[float, float]]]:
    """Return every stored hour of the entry's statistics, by statistic id."""
    account = entry.data["account_id"]
    return {
        statistic_id: await stored(hass, statistic_id)
        for statistic_id in (
            f"{DOMAIN}:energydata_{account}_65603_energy",
            f"{DOMAIN}:energydata_{account}_70001_volume",
        )
    }


def _identity(hass: HomeAssistant, entry: MockConfigEntry) -> set[tuple[str, ...]]:
    """Return the entry's entities and devices as the user knows them."""
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return {(e.entity_id, e.unique_id, str(e.device_id)) for e in entities} | {
        (d.id, *sorted(i for _, i in d.identifiers)) for d in devices
    }


@pytest.mark.freeze_time("2026-11-20T10:00:00+00:00", tick=True)
@pytest.mark.parametrize("via", ["reauth", "reconfigure"])
async def test_a_new_token_keeps_every_entity_and_every_hour(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, via: str
) -> None:
    """A token replaced (it expired, say) by a new one that reads the datastreams.

    Reauthentication and reconfiguration take any token that may read every
    datastream of the entry, proven by one latest read; entities, devices and every
    stored hour stay as they were.
    """
    entry = energydata_entry_for(simulator, streams=[65603, 70001])
    assert await setup_entry(entry)
    before = await _history(hass, entry)
    assert all(before.values())
    known = _identity(hass, entry)
    simulator.energydata.revoke(DEMO_TOKEN)
    simulator.energydata.add_token(NEW_TOKEN)
    if via == "reauth":
        await entry.runtime_data.async_refresh()  # the old token is refused
        await hass.async_block_till_done()
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        result = await hass.config_entries.flow.async_configure(flow["flow_id"])
        assert [str(key) for key in result["data_schema"].schema] == ["api_token"]
    else:
        result = await entry.start_reconfigure_flow(hass)
        assert "api_token" in [str(key) for key in result["data_schema"].schema]
    flow_id = result["flow_id"]

    def step(token: str) -> dict[str, Any]:
        if via == "reauth":
            return {"api_token": token}
        return {CONF_API_URL: simulator.url("energydata"), "api_token": token}

    # A token that may not read every datastream of the entry is refused.
    result = await hass.config_entries.flow.async_configure(
        flow_id, step(READ_ONLY_TOKEN)
    )
    assert result["errors"] == {"base": "datastream_forbidden"}
    simulator.clear_log()
    result = await hass.config_entries.flow.async_configure(flow_id, step(NEW_TOKEN))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == f"{via}_successful"
    checks = [r for r in simulator.log_for("energydata") if "latest" in r.query]
    assert checks[0].query["ids"] == "65603,70001"
    assert checks[0].account == EnergydataCloud.account_of(NEW_TOKEN)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data["api_token"] == NEW_TOKEN
    assert _identity(hass, entry) == known
    after = await _history(hass, entry)
    for statistic_id, rows in before.items():
        # The newest hour may have grown meanwhile (a reading of its last minute
        # published after the first import, on a busy machine): the rest is kept.
        kept = sorted(rows)[:-1]
        assert {hour: after[statistic_id][hour] for hour in kept} == {
            hour: rows[hour] for hour in kept
        }
        assert after[statistic_id][max(rows)][0] >= rows[max(rows)][0]


async def test_reconfigure_the_broker(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Reconfigure changes the API URL and the MQTT broker; an empty token is kept."""
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    result = await entry.start_reconfigure_flow(hass)
    assert [str(k) for k in result["data_schema"].schema] == [
        CONF_API_URL,
        "mqtt_host",
        "mqtt_port",
        "api_token",
    ]
    assert "api_token" not in shown(result)
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
    assert entry.data["api_token"] == DEMO_TOKEN
    await hass.async_block_till_done(wait_background_tasks=True)
