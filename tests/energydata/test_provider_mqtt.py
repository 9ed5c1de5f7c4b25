"""Energydata.dk push and publish by MQTT, against a real Mosquitto broker.

The broker (tests/mqtt_broker.py) behaves like mqtts.energydata.dk: TLS only,
MQTT 3.1.1, the token as username without password, a token may use its dataset
prefixes only, and a refused PUBLISH disconnects the client without PUBACK.
The provider subscribes to every named datastream topic and to the dataset
prefix (multi-value messages), turns messages into readings of the channels it
listens for, reconnects after a loss (the backoff starts at 1 s) and publishes
with QoS 1, waiting for the acknowledgement.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import logging
import re
import signal
import time
from typing import Any

import aiomqtt
import pytest

from custom_components.cloud_energy_meters.providers import mqtt as mqtt_module
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.errors import (
    CannotConnect,
    PublishRefused,
)
from custom_components.cloud_energy_meters.providers.model import Channel, Reading
from tests import mqtt_broker as broker_module
from tests.mqtt_broker import (
    DEMO_PREFIX,
    DEMO_TOKEN,
    READONLY_TOKEN,
    Broker,
    ssl_context,
)
from tests.provider_factory import EDK_DATASTREAMS, MakeProvider
from tests.simulator.energydata import (
    BATTERY_STATE_ID,
    GAS_METER_ID,
    HEATING_VOLUME_ID,
    MAIN_METER_ID,
    PV_YIELD_ID,
    ROOM_TEMPERATURE_ID,
)

MAIN_TOPIC = f"{DEMO_PREFIX}/meter/main/energy"
HEATING_TOPIC = f"{DEMO_PREFIX}/heating/volume"
FOREIGN_TOPIC = "other-dataset/meter/main/energy"
STAMP = 1521797973469  # the document's example
LOGGER = "custom_components.cloud_energy_meters.providers"

# The real broker's fixture (tests/mqtt_broker.py), available to this module.
mqtt_broker = broker_module.mqtt_broker


def at(ms: int) -> datetime:
    """Return the aware UTC instant of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def message(value: Any, stamp: int = STAMP) -> bytes:
    """Return a message as the document writes it."""
    return json.dumps({"timestamp": stamp, "value": value}).encode()


def client_for(broker: Broker, token: str = DEMO_TOKEN) -> aiomqtt.Client:
    """Return another MQTT client of the broker (connect with `async with`)."""
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=token,
        protocol=aiomqtt.ProtocolVersion.V311,
        tls_context=ssl_context(broker),
        timeout=5,
    )


def client_ids(broker: Broker, token: str = DEMO_TOKEN) -> list[str]:
    """Return the ids of the clients that connected with `token`, oldest first."""
    pattern = rf"New client connected from \S+ as (\S+) \(p2, c1, k\d+, u'{token}'\)"
    return re.findall(pattern, broker.log_text())


async def next_message(client: aiomqtt.Client, timeout: float = 5) -> aiomqtt.Message:
    """Wait for the next message of a subscribed client."""
    async with asyncio.timeout(timeout):
        return await anext(client.messages)


