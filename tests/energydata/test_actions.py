"""Energydata.dk actions and datastream checks: refusals, failures, what reaches the cloud.

The actions are called through Home Assistant's service registry and talk to the
simulator over loopback HTTP; its import jobs and ingested readings are the truth.
Datastream subentries are checked with a latest read that the simulator answers.
"""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import DOMAIN
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from tests.conftest import SITE_IDS, SetupEntry, climkit_entry_for, energydata_entry_for
from tests.simulator import Simulator
from tests.simulator.clock import epoch_ms
from tests.simulator.energydata import (
    BATTERY_STATE_ID,
    HEATING_VOLUME_ID,
    MAIN_METER_ID,
)

PUBLISH = "energydata_publish"
UPLOAD = "energydata_upload_history"
SENSOR = "sensor.lab_reading"


async def record(
    hass: HomeAssistant, entity_id: str, states: Sequence[str]
) -> list[datetime]:
    """Record these states of an entity, one after the other; return their times."""
    times: list[datetime] = []
    for state in states:
        hass.states.async_set(entity_id, state)
        current = hass.states.get(entity_id)
        assert current is not None
        times.append(current.last_updated)
        await asyncio.sleep(0.01)  # distinct millisecond timestamps
    await async_wait_recording_done(hass)
    return times


def upload_call(entry: MockConfigEntry, datastream: int | str) -> dict[str, Any]:
    """Return the data of an upload of SENSOR's ten minutes around now."""
    now = datetime.now(UTC)
    return {
        "config_entry_id": entry.entry_id,
        "entity_id": SENSOR,
        "datastream": str(datastream),
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
    }


def import_requests(simulator: Simulator) -> list[str]:
    """Return the paths of every batch import request the simulator received."""
    return [
        request.path
        for request in simulator.log
        if "/import" in request.path or request.path.startswith("/energydata-s3")
    ]


async def polled_entry(
    simulator: Simulator, setup_entry: SetupEntry, **kwargs: Any
) -> MockConfigEntry:
    """Set up an Energydata.dk entry that polls only (no MQTT topics)."""
    entry = energydata_entry_for(simulator, streams=[MAIN_METER_ID], **kwargs)
    assert await setup_entry(entry)
    assert entry.state is ConfigEntryState.LOADED
    return entry


# --------------------------------------------------------------------------- which entry


async def assert_actions_refused(
    hass: HomeAssistant, entry: MockConfigEntry, reason: str
) -> None:
    """Call both actions with the entry: each must be refused, naming the entry."""
    for service, data in (
        (PUBLISH, {"topic": "dtu-b101/room/12/setpoint", "value": 21.5}),
        (UPLOAD, upload_call(entry, MAIN_METER_ID)),
    ):
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                DOMAIN,
                service,
                {**data, "config_entry_id": entry.entry_id},
                blocking=True,
            )
        assert caught.value.translation_key == reason
        assert caught.value.translation_placeholders == {"entry": entry.title}


async def test_actions_refuse_an_account_of_another_cloud(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
) -> None:
    """A Climkit entry named in an Energydata.dk action is refused by name.

    The entry picker lists every entry of the integration: a user picking the
    wrong one must be told so, not get a crash or a request sent with a Climkit
    password to a cloud that does not know it.
    """
    climkit_entry = climkit_entry_for(simulator, sites=SITE_IDS[:1])
    assert await setup_entry(climkit_entry)
    assert climkit_entry.state is ConfigEntryState.LOADED
    await assert_actions_refused(hass, climkit_entry, "not_energydata")
    assert simulator.log_for("energydata") == []


