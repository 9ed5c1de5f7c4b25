"""The publish action: numbers to Energydata.dk over MQTT, whether or not it listens.

Against a real broker (tests/mqtt_broker.py). An entry whose datastreams have no
topic never connects to listen; the action then opens a connection for the message
alone (connect, publish with QoS 1, wait for the PUBACK, disconnect). What another
client of the broker receives is the truth: JSON numbers, an int as an int.
"""

import asyncio
from collections.abc import AsyncIterator
import json
import math
import re
from typing import Any

import aiomqtt
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.providers.mqtt import _read_reason
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from tests.conftest import SetupEntry, energydata_entry_for
from tests.mqtt_broker import (
    DEMO_PREFIX,
    DEMO_TOKEN,
    READONLY_TOKEN,
    Broker,
    ssl_context,
)
from tests.simulator import Simulator

PUBLISH = "energydata_publish"
SETPOINT = f"{DEMO_PREFIX}/room/12/setpoint"


@pytest.fixture(autouse=True)
def trust_the_broker(mqtt_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the system trust store (what the integration loads) trust the test CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(mqtt_broker.ca_file))


@pytest.fixture(autouse=True)
async def unload_before_the_broker_stops(
    hass: HomeAssistant, mqtt_broker: Broker
) -> AsyncIterator[None]:
    """Unload entries while the broker still runs (see test_energydata_mqtt.py)."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def watcher(mqtt_broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    """Return a client of the broker subscribed to the whole demo dataset."""
    client = aiomqtt.Client(
        mqtt_broker.host,
        mqtt_broker.port,
        username=READONLY_TOKEN,
        tls_context=ssl_context(mqtt_broker),
        protocol=aiomqtt.ProtocolVersion.V311,
    )
    client._disconnected.add_done_callback(_read_reason)
    async with client:
        await client.subscribe(f"{DEMO_PREFIX}/#", qos=1)
        yield client


async def polled_entry(
    simulator: Simulator, setup_entry: SetupEntry, broker: Broker
) -> MockConfigEntry:
    """Set up an entry of the broker whose datastreams have no topic (no listener)."""
    entry = energydata_entry_for(
        simulator, streams=[65603], mqtt_port=broker.port, topics=False
    )
    assert await setup_entry(entry)
    assert not entry.runtime_data.provider.push_configured
    return entry


async def publish(
    hass: HomeAssistant, entry: MockConfigEntry, topic: str, **data: Any
) -> None:
    """Call the publish action and wait for it."""
    await hass.services.async_call(
        DOMAIN,
        PUBLISH,
        {"config_entry_id": entry.entry_id, "topic": topic, **data},
        blocking=True,
    )


async def received(client: aiomqtt.Client, count: int) -> list[tuple[str, Any]]:
    """Return the next `count` messages: topic and JSON body (numbers as parsed)."""
    messages = []
    async with asyncio.timeout(5):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            messages.append((str(message.topic), json.loads(message.payload)))
            if len(messages) == count:
                return messages
    raise AssertionError("unreachable")


async def connections_become(broker: Broker, count: int) -> None:
    """Wait until the broker holds `count` client connections."""
    async with asyncio.timeout(5):
        while broker.client_connections() != count:
            await asyncio.sleep(0.01)


async def test_publish_without_any_topic_configured(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    watcher: aiomqtt.Client,
) -> None:
    """No datastream has a topic: each message goes over a connection of its own.

    It is acknowledged (QoS 1), arrives at the broker as JSON numbers exactly as
    given (an int stays an int, numeric text from the UI becomes a number), and
    its connection is closed with a DISCONNECT afterwards.
    """
    entry = await polled_entry(simulator, setup_entry, mqtt_broker)
    await connections_become(mqtt_broker, 1)  # the watcher alone
    await publish(
        hass, entry, SETPOINT, value=21.5, timestamp="2026-11-20T10:00:00+00:00"
    )
    await publish(hass, entry, f"/{SETPOINT}/", value=" 22 ")
    await publish(
        hass,
        entry,
        DEMO_PREFIX,
        values={"room/12/setpoint": 22, "pv/yield": "812.5", "meter/count": "7"},
    )
    messages = await received(watcher, 3)
    assert messages[0] == (SETPOINT, {"timestamp": 1795168800000, "value": 21.5})
    assert messages[1][0] == SETPOINT
    assert messages[1][1]["value"] == 22
    assert isinstance(messages[1][1]["value"], int)
    assert messages[2][0] == DEMO_PREFIX
    values = messages[2][1]["value"]
    assert values == {"room/12/setpoint": 22, "pv/yield": 812.5, "meter/count": 7}
    assert [type(v) for v in values.values()] == [int, float, int]
    await connections_become(mqtt_broker, 1)
    log = mqtt_broker.log_text()
    own = re.findall(rf"as (\S+) \(p2, c1, k\d+, u'{DEMO_TOKEN}'\)", log)
    assert len(own) == 3  # one connection per message
    for client_id in own:
        assert re.search(rf"Sending PUBACK to {client_id} \(m\d+, rc0\)", log)
        assert f"Received DISCONNECT from {client_id}" in log


@pytest.mark.parametrize(
    ("data", "field", "shown"),
    [
        ({"value": True}, "value", "True"),
        ({"value": False}, "value", "False"),
        ({"value": math.nan}, "value", "nan"),
        ({"value": math.inf}, "value", "inf"),
        ({"value": "-inf"}, "value", "-inf"),
        ({"value": "NaN"}, "value", "NaN"),
        ({"value": "eco"}, "value", "eco"),
        ({"value": ""}, "value", ""),
        ({"values": {"room/12/mode": "eco"}}, "values: room/12/mode", "eco"),
        ({"values": {"a": 1, "b": True}}, "values: b", "True"),
        ({"values": {"a": {"nested": 1}}}, "values: a", "{'nested': 1}"),
        ({"values": {"a": None}}, "values: a", "None"),
    ],
)
async def test_what_is_not_a_number_is_refused(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
    data: dict[str, Any],
    field: str,
    shown: str,
) -> None:
    """Text, true/false, NaN and infinities: a translated error, nothing sent."""
    entry = await polled_entry(simulator, setup_entry, mqtt_broker)
    with pytest.raises(ServiceValidationError) as caught:
        await publish(hass, entry, SETPOINT, **data)
    assert caught.value.translation_key == "invalid_value"
    assert caught.value.translation_placeholders == {"field": field, "value": shown}
    assert "Received PUBLISH" not in mqtt_broker.log_text()
    assert f"u'{DEMO_TOKEN}'" not in mqtt_broker.log_text()  # never connected


async def test_no_values_is_refused(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """An empty set of values would publish nothing: a translated error."""
    entry = await polled_entry(simulator, setup_entry, mqtt_broker)
    with pytest.raises(ServiceValidationError) as caught:
        await publish(hass, entry, DEMO_PREFIX, values={})
    assert caught.value.translation_key == "no_values"
    assert f"u'{DEMO_TOKEN}'" not in mqtt_broker.log_text()


async def test_publish_refused_on_its_own_connection(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """A topic outside the token's datasets: the broker disconnects, a clear error."""
    entry = await polled_entry(simulator, setup_entry, mqtt_broker)
    with pytest.raises(HomeAssistantError) as caught:
        await publish(hass, entry, "someone-else/meter", value=1)
    assert caught.value.translation_key == "publish_refused"
    assert "denied PUBLISH on 'someone-else/meter'" in mqtt_broker.log_text()
    await connections_become(mqtt_broker, 0)


async def test_a_token_without_mqtt_is_told_so(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """The broker refuses the token (no MQTT permission): a translated error."""
    entry = await polled_entry(simulator, setup_entry, mqtt_broker)
    mqtt_broker.remove_token(DEMO_TOKEN)
    with pytest.raises(HomeAssistantError) as caught:
        await publish(hass, entry, SETPOINT, value=1)
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "mqtt_not_authorized"
    assert "not authorised" in mqtt_broker.log_text()


async def test_publish_while_the_broker_is_away(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    mqtt_broker: Broker,
) -> None:
    """Nobody answers on the broker's port: a translated error, at once."""
    entry = await polled_entry(simulator, setup_entry, mqtt_broker)
    await asyncio.to_thread(mqtt_broker.stop)
    async with asyncio.timeout(5):
        with pytest.raises(HomeAssistantError) as caught:
            await publish(hass, entry, SETPOINT, value=1)
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "mqtt_not_connected"
