"""The test broker behaves like Energydata.dk's MQTT broker (see tests/mqtt_broker.py).

Token as username and no password, MQTT 3.1.1 over TLS, publish/subscribe only under
the token's dataset prefixes, and a refused PUBLISH disconnects the client before any
PUBACK. Clients are aiomqtt's, as the integration's will be; two tests also look at
the bytes on the wire, where "no PUBACK" cannot be confused with a slow one.
"""

import asyncio
import json
import os
import socket
import ssl
import struct
import time

import aiomqtt
import pytest

from tests.mqtt_broker import (
    DEMO_PREFIX,
    DEMO_TOKEN,
    READONLY_TOKEN,
    Broker,
    ssl_context,
)

SINGLE_TOPIC = f"{DEMO_PREFIX}/meter/main/energy"
FOREIGN_TOPIC = "other-dataset/meter/main/energy"
PUBACK_TIMEOUT = 1.0  # a PUBACK from loopback takes milliseconds


def _client(broker: Broker, token: str, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=token,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V311,
        tls_context=ssl_context(broker),
        timeout=5,
    )


def _reading(value: object) -> bytes:
    return json.dumps({"timestamp": int(time.time() * 1000), "value": value}).encode()


async def _next_message(client: aiomqtt.Client, timeout: float = 5) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        return await anext(client.messages)


async def test_token_as_username_without_password_connects(mqtt_broker: Broker) -> None:
    """The documented login: username = token, no password."""
    for token in (DEMO_TOKEN, READONLY_TOKEN):
        async with _client(mqtt_broker, token):
            pass
    assert "u'edk-demo-token-0123456789'" in mqtt_broker.log_text()


@pytest.mark.parametrize(
    ("token", "password"),
    [("edk-wrong-token", None), ("", None), (DEMO_TOKEN, "secret")],
    ids=["wrong-token", "empty-username", "token-with-password"],
)
async def test_bad_login_is_refused(
    mqtt_broker: Broker, token: str, password: str | None
) -> None:
    """CONNACK 5, "not authorised"; a token with a password is not the documented login."""
    with pytest.raises(aiomqtt.MqttCodeError) as err:
        async with _client(mqtt_broker, token, password):
            pass
    # paho reports MQTT 3.1.1's CONNACK code 5 as reason code 135, "Not authorized".
    assert "not authorized" in str(err.value).lower()


async def test_subscriber_receives_single_and_multi_value_messages(
    mqtt_broker: Broker,
) -> None:
    """`<prefix>/#` gets the suffix topics and the prefix itself (multi-value)."""
    multi = {"meter/main/energy": 14.47, "meter/main/power": 3.2}
    async with (
        _client(mqtt_broker, READONLY_TOKEN) as subscriber,
        _client(mqtt_broker, DEMO_TOKEN) as publisher,
    ):
        granted = await subscriber.subscribe(f"{DEMO_PREFIX}/#", qos=1)
        assert [int(code.value) for code in granted] == [1]  # type: ignore[union-attr]

        single_payload = json.dumps({"timestamp": 1521797973469, "value": 14.47})
        await publisher.publish(SINGLE_TOPIC, single_payload, qos=1)
        message = await _next_message(subscriber)
        assert message.topic.value == SINGLE_TOPIC
        assert json.loads(message.payload) == {  # type: ignore[arg-type]
            "timestamp": 1521797973469,
            "value": 14.47,
        }

        await publisher.publish(DEMO_PREFIX, _reading(multi), qos=1)
        message = await _next_message(subscriber)
        assert message.topic.value == DEMO_PREFIX
        assert json.loads(message.payload)["value"] == multi  # type: ignore[arg-type]


async def test_qos1_publish_on_allowed_topic_is_acknowledged(
    mqtt_broker: Broker,
) -> None:
    """Publish(qos=1) of aiomqtt returns only once the PUBACK arrived."""
    async with _client(mqtt_broker, DEMO_TOKEN) as client:
        await client.publish(SINGLE_TOPIC, _reading(1.5), qos=1, timeout=PUBACK_TIMEOUT)
        await client.publish(DEMO_PREFIX, _reading({"a": 1}), qos=1, timeout=5)
    assert "Received PUBLISH from" in mqtt_broker.log_text()


