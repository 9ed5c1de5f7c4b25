"""Cancelling an MQTT push client closes its connection, at whatever stage it is.

An entry reloaded while its client connects (the UI creates an entry, changes its
options and adds a datastream within a second) cancels the client's task. Each stage
is caught on a real broker (tests/mqtt_broker.py), held there by the broker itself:
stopped (SIGSTOP) during the TLS handshake, or a slow token whose CONNACK or SUBACK
comes late. Whatever the stage, the broker must end with no connection of ours, and
nothing may be logged later when the broker goes away.
"""

import asyncio
from collections.abc import Callable
import logging
import signal

import pytest

from custom_components.cloud_energy_meters.providers.errors import CannotConnect
from custom_components.cloud_energy_meters.providers.mqtt import PushClient
from tests import mqtt_broker as broker_module
from tests.mqtt_broker import DEMO_PREFIX, DEMO_TOKEN, Broker

mqtt_broker = broker_module.mqtt_broker

SLOW_TOKEN = "edk-slow-token"
HOLD = 0.5
"""Seconds the broker holds a slow token's CONNACK and SUBACKs."""
TOPICS = (f"{DEMO_PREFIX}/meter/main/energy", DEMO_PREFIX)


def push_client(broker: Broker, token: str, states: list[bool]) -> PushClient:
    """Return a push client of the broker that records its state changes."""
    return PushClient(
        broker.host,
        broker.port,
        username=token,
        ssl_context=broker.ssl_context(),
        topics=TOPICS,
        on_message=lambda _topic, _payload: None,
        on_state=states.append,
        name="test",
    )


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    """Wait until `condition()` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def no_connection_stays(broker: Broker) -> None:
    """Wait for the broker to hold no connection, and check none comes back."""
    await until(lambda: broker.client_connections() == 0)
    await asyncio.sleep(HOLD + 0.2)  # a connection finished late would show now
    assert broker.client_connections() == 0


async def test_cancel_during_the_tls_handshake(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """The connect runs in a thread a cancel cannot stop: its result is closed.

    The broker is stopped, so the client waits in the TLS handshake; the task is
    cancelled, then the broker resumes and completes the connection.
    """
    process = mqtt_broker._process
    assert process is not None
    states: list[bool] = []
    process.send_signal(signal.SIGSTOP)
    try:
        task = asyncio.create_task(push_client(mqtt_broker, DEMO_TOKEN, states).run())
        await asyncio.sleep(0.3)
        task.cancel()
    finally:
        process.send_signal(signal.SIGCONT)
    with pytest.raises(asyncio.CancelledError):
        await task
    await no_connection_stays(mqtt_broker)
    assert "New client connected" in mqtt_broker.log_text()  # it did connect
    assert states == []
    await asyncio.to_thread(mqtt_broker.stop)
    await asyncio.sleep(0.2)
    assert "Exception in callback" not in caplog.text


@pytest.mark.parametrize("stage", ["CONNACK", "SUBACK"])
async def test_cancel_while_the_broker_answers_late(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture, stage: str
) -> None:
    """Cancelled while waiting for the CONNACK or a SUBACK: a clean goodbye.

    DISCONNECT is sent (after the CONNACK, which a connect waits for): the broker
    holds no connection, and nothing logs an error, then or when the broker stops
    later. A cancelled CONNACK wait used to leave the connection open, and its
    end raised in asyncio's callback; the SUBACK stage was already clean.
    """
    caplog.set_level(logging.DEBUG)
    mqtt_broker.add_token(SLOW_TOKEN, [DEMO_PREFIX], delay=HOLD)
    states: list[bool] = []
    task = asyncio.create_task(push_client(mqtt_broker, SLOW_TOKEN, states).run())
    await until(lambda: f"holding the {stage} of" in mqtt_broker.log_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await no_connection_stays(mqtt_broker)
    assert "Received DISCONNECT from" in mqtt_broker.log_text()
    assert states == []
    await asyncio.to_thread(mqtt_broker.stop)
    await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_cancel_while_listening(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Connected and subscribed: the cancel says goodbye and reports the loss."""
    states: list[bool] = []
    client = push_client(mqtt_broker, DEMO_TOKEN, states)
    task = asyncio.create_task(client.run())
    await until(lambda: states == [True])
    assert mqtt_broker.client_connections() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert states == [True, False]
    with pytest.raises(CannotConnect):  # the kept connection is gone
        await client.publish(TOPICS[0], b"1")
    await no_connection_stays(mqtt_broker)
    assert "Received DISCONNECT from" in mqtt_broker.log_text()
    await asyncio.to_thread(mqtt_broker.stop)
    await asyncio.sleep(0.2)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_rapid_cancels_leave_one_connection(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Start, cancel, start again, as reloads in quick succession do: one remains.

    Cancels land at every point of the connect (0 to 40 ms after the start); the
    last client stays and is the only connection the broker holds.
    """
    for delay in (0, 0.001, 0.003, 0.01, 0.02, 0.04):
        task = asyncio.create_task(push_client(mqtt_broker, DEMO_TOKEN, []).run())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    states: list[bool] = []
    last = asyncio.create_task(push_client(mqtt_broker, DEMO_TOKEN, states).run())
    await until(lambda: states == [True])
    await until(lambda: mqtt_broker.client_connections() == 1)
    await asyncio.sleep(0.3)
    assert mqtt_broker.client_connections() == 1
    last.cancel()
    with pytest.raises(asyncio.CancelledError):
        await last
    await no_connection_stays(mqtt_broker)
    await asyncio.to_thread(mqtt_broker.stop)
    await asyncio.sleep(0.2)
    assert "Exception in callback" not in caplog.text
