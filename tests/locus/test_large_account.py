"""A large account (the demo partner's six sites) sets up with a frontend connected."""

from datetime import UTC, datetime
import logging
from typing import Any

import pytest

from custom_components.cloud_energy_meters.const import CONF_BACKFILL_DAYS
from homeassistant.components.websocket_api import http as websocket_http
from homeassistant.components.websocket_api.const import PENDING_MSG_PEAK
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import locus_entry_for
from tests.simulator import Simulator
from tests.simulator.locus import DEMO_PARTNER_ID

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


@pytest.fixture
def queue_peak(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the longest queue of messages any websocket connection waited to send."""
    peak = [0]
    send = websocket_http.WebSocketHandler._send_message

    def measured(handler: websocket_http.WebSocketHandler, message: Any) -> None:
        send(handler, message)
        peak[0] = max(peak[0], len(handler._message_queue))

    monkeypatch.setattr(websocket_http.WebSocketHandler, "_send_message", measured)
    return peak


async def test_a_frontend_stays_connected_while_hundreds_of_devices_appear(
    hass: HomeAssistant,
    hass_ws_client: Any,
    recorder_mock: Any,
    simulator: Simulator,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
    queue_peak: list[int],
) -> None:
    """The frontend's subscriptions see every entity come, and keep their connection.

    Added all at once, thousands of registry events and states queued up for each
    open frontend before Home Assistant sent any (3,500 to 4,100 here); it drops a
    connection at 4,096, or when more than 1,024 wait for 10 seconds ("Client
    unable to keep up with pending messages"). A real frontend subscribes to more.
    """
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {"type": "supported_features", "features": {"coalesce_messages": 1}}
    )
    await client.receive_json()
    await client.send_json_auto_id({"type": "subscribe_entities"})
    await client.receive_json()
    for event in ("entity_registry_updated", "device_registry_updated"):
        await client.send_json_auto_id(
            {"type": "subscribe_events", "event_type": event}
        )
        await client.receive_json()
    sites = [str(site.id) for site in simulator.locus.sites_of(DEMO_PARTNER_ID)]
    entry = locus_entry_for(simulator, sites=sites, options={CONF_BACKFILL_DAYS: 1})
    caplog.set_level(logging.WARNING, "homeassistant.components.websocket_api")
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    assert len(devices) > 250
    assert len(entities) > 2000
    assert 0 < queue_peak[0] < PENDING_MSG_PEAK
    assert "unable to keep up" not in caplog.text
    assert not client.closed
    # The connection still answers.
    await client.send_json_auto_id({"type": "ping"})
    received: list[Any] = []
    while not any(message.get("type") == "pong" for message in received):
        answer = await client.receive_json()
        received = answer if isinstance(answer, list) else [answer]
    # The history import (hundreds of statistics) is not this test's subject.
    assert await hass.config_entries.async_unload(entry.entry_id)