@dataclass
class Pushed:
    """What async_listen reported through its two callbacks, and when."""

    readings: list[dict[str, Reading]] = field(default_factory=list)
    states: list[bool] = field(default_factory=list)
    state_times: list[float] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_readings(self, readings: dict[str, Reading]) -> None:
        """Record pushed readings."""
        self.readings.append(readings)
        self.changed.set()

    def on_state(self, connected: bool) -> None:
        """Record a connection state change."""
        self.states.append(connected)
        self.state_times.append(time.monotonic())
        self.changed.set()

    async def until(self, done: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until `done()` holds."""
        async with asyncio.timeout(timeout):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Listening:
    """A provider listening by MQTT: its channels, callbacks and task."""

    provider: EnergydataProvider
    channels: dict[int, Channel]
    pushed: Pushed
    task: asyncio.Task[None]

    @property
    def connections(self) -> int:
        """How many times the push client connected."""
        assert self.provider._push is not None
        return self.provider._push.connections


async def listen(
    provider: EnergydataProvider, exclude: tuple[int, ...] = ()
) -> Listening:
    """Start async_listen for the provider's channels (less `exclude`)."""
    inventory = await provider.async_discover([])
    channels = {int(c.ref[0]): c for c in inventory.channels}
    pushed = Pushed()
    task = asyncio.create_task(
        provider.async_listen(
            [c for i, c in channels.items() if i not in exclude],
            pushed.on_readings,
            pushed.on_state,
        )
    )
    return Listening(provider, channels, pushed, task)


@pytest.fixture
async def listening(
    make_provider: MakeProvider, mqtt_broker: Broker
) -> AsyncIterator[Listening]:
    """Start a demo provider listening for every channel but 70001's; connected."""
    started = await listen(
        make_provider("energydata", broker=mqtt_broker), exclude=(HEATING_VOLUME_ID,)
    )
    await started.pushed.until(lambda: started.pushed.states == [True])
    yield started
    started.task.cancel()
    await asyncio.gather(started.task, return_exceptions=True)


async def test_listen_connects_with_the_token_over_tls_and_subscribes(
    make_provider: MakeProvider,
    mqtt_broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One TLS connection, MQTT 3.1.1, clean session, the token as username.

    Subscribed with QoS 1: every named datastream topic and the dataset prefix
    (for multi-value messages), each once. The token is logged nowhere by us.
    """
    caplog.set_level(logging.DEBUG)
    started = await listen(make_provider("energydata", broker=mqtt_broker))
    await started.pushed.until(lambda: started.pushed.states == [True])
    assert started.provider.push_configured
    (client_id,) = client_ids(mqtt_broker)
    log = mqtt_broker.log_text()
    subscribed = re.findall(rf"{re.escape(client_id)} 1 (\S+)", log)
    assert sorted(subscribed) == sorted(
        [str(raw["topic"]) for raw in EDK_DATASTREAMS] + [DEMO_PREFIX]
    )
    assert "password" not in log.lower()
    assert started.connections == 1
    started.task.cancel()
    await asyncio.gather(started.task, return_exceptions=True)
    assert f"Energydata.dk: connected to {mqtt_broker.host}" in caplog.text
    assert DEMO_TOKEN not in caplog.text


async def test_single_and_multi_value_messages_become_readings(
    listening: Listening, mqtt_broker: Broker
) -> None:
    """A single value on a datastream topic, several on the prefix: one callback each.

    Suffixes are matched with or without their slashes; a number sent as a string
    (as in the document's example) is a number. A suffix nobody named, a
    datastream not listened for (70001) and text where a number belongs give
    nothing.
    """
    channels, pushed = listening.channels, listening.pushed
    async with client_for(mqtt_broker) as publisher:
        await publisher.publish(MAIN_TOPIC, message(14.47), qos=1)
        await pushed.until(lambda: len(pushed.readings) == 1)
        assert pushed.readings[0] == {
            channels[MAIN_METER_ID].key: Reading(14.47, at(STAMP))
        }
        multi = {
            "meter/main/energy": 15.5,
            "pv/yield": 250,
            "/room/12/temperature/": 21.25,
            "battery/state": "balancing cells 3,4",
            "meter/gas/volume": "7654321",
            "heating/volume": 1.5,
            "not/named": 1,
        }
        await publisher.publish(DEMO_PREFIX, message(multi, STAMP + 1), qos=1)
        await publisher.publish(HEATING_TOPIC, message(2.5), qos=1)
        await publisher.publish(MAIN_TOPIC, message("n/a"), qos=1)
        await publisher.publish(MAIN_TOPIC, message(16.0, STAMP + 2), qos=1)
        await pushed.until(lambda: len(pushed.readings) == 3)
    later = at(STAMP + 1)
    assert pushed.readings[1] == {
        channels[MAIN_METER_ID].key: Reading(15.5, later),
        channels[PV_YIELD_ID].key: Reading(250.0, later),
        channels[ROOM_TEMPERATURE_ID].key: Reading(21.25, later),
        channels[BATTERY_STATE_ID].key: Reading("balancing cells 3,4", later),
        channels[GAS_METER_ID].key: Reading(7654321.0, later),
    }
    assert pushed.readings[2] == {
        channels[MAIN_METER_ID].key: Reading(16.0, at(STAMP + 2))
    }
    assert pushed.states == [True]


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b"42",
        b'{"value": 1}',
        b'{"timestamp": 1521797973469}',
        b'{"timestamp": "soon", "value": 1}',
        b'{"timestamp": null, "value": 1}',
        b'{"timestamp": 1e400, "value": 1}',
        b'{"timestamp": 1e20, "value": 1}',
        b'{"timestamp": -1e20, "value": 1}',
    ],
)
async def test_unreadable_messages_are_warned_and_ignored(
    listening: Listening,
    mqtt_broker: Broker,
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
) -> None:
    """A message that is not a reading: one warning naming the topic, nothing else.

    The connection stays up (no reconnect) and the next good message arrives.
    """
    pushed = listening.pushed
    async with client_for(mqtt_broker) as publisher:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            await publisher.publish(MAIN_TOPIC, payload, qos=1)
            await publisher.publish(MAIN_TOPIC, message(1.25), qos=1)
            await pushed.until(lambda: len(pushed.readings) == 1)
    assert pushed.readings == [
        {listening.channels[MAIN_METER_ID].key: Reading(1.25, at(STAMP))}
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert MAIN_TOPIC in warnings[0].getMessage()
    assert "unreadable" in warnings[0].getMessage()
    assert not listening.task.done()
    assert (pushed.states, listening.connections) == ([True], 1)


async def test_broker_restart_reconnects_after_the_backoff(
    listening: Listening, mqtt_broker: Broker
) -> None:
    """The broker goes away: state False, at least 1 s later a new connection, True.

    Messages flow again on the new connection (subscribed anew, clean session).
    """
    pushed = listening.pushed
    await asyncio.to_thread(mqtt_broker.restart)
    await pushed.until(lambda: pushed.states == [True, False, True])
    assert pushed.state_times[2] - pushed.state_times[1] >= mqtt_module.BACKOFF[0]
    assert pushed.state_times[2] - pushed.state_times[1] < 8
    assert listening.connections == 2
    first, second = client_ids(mqtt_broker)  # a new client for a new connection
    assert first != second
    async with client_for(mqtt_broker) as publisher:
        await publisher.publish(MAIN_TOPIC, message(3.5), qos=1)
        await pushed.until(lambda: len(pushed.readings) == 1)
    assert pushed.readings == [
        {listening.channels[MAIN_METER_ID].key: Reading(3.5, at(STAMP))}
    ]


async def test_cancel_disconnects_cleanly(
    listening: Listening, mqtt_broker: Broker
) -> None:
    """Cancelling the listen task sends DISCONNECT, reports False, leaves no task.

    Publishing goes on without it, each message on a connection of its own.
    """
    (client_id,) = client_ids(mqtt_broker)
    listening.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listening.task
    assert listening.pushed.states == [True, False]
    await asyncio.sleep(0.1)  # aiomqtt's housekeeping task ends on the next turns
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    log = mqtt_broker.log_text()
    assert f"Received DISCONNECT from {client_id}" in log
    assert f"Client {client_id} disconnected." in log
    await listening.provider.async_publish(MAIN_TOPIC, 1.0)
    (_listener, publisher) = client_ids(mqtt_broker)
    async with asyncio.timeout(5):  # the broker closes its end a moment later
        while mqtt_broker.client_connections():
            await asyncio.sleep(0.01)
    assert f"Received DISCONNECT from {publisher}" in mqtt_broker.log_text()


async def test_publish_is_acknowledged_and_delivered(
    listening: Listening, mqtt_broker: Broker
) -> None:
    """QoS 1 single- and multi-value publishes: acknowledged, delivered as written.

    Another client receives them; the provider itself, subscribed to the topic,
    gets its own single value back as a reading.
    """
    provider, pushed = listening.provider, listening.pushed
    (client_id,) = client_ids(mqtt_broker)
    moment = datetime(2026, 3, 9, 12, 0, 0, 123000, tzinfo=UTC)
    async with client_for(mqtt_broker, READONLY_TOKEN) as watcher:
        await watcher.subscribe(f"{DEMO_PREFIX}/#", qos=1)
        await provider.async_publish(f"/{MAIN_TOPIC}/", 14.47, moment)
        received = await next_message(watcher)
        assert received.topic.value == MAIN_TOPIC
        assert json.loads(received.payload) == {  # type: ignore[arg-type]
            "timestamp": 1773057600123,
            "value": 14.47,
        }
        values = {"meter/main/energy": 15.0, "battery/charge": 80}
        before = int(time.time() * 1000)
        await provider.async_publish(DEMO_PREFIX, values)
        received = await next_message(watcher)
        assert received.topic.value == DEMO_PREFIX
        body = json.loads(received.payload)  # type: ignore[arg-type]
        assert body["value"] == values
        assert before <= body["timestamp"] <= int(time.time() * 1000)
    await pushed.until(lambda: len(pushed.readings) == 2)
    assert pushed.readings[0] == {
        listening.channels[MAIN_METER_ID].key: Reading(14.47, moment)
    }
    log = mqtt_broker.log_text()
    assert re.search(
        rf"Received PUBLISH from {client_id} \(d0, q1, r0, m\d+, '{MAIN_TOPIC}'", log
    )
    assert len(re.findall(rf"Sending PUBACK to {client_id} \(m\d+, rc0\)", log)) == 2


async def test_publish_outside_the_prefixes_is_refused_then_reconnects(
    listening: Listening, mqtt_broker: Broker
) -> None:
    """The broker kicks the client: PublishRefused at once, then a new connection.

    At once means far sooner than the 10 s an acknowledgement may take.
    """
    provider, pushed = listening.provider, listening.pushed
    started = time.monotonic()
    with pytest.raises(PublishRefused):
        await provider.async_publish(FOREIGN_TOPIC, 1.0)
    assert time.monotonic() - started < mqtt_module.PUBLISH_TIMEOUT / 5
    assert f"denied PUBLISH on '{FOREIGN_TOPIC}'" in mqtt_broker.log_text()
    await pushed.until(lambda: pushed.states == [True, False, True])
    assert listening.connections == 2
    async with client_for(mqtt_broker, READONLY_TOKEN) as watcher:
        await watcher.subscribe(MAIN_TOPIC, qos=1)
        await provider.async_publish(MAIN_TOPIC, 2.0)
        assert json.loads((await next_message(watcher)).payload)["value"] == 2.0  # type: ignore[arg-type]


async def test_publish_while_not_connected(
    make_provider: MakeProvider, listening: Listening, mqtt_broker: Broker
) -> None:
    """Without a listening connection, a message goes on a connection of its own.

    A provider that never listens publishes that way; one whose connection is
    down too, and fails with CannotConnect while the broker is away.
    """
    async with client_for(mqtt_broker, READONLY_TOKEN) as watcher:
        await watcher.subscribe(MAIN_TOPIC, qos=1)
        await make_provider("energydata", broker=mqtt_broker).async_publish(
            MAIN_TOPIC, 7
        )
        assert json.loads((await next_message(watcher)).payload)["value"] == 7  # type: ignore[arg-type]
    pushed = listening.pushed
    await asyncio.to_thread(mqtt_broker.stop)
    await pushed.until(lambda: pushed.states == [True, False])
    with pytest.raises(CannotConnect):
        await listening.provider.async_publish(MAIN_TOPIC, 1.0)
    await asyncio.to_thread(mqtt_broker.start)
    await pushed.until(lambda: pushed.states == [True, False, True])
    await listening.provider.async_publish(MAIN_TOPIC, 1.0)


async def test_publish_without_acknowledgement_times_out(
    listening: Listening, mqtt_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that hangs (stopped, connection open) never acknowledges: refused.

    PUBLISH_TIMEOUT is scaled down to 0.3 s; the broker resumes afterwards and
    the same connection carries on.
    """
    monkeypatch.setattr(mqtt_module, "PUBLISH_TIMEOUT", 0.3)
    assert mqtt_broker.pid is not None
    mqtt_broker._process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        with pytest.raises(PublishRefused):
            await listening.provider.async_publish(MAIN_TOPIC, 1.0)
    finally:
        mqtt_broker._process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    await listening.pushed.until(lambda: len(listening.pushed.readings) == 1)
    assert listening.pushed.states == [True]


async def test_refused_token_never_connects(
    make_provider: MakeProvider, mqtt_broker: Broker
) -> None:
    """A token the broker does not know: refused, no state reported, retried later."""
    started = await listen(
        make_provider(
            "energydata", api_token="edk-not-an-mqtt-token", broker=mqtt_broker
        )
    )
    async with asyncio.timeout(5):
        while "not authorised" not in mqtt_broker.log_text():
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert mqtt_broker.log_text().count("not authorised") == 1  # next try after 1 s
    assert started.pushed.states == []
    assert not started.task.done()
    assert started.connections == 0
    started.task.cancel()
    await asyncio.gather(started.task, return_exceptions=True)
    assert started.pushed.states == []
