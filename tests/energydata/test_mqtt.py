"""Energydata.dk in real time: a real Mosquitto broker, pushes, publishing, uploads."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import json
import time

import aiomqtt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.providers.mqtt import _read_reason
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
from tests.conftest import SetupEntry, energydata_entry_for
from tests.helpers import assert_matches_truth, energydata_truth, hour, settle, stored
from tests.mqtt_broker import (
    DEMO_PREFIX,
    DEMO_TOKEN,
    READONLY_TOKEN,
    Broker,
    ssl_context,
)
from tests.simulator import Simulator


@pytest.fixture(autouse=True)
def trust_the_broker(mqtt_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the system trust store (what the integration loads) trust the test CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(mqtt_broker.ca_file))


@pytest.fixture(autouse=True)
async def unload_before_the_broker_stops(
    hass: HomeAssistant, mqtt_broker: Broker
) -> AsyncIterator[None]:
    """Unload entries while the broker still runs, as a user would remove one.

    The broker fixture ends before Home Assistant's: a connection lost then would
    (rightly) start the repair issue's timer in a Home Assistant still running.
    """
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def publisher(mqtt_broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    """Return another client of the broker (a sensor publishing to Energydata.dk)."""
    client = aiomqtt.Client(
        mqtt_broker.host,
        mqtt_broker.port,
        username=DEMO_TOKEN,
        tls_context=ssl_context(mqtt_broker),
        protocol=aiomqtt.ProtocolVersion.V311,
    )
    # The broker stopping under it (some tests do) ends this client too: read why,
    # as the integration does, or asyncio logs an error about it.
    client._disconnected.add_done_callback(_read_reason)
    async with client:
        yield client


def entity_of(hass: HomeAssistant, entry: MockConfigEntry, stream: int) -> str:
    """Return the entity id of a datastream's sensor."""
    account = entry.unique_id.removeprefix("energydata_")  # type: ignore[union-attr]
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"energydata:{account}:{stream}"
    )
    assert entity_id
    return entity_id


async def wait_for(condition: object, seconds: float = 5.0) -> float:
    """Wait until `condition()` is true; return how long it took."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > seconds:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def connected_entry(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    broker: Broker,
    streams: list[int] | None = None,
) -> MockConfigEntry:
    """Set up an entry pushed over MQTT and wait until it is connected."""
    entry = energydata_entry_for(
        simulator,
        streams=streams or [65603, 65607, 65863],
        mqtt_port=broker.port,
        topics=True,
    )
    assert await setup_entry(entry)
    await wait_for(lambda: entry.runtime_data.push_connected)
    return entry


async def test_a_message_updates_the_sensor_within_a_second(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    publisher: aiomqtt.Client,
) -> None:
    """Single-value and multi-value messages reach their sensors at once."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    meter = entity_of(hass, entry, 65603)
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    await publisher.publish(
        f"{DEMO_PREFIX}/meter/main/energy",
        json.dumps({"timestamp": stamp, "value": 123456.789}),
        qos=1,
    )
    took = await wait_for(lambda: hass.states.get(meter).state == "123456.789")
    assert took < 1.0
    await publisher.publish(
        DEMO_PREFIX,
        json.dumps(
            {
                "timestamp": stamp + 1000,
                "value": {"room/12/temperature": 21.75, "pv/yield": 812.5},
            }
        ),
        qos=1,
    )
    room = entity_of(hass, entry, 65863)
    pv = entity_of(hass, entry, 65607)
    took = await wait_for(
        lambda: (
            hass.states.get(room).state == "21.75"
            and hass.states.get(pv).state == "812.5"
        )
    )
    assert took < 1.0
    state = hass.states.get(room)
    assert (
        state.attributes["measured_at"]
        == datetime.fromtimestamp((stamp + 1000) / 1000, UTC).isoformat()
    )