async def test_subscribe_outside_the_prefixes_is_refused(mqtt_broker: Broker) -> None:
    """SUBACK 0x80 for another dataset; the connection survives."""
    async with _client(mqtt_broker, READONLY_TOKEN) as client:
        granted = await client.subscribe("other-dataset/#", qos=1)
        assert [int(code.value) for code in granted] == [0x80]  # type: ignore[union-attr]
        granted = await client.subscribe(f"{DEMO_PREFIX}/meter/+/energy", qos=1)
        assert [int(code.value) for code in granted] == [1]  # type: ignore[union-attr]


async def test_qos1_publish_outside_the_prefixes_disconnects_without_puback(
    mqtt_broker: Broker,
) -> None:
    """A refused publish disconnects at once; no PUBACK, nobody receives it.

    Energydata.dk: "if authorization does not succeed, the client is immediately
    disconnected".
    """
    async with _client(mqtt_broker, READONLY_TOKEN) as watcher:
        await watcher.subscribe("#", qos=1)  # sees whatever it may read
        async with _client(mqtt_broker, DEMO_TOKEN) as client:
            with pytest.raises(aiomqtt.MqttError, match="timed out"):
                await client.publish(
                    FOREIGN_TOPIC, _reading(1), qos=1, timeout=PUBACK_TIMEOUT
                )
            with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
                await _next_message(client)
        # The refused message went nowhere: the next one the watcher sees is this.
        async with _client(mqtt_broker, DEMO_TOKEN) as again:
            await again.publish(SINGLE_TOPIC, _reading(2), qos=1)
        message = await _next_message(watcher)
        assert message.topic.value == SINGLE_TOPIC
    assert f"denied PUBLISH on '{FOREIGN_TOPIC}'" in mqtt_broker.log_text()


# --- on the wire -------------------------------------------------------------------


def _mqtt_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _mqtt_packet(header: int, body: bytes) -> bytes:
    length, encoded = len(body), b""
    while True:
        length, digit = divmod(length, 128)
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            return bytes([header]) + encoded + body