async def test_actions_refuse_an_account_that_is_not_loaded(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """An unloaded entry, or one whose setup failed, has no provider to act with.

    Both must be refused with a clear message (the user can reload or fix the
    entry) instead of an AttributeError on missing runtime data.
    """
    unloaded = await polled_entry(simulator, setup_entry)
    assert await hass.config_entries.async_unload(unloaded.entry_id)
    assert unloaded.state is ConfigEntryState.NOT_LOADED
    refused = energydata_entry_for(
        simulator, streams=[MAIN_METER_ID], token="not-a-token"
    )
    assert not await setup_entry(refused)
    assert refused.state is ConfigEntryState.SETUP_ERROR
    for entry in (unloaded, refused):
        await assert_actions_refused(hass, entry, "entry_not_loaded")
    assert import_requests(simulator) == []


# --------------------------------------------------------------------------- publish


async def test_publish_on_an_account_without_mqtt_tries_its_broker(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """An account whose datastreams have no topic still publishes, on its own link.

    It never listens, so the action connects for the message; with nothing on
    the broker's port, it fails with a translated reason (not a silent success,
    not a traceback). tests/energydata/test_publish.py has the real broker.
    """
    entry = await polled_entry(simulator, setup_entry)
    assert not entry.runtime_data.provider.push_configured
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            PUBLISH,
            {
                "config_entry_id": entry.entry_id,
                "topic": "dtu-b101/room/12/setpoint",
                "value": 21.5,
            },
            blocking=True,
        )
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "mqtt_not_connected"


@pytest.mark.parametrize(
    "topic", ["dtu-b101/#", "dtu-b101/+/energy", "/", "dtu-b101//x", "dtu b101/x"]
)
async def test_publish_refuses_a_topic_that_is_no_place(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, topic: str
) -> None:
    """Wildcards, spaces and empty levels are refused with a translated error.

    MQTT forbids publishing on a wildcard; left to the MQTT library, such a topic
    surfaced as a bare ValueError (a traceback, no message for the user).
    """
    entry = await polled_entry(simulator, setup_entry)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            PUBLISH,
            {"config_entry_id": entry.entry_id, "topic": topic, "value": 1},
            blocking=True,
        )
    assert caught.value.translation_key == "invalid_topic"
    assert caught.value.translation_placeholders == {"topic": topic}


# --------------------------------------------------------------------------- upload


@pytest.mark.parametrize(
    "end_offset", [timedelta(0), -timedelta(hours=1)], ids=["equal", "before"]
)
async def test_upload_refuses_an_end_not_after_its_start(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    end_offset: timedelta,
) -> None:
    """A period that ends where or before it starts is refused before any request.

    Otherwise the cloud would get an empty (invalid) import job for a typo.
    """
    entry = await polled_entry(simulator, setup_entry)
    await record(hass, SENSOR, ["1", "2"])
    start = datetime.now(UTC) - timedelta(minutes=5)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            UPLOAD,
            {
                **upload_call(entry, MAIN_METER_ID),
                "start": start.isoformat(),
                "end": (start + end_offset).isoformat(),
            },
            blocking=True,
        )
    assert caught.value.translation_key == "end_before_start"
    assert import_requests(simulator) == []


@pytest.mark.parametrize(
    "path",
    [
        r"^/import$",
        r"/upload_url$",
        r"^/energydata-s3/",
        r"/validate$",
        r"/ingest$",
    ],
    ids=["create", "upload_url", "s3", "validate", "ingest"],
)
async def test_upload_when_a_step_fails_on_the_cloud(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    path: str,
) -> None:
    """A 500 at any step of the batch import: a translated error, nothing ingested.

    The action must report the cloud's failure (and not claim success or hang);
    the same call succeeds once the cloud is well again, so nothing is left
    half-done on our side.
    """
    simulator.energydata.step_delay = 0.01
    entry = await polled_entry(simulator, setup_entry)
    await record(hass, SENSOR, ["100.5", "101.25"])
    simulator.faults.add("http_500", cloud="energydata", path=path)
    call = upload_call(entry, MAIN_METER_ID)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(DOMAIN, UPLOAD, call, blocking=True)
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "action_failed"
    assert caught.value.translation_placeholders is not None
    assert "(500 on " in caught.value.translation_placeholders["error"]
    assert simulator.faults.pending == []
    assert simulator.energydata.ingested == {}

    response = await hass.services.async_call(
        DOMAIN, UPLOAD, call, blocking=True, return_response=True
    )
    assert response is not None
    assert response["status"] == "done"
    ingested = [value for _, value in simulator.energydata.ingested[MAIN_METER_ID]]
    assert ingested == [100.5, 101.25]