async def test_an_unreadable_message_is_ignored(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    publisher: aiomqtt.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A message that is not the documented JSON is logged and changes nothing."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    meter = entity_of(hass, entry, 65603)
    before = hass.states.get(meter).state
    await publisher.publish(f"{DEMO_PREFIX}/meter/main/energy", b"not json", qos=1)
    await wait_for(lambda: "unreadable MQTT message" in caplog.text)
    assert hass.states.get(meter).state == before


async def test_broker_restart_reconnects_without_doubling_statistics(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    publisher: aiomqtt.Client,
) -> None:
    """After the broker restarts, pushes flow again; statistics stay exactly right."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    push = entry.runtime_data.provider._push
    assert push is not None
    first = push.connections
    mqtt_broker.restart()
    await wait_for(lambda: push.connections > first, seconds=10)
    async with aiomqtt.Client(
        mqtt_broker.host,
        mqtt_broker.port,
        username=DEMO_TOKEN,
        tls_context=ssl_context(mqtt_broker),
        protocol=aiomqtt.ProtocolVersion.V311,
    ) as again:
        await again.publish(
            f"{DEMO_PREFIX}/meter/main/energy",
            json.dumps({"timestamp": 1764950400000, "value": 42.5}),
            qos=1,
        )
    meter = entity_of(hass, entry, 65603)
    await wait_for(lambda: hass.states.get(meter).state == "42.5")
    # Pushed values never reach statistics: those come from the history, once.
    # (On the real clock: the hour in progress grows while this runs, so the hours
    # compared are those complete before the import.)
    complete = hour(datetime.now(UTC))
    await entry.runtime_data.async_import_statistics()
    account = entry.unique_id.removeprefix("energydata_")  # type: ignore[union-attr]
    statistic = f"{DOMAIN}:energydata_{account}_65603_energy"
    start = complete - timedelta(days=3)
    rows = await stored(hass, statistic)
    # The last difference of an hour ends with the next hour's first reading.
    truth = energydata_truth(
        simulator, 65603, "register", start, complete + timedelta(minutes=1)
    )
    assert_matches_truth(
        {moment: row for moment, row in rows.items() if moment < complete},
        {moment: value for moment, value in truth.items() if moment < complete},
        statistic,
    )


async def test_unload_closes_the_connection(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """Unloading disconnects from the broker cleanly and leaves no task behind."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    push = entry.runtime_data.provider._push
    assert push is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not push.connected
    await wait_for(lambda: "disconnected" in mqtt_broker.log_text().lower())
    assert not [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(f"{DOMAIN} push")
    ]


async def test_reloads_while_connecting_leave_one_subscribed_connection(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reloads while the client connects (as the UI does): one connection remains.

    Creating an entry, changing its options and adding a datastream reload it
    within a second. The broker holds each CONNACK a little, so every reload
    cancels a client that is connecting. Each cancelled connection must close: the
    broker ends with exactly one connection, the subscribed one, and nothing is
    logged when the broker goes away later.
    """
    mqtt_broker.add_token(DEMO_TOKEN, [DEMO_PREFIX], delay=0.2)
    entry = energydata_entry_for(
        simulator, streams=[65603], mqtt_port=mqtt_broker.port, topics=True
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    for held in (1, 2):  # reload while the broker holds this connection's CONNACK
        await wait_for(
            lambda: mqtt_broker.log_text().count("holding the CONNACK") == held  # noqa: B023
        )
        assert await hass.config_entries.async_reload(entry.entry_id)
    await wait_for(lambda: entry.runtime_data.push_connected)
    await wait_for(lambda: mqtt_broker.client_connections() == 1)
    await asyncio.sleep(0.5)  # a connection left behind would still be there
    assert mqtt_broker.client_connections() == 1
    assert mqtt_broker.log_text().count("holding the CONNACK") == 3
    async with aiomqtt.Client(
        mqtt_broker.host,
        mqtt_broker.port,
        username=READONLY_TOKEN,
        tls_context=ssl_context(mqtt_broker),
        protocol=aiomqtt.ProtocolVersion.V311,
    ) as sensor:
        await sensor.publish(
            f"{DEMO_PREFIX}/meter/main/energy",
            json.dumps({"timestamp": 1764950400000, "value": 7.25}),
            qos=1,
        )
    meter = entity_of(hass, entry, 65603)
    await wait_for(lambda: hass.states.get(meter).state == "7.25")
    await settle(hass)
    await asyncio.to_thread(mqtt_broker.stop)
    await wait_for(lambda: not entry.runtime_data.push_connected)
    await asyncio.sleep(0.2)
    assert "Exception in callback" not in caplog.text


async def test_the_listener_is_a_background_task_of_the_entry(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """Home Assistant tracks the listener with the entry: cancelled with it, named."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    name = f"{DOMAIN} push {entry.entry_id}"
    assert [task.get_name() for task in entry._background_tasks] == [name]
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not entry._background_tasks
    await wait_for(lambda: mqtt_broker.client_connections() == 0)


async def test_stopping_home_assistant_says_goodbye(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Home Assistant stops without unloading: the connection still ends cleanly.

    The broker hears a disconnect instead of noticing a dead socket later, and the
    connection going down while Home Assistant stops is no reason for a repair issue.
    """
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    await hass.async_stop()
    assert not entry.runtime_data.push_connected
    await wait_for(lambda: "disconnected" in mqtt_broker.log_text().lower())
    assert not [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(f"{DOMAIN} push")
    ]
    assert entry.runtime_data.push._issue_timer is None  # noqa: SLF001
    assert not issue_registry.issues


async def test_publish_is_acknowledged(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    publisher: aiomqtt.Client,
) -> None:
    """The publish action waits for the broker's ack; others receive the message."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    await publisher.subscribe(f"{DEMO_PREFIX}/#")
    await hass.services.async_call(
        DOMAIN,
        "energydata_publish",
        {
            "config_entry_id": entry.entry_id,
            "topic": f"{DEMO_PREFIX}/room/12/setpoint",
            "value": 21.5,
            "timestamp": "2026-11-20T10:00:00+00:00",
        },
        blocking=True,
    )
    await hass.services.async_call(
        DOMAIN,
        "energydata_publish",
        {
            "config_entry_id": entry.entry_id,
            "topic": DEMO_PREFIX,
            "values": {"room/12/setpoint": 22, "room/12/mode": 2},
        },
        blocking=True,
    )
    received = []
    async with asyncio.timeout(5):
        async for message in publisher.messages:
            received.append((str(message.topic), json.loads(message.payload)))
            if len(received) == 2:
                break
    assert received[0] == (
        f"{DEMO_PREFIX}/room/12/setpoint",
        {"timestamp": 1795168800000, "value": 21.5},
    )
    assert received[1][0] == DEMO_PREFIX
    assert received[1][1]["value"] == {"room/12/setpoint": 22, "room/12/mode": 2}


async def test_publish_refused_and_reconnected(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """A topic the token may not publish on: a translated error, then a reconnection."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    push = entry.runtime_data.provider._push
    assert push is not None
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "energydata_publish",
            {
                "config_entry_id": entry.entry_id,
                "topic": "someone-else/meter",
                "value": 1,
            },
            blocking=True,
        )
    assert caught.value.translation_key == "publish_refused"
    await wait_for(lambda: push.connections >= 2, seconds=10)


async def test_publish_while_the_broker_is_down(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """With no connection the action says so (translated), at once."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    mqtt_broker.stop()
    await wait_for(lambda: not entry.runtime_data.push_connected)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "energydata_publish",
            {"config_entry_id": entry.entry_id, "topic": DEMO_PREFIX, "value": 1},
            blocking=True,
        )
    assert caught.value.translation_key == "mqtt_not_connected"


async def test_a_broker_down_for_long_raises_a_repair_issue(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Polling goes on; after ten minutes a repair issue explains; it clears itself."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker)
    mqtt_broker.stop()
    await wait_for(lambda: not entry.runtime_data.push_connected)
    issue_id = f"push_unreachable_{entry.entry_id}"
    # No frozen clock: the MQTT client's own timing must go on as it really does.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=11))
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id)
    await entry.runtime_data.async_refresh()
    assert entry.runtime_data.last_update_success  # values still polled
    mqtt_broker.start()
    await wait_for(lambda: entry.runtime_data.push_connected, seconds=70)
    assert not issue_registry.async_get_issue(DOMAIN, issue_id)


async def test_upload_history_through_every_step(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """An entity's recorded history becomes datastream data by batch import."""
    simulator.energydata.step_delay = 0.01
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker, [65603])
    hass.states.async_set("sensor.lab_power", "100.5")
    await asyncio.sleep(0.01)
    hass.states.async_set("sensor.lab_power", "101.25")
    await async_wait_recording_done(hass)
    start = datetime.now(UTC) - timedelta(minutes=5)
    end = datetime.now(UTC) + timedelta(minutes=5)
    response = await hass.services.async_call(
        DOMAIN,
        "energydata_upload_history",
        {
            "config_entry_id": entry.entry_id,
            "entity_id": "sensor.lab_power",
            "datastream": "65863",
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["status"] == "done"
    assert response["rows"] == 2
    ingested = [value for _, value in simulator.energydata.ingested[65863]]
    assert ingested == [100.5, 101.25]
    s3 = [r for r in simulator.log if r.path.startswith("/energydata-s3")]
    assert [r.status for r in s3] == [200]


async def test_upload_errors(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """No history, a wrong entry, and an import the cloud refuses: clear errors."""
    entry = await connected_entry(hass, simulator, setup_entry, mqtt_broker, [65603])
    call = {
        "config_entry_id": entry.entry_id,
        "entity_id": "sensor.nothing_here",
        "datastream": "70003",
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-02T00:00:00+00:00",
    }
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "energydata_upload_history", call, blocking=True
        )
    assert caught.value.translation_key == "no_history"
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "energydata_upload_history",
            {**call, "config_entry_id": "nope"},
            blocking=True,
        )
    assert caught.value.translation_key == "entry_not_found"