def _raw_publish_qos1(broker: Broker, topic: str) -> tuple[bytes, bool]:
    """CONNECT (3.1.1, token, no password), PUBLISH QoS 1 mid 7; read for up to 1 s.

    Returns the bytes received after the CONNACK and whether the broker closed.
    """
    connect = _mqtt_string("MQTT") + bytes([4, 0x82]) + struct.pack("!H", 30)
    connect += _mqtt_string("raw-client") + _mqtt_string(DEMO_TOKEN)
    publish = _mqtt_string(topic) + struct.pack("!H", 7) + _reading(1)
    context = ssl_context(broker)
    with (
        socket.create_connection((broker.host, broker.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=broker.host) as tls,
    ):
        tls.sendall(_mqtt_packet(0x10, connect))
        assert tls.recv(4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
        tls.sendall(_mqtt_packet(0x32, publish))
        tls.settimeout(PUBACK_TIMEOUT)
        received = b""
        try:
            while chunk := tls.recv(64):
                received += chunk
        except TimeoutError:
            return received, False
        except ConnectionResetError, ssl.SSLError:
            pass
        return received, True


def test_wire_denied_publish_gets_eof_and_no_puback(mqtt_broker: Broker) -> None:
    """The broker closes the connection and sends nothing, in particular no PUBACK."""
    assert _raw_publish_qos1(mqtt_broker, SINGLE_TOPIC) == (b"\x40\x02\x00\x07", False)
    assert _raw_publish_qos1(mqtt_broker, FOREIGN_TOPIC) == (b"", True)


def test_wire_mosquitto_alone_would_acknowledge_the_denied_publish(
    socket_enabled: None,
) -> None:
    """Show why the plugin kicks: Mosquitto alone acknowledges a denied PUBLISH.

    Mosquitto 2.0.11 answers a denied QoS 1 PUBLISH with a PUBACK (MQTT 3.1.1 has no
    reason code in it, so the client sees success) and keeps the connection. Same
    plugin, with kick_on_deny=False.
    """
    with Broker(kick_on_deny=False) as broker:
        assert _raw_publish_qos1(broker, FOREIGN_TOPIC) == (b"\x40\x02\x00\x07", False)
        assert "Sending PUBACK to raw-client (m7, rc135)" in broker.log_text()


# --- process control -----------------------------------------------------------------


async def test_restart_drops_clients_who_can_reconnect_to_the_same_port(
    mqtt_broker: Broker,
) -> None:
    """restart() keeps host:port; connected clients see a disconnect."""
    port, pid = mqtt_broker.port, mqtt_broker.pid
    async with _client(mqtt_broker, READONLY_TOKEN) as client:
        await client.subscribe(f"{DEMO_PREFIX}/#")
        mqtt_broker.restart()
        with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
            await _next_message(client)
    assert (mqtt_broker.port, mqtt_broker.running) == (port, True)
    assert mqtt_broker.pid != pid

    client = _client(mqtt_broker, READONLY_TOKEN)
    async with client:  # the same Client object reconnects
        await client.subscribe(f"{DEMO_PREFIX}/#")
        async with _client(mqtt_broker, DEMO_TOKEN) as publisher:
            await publisher.publish(SINGLE_TOPIC, _reading(3), qos=1)
        assert (await _next_message(client)).topic.value == SINGLE_TOPIC


async def test_add_and_remove_token_while_running(mqtt_broker: Broker) -> None:
    """Tokens added or removed take effect without a restart (SIGHUP reload)."""
    with pytest.raises(aiomqtt.MqttCodeError):
        async with _client(mqtt_broker, "edk-new-token"):
            pass
    mqtt_broker.add_token("edk-new-token", ["other-dataset"])
    async with _client(mqtt_broker, READONLY_TOKEN) as watcher:
        await watcher.subscribe("#", qos=1)
        async with _client(mqtt_broker, "edk-new-token") as client:
            await client.publish(FOREIGN_TOPIC, _reading(4), qos=1, timeout=5)
        async with _client(mqtt_broker, DEMO_TOKEN) as client:
            await client.publish(SINGLE_TOPIC, _reading(5), qos=1, timeout=5)
        # READ is checked per message: "#" does not reach another token's dataset.
        assert (await _next_message(watcher)).topic.value == SINGLE_TOPIC
    mqtt_broker.remove_token("edk-new-token")
    with pytest.raises(aiomqtt.MqttCodeError):
        async with _client(mqtt_broker, "edk-new-token"):
            pass


def test_stop_leaves_no_process(mqtt_broker: Broker) -> None:
    """stop() terminates and reaps mosquitto; the port no longer answers."""
    pid = mqtt_broker.pid
    assert pid is not None
    mqtt_broker.stop()
    assert not mqtt_broker.running
    assert mqtt_broker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((mqtt_broker.host, mqtt_broker.port), timeout=1)
    mqtt_broker.stop()  # idempotent


# --- what tests of clients look at ---------------------------------------------------


async def _connections_become(broker: Broker, count: int, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while broker.client_connections() != count:
            await asyncio.sleep(0.01)


async def test_client_connections_counts_every_open_connection(
    mqtt_broker: Broker,
) -> None:
    """A bare TCP connection counts as much as an MQTT client; closed ones do not."""
    assert mqtt_broker.client_connections() == 0
    bare = socket.create_connection((mqtt_broker.host, mqtt_broker.port), timeout=1)
    try:
        await _connections_become(mqtt_broker, 1)
        async with _client(mqtt_broker, DEMO_TOKEN), _client(mqtt_broker, DEMO_TOKEN):
            await _connections_become(mqtt_broker, 3)
        await _connections_become(mqtt_broker, 1)
    finally:
        bare.close()
    await _connections_become(mqtt_broker, 0)
    mqtt_broker.stop()
    assert mqtt_broker.client_connections() == 0


async def test_a_slow_token_gets_its_connack_and_subacks_late(
    mqtt_broker: Broker,
) -> None:
    """add_token(delay=...) holds the CONNACK and each SUBACK, and says so first."""
    mqtt_broker.add_token("edk-slow-token", [DEMO_PREFIX], delay=0.3)
    started = time.monotonic()
    async with _client(mqtt_broker, "edk-slow-token") as client:
        connected = time.monotonic()
        await client.subscribe(SINGLE_TOPIC, qos=1)
        subscribed = time.monotonic()
    assert connected - started >= 0.3
    assert subscribed - connected >= 0.3
    log = mqtt_broker.log_text()
    assert log.count("edk_auth: holding the CONNACK of ") == 1
    assert log.count("edk_auth: holding the SUBACK of ") == 1
    started = time.monotonic()
    async with _client(mqtt_broker, DEMO_TOKEN) as client:
        await client.subscribe(SINGLE_TOPIC, qos=1)
    assert time.monotonic() - started < 0.3  # other tokens are not slow