async def test_upload_refused_at_validation(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Text uploaded into a double datastream: the cloud's own reason, nothing stored.

    The import is refused at validation (status invalid); the user must see the
    status and the cloud's row error, not a success.
    """
    simulator.energydata.step_delay = 0.01
    entry = await polled_entry(simulator, setup_entry)
    await record(hass, SENSOR, ["100.5", "abc"])
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            UPLOAD,
            upload_call(entry, MAIN_METER_ID),
            blocking=True,
            return_response=True,
        )
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "upload_failed"
    assert caught.value.translation_placeholders == {
        "status": "invalid",
        "errors": (
            f"Row 3, column 2: 'abc' is not a valid double for datastream "
            f"{MAIN_METER_ID}."
        ),
    }
    assert [job.status for job in simulator.energydata.imports.values()] == ["invalid"]
    assert simulator.energydata.ingested == {}
    steps = import_requests(simulator)
    assert any(path.endswith("/validate") for path in steps)
    assert not any(path.endswith("/ingest") for path in steps)


async def test_upload_skips_unknown_and_unavailable_and_keeps_text(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Only real values are uploaded: text as text, numbers as numbers, in order.

    `unknown`, `unavailable` and an empty state are Home Assistant's ways of
    saying "no value": sent to a string datastream they would become readings
    nobody measured. Text
    (with a comma and quotes) must arrive unchanged, at its recorded time.
    """
    simulator.energydata.step_delay = 0.01
    entry = await polled_entry(simulator, setup_entry)
    states = [
        "idle",
        "unknown",
        "charging",
        "",
        "unavailable",
        'fault "E42", see log',
        "12.5",
    ]
    times = await record(hass, SENSOR, states)
    response = await hass.services.async_call(
        DOMAIN,
        UPLOAD,
        upload_call(entry, BATTERY_STATE_ID),
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["status"] == "done"
    assert response["rows"] == 4
    ingested = simulator.energydata.ingested[BATTERY_STATE_ID]
    kept = [0, 2, 5, 6]
    assert [value for _, value in ingested] == [
        "idle",
        "charging",
        'fault "E42", see log',
        "12.5",
    ]
    # Millisecond stamps of the recorded times (the recorder may round by 1 µs).
    for (stamp, _), index in zip(ingested, kept, strict=True):
        assert abs(stamp - epoch_ms(times[index])) <= 1


# --------------------------------------------------------------------------- datastreams

HEATING = {
    "id": str(HEATING_VOLUME_ID),
    "name": "Heating",
    "type": "water_register",
    "topic": "",
}


async def test_adding_a_datastream_after_the_token_was_revoked(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A token refused while a datastream is checked shows invalid_auth on the form.

    Telling the user the token is no longer valid (not "cannot connect") points
    them at the fix: a new token, by reauthentication.
    """
    simulator.energydata.add_token("revocable-token", may_import=True)
    entry = await polled_entry(simulator, setup_entry, token="revocable-token")
    simulator.energydata.revoke("revocable-token")
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], HEATING
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert simulator.log_for("energydata")[-1].status == 401
    assert {s.data["id"] for s in entry.subentries.values()} == {MAIN_METER_ID}


async def test_adding_a_datastream_while_the_cloud_fails(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A cloud failing during the check shows cannot_connect; a retry then adds it.

    A passing outage must neither add an unchecked datastream nor end the flow:
    the user can submit the same form again.
    """
    entry = await polled_entry(simulator, setup_entry)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    simulator.faults.add("http_500", cloud="energydata", path=r"/datastreams/values")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], HEATING
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert simulator.faults.pending == []
    assert {s.data["id"] for s in entry.subentries.values()} == {MAIN_METER_ID}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], HEATING
    )
    assert result["step_id"] == "unit"  # water: m³ or L
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"unit": "m³"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert {s.data["id"] for s in entry.subentries.values()} == {
        MAIN_METER_ID,
        HEATING_VOLUME_ID,
    }
