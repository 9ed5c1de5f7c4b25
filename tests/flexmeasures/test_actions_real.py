"""FlexMeasures' actions against a real FlexMeasures 1.0.1 server.

The truth is read back with plain aiohttp (raw_values, and the schedule's own
endpoint), never through the code under test.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.const import DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from tests.conftest import SetupEntry
from tests.flexmeasures_real import FlexMeasuresServer

from .entries import BATTERY, HOUSE, flexmeasures_entry, server_id
from .test_provider_real import raw_values

pytestmark = pytest.mark.usefixtures("loopback", "entity_registry_enabled_by_default")
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


async def call(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    """Call an action and return its response."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def test_post_values_stored_and_refusals_with_the_servers_reason(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    session: ClientSession,
    flexmeasures_real: FlexMeasuresServer,
) -> None:
    """Posted values are what the server stores; 403 and 422 give its reason."""
    server = flexmeasures_real
    entry = flexmeasures_entry(server)
    assert await setup_entry(entry)
    target = server.sensor(HOUSE, "power from Home Assistant")
    start = datetime(2026, 1, 8, 10, tzinfo=UTC)
    values = [0.75, None, 1.5, 2.0]
    response = await call(
        hass,
        "flexmeasures_post_measurements",
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": target,
            "values": values,
            "start": start.isoformat(),
            "duration": "PT1H",
        },
    )
    assert response == {"values": 3, "statuses": ["PROCESSED"], "jobs": []}
    assert await raw_values(session, server, target, start, start + HOUR, "kW") == (
        values
    )
    for sensor, unit, status, reason in (
        (
            server.sensor("Other battery", "battery power"),
            "kW",
            "403",
            "cannot be authorized",
        ),
        (target, "EUR/MWh", "422", "Required unit for this sensor is kW"),
    ):
        with pytest.raises(ServiceValidationError) as caught:
            await call(
                hass,
                "flexmeasures_post_measurements",
                {
                    "config_entry_id": entry.entry_id,
                    "sensor_id": sensor,
                    "values": [1.0],
                    "start": start.isoformat(),
                    "duration": "PT15M",
                    "unit": unit,
                },
            )
        placeholders = caught.value.translation_placeholders or {}
        assert caught.value.translation_key == "flexmeasures_refused"
        assert placeholders["status"] == status
        assert reason in placeholders["reason"]


async def test_get_sensor_data_equals_the_server(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    session: ClientSession,
    flexmeasures_real: FlexMeasuresServer,
) -> None:
    """Today's prices in EUR/kWh: the server's EUR/MWh values, /1000."""
    server = flexmeasures_real
    entry = flexmeasures_entry(server)
    assert await setup_entry(entry)
    price = server.sensor(HOUSE, "day-ahead price")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    response = await call(
        hass,
        "flexmeasures_get_sensor_data",
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": price,
            "start": start.isoformat(),
            "duration": "PT4H",
            "unit": "EUR/kWh",
        },
    )
    truth = await raw_values(session, server, price, start, start + 4 * HOUR, "EUR/MWh")
    assert any(value is not None for value in truth)
    assert response["resolution"] == "PT1H"
    assert [item["value"] for item in response["values"]] == [
        None if value is None else pytest.approx(value / 1000) for value in truth
    ]


async def test_worker_server_history_post_and_schedule(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    session: ClientSession,
    flexmeasures_real_worker: FlexMeasuresServer,
) -> None:
    """With a worker: a post is a job followed to its end; a real battery schedule.

    The schedule equals what the server's own schedule endpoint answers; the
    planned power entity shows its value now, without the series.
    """
    server = flexmeasures_real_worker
    entry = flexmeasures_entry(server)
    assert await setup_entry(entry)
    target = server.sensor(HOUSE, "energy from Home Assistant")
    start = datetime(2026, 1, 9, 10, tzinfo=UTC)
    posted = await call(
        hass,
        "flexmeasures_post_measurements",
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": target,
            "values": [0.25, 0.5],
            "start": start.isoformat(),
            "duration": "PT2H",
        },
    )
    assert posted["statuses"] == ["FINISHED"]
    assert len(posted["jobs"]) == 1
    stored = await raw_values(session, server, target, start, start + 2 * HOUR, "kWh")
    assert stored == [0.25, 0.5]

    battery = server.sensor(BATTERY, "battery power")
    price = server.sensor(HOUSE, "day-ahead price")
    begin = datetime.now(UTC).replace(second=0, microsecond=0)
    begin -= timedelta(minutes=begin.minute % 15)
    trigger = {
        "config_entry_id": entry.entry_id,
        "sensor_id": battery,
        "start": begin.isoformat(),
        "soc_at_start": 5,
        "soc_min": 1,
        "soc_max": 10,
        "power_capacity": 3,
        "consumption_price_sensor": price,
        "wait": 60,
    }
    # A longer schedule first: the server stores it, and a later, shorter one must
    # come back with its own span only (not the server's default 6 hours).
    longer = await call(
        hass, "flexmeasures_trigger_schedule", {**trigger, "duration": "PT4H"}
    )
    assert len(longer["values"]) == 16
    response = await call(
        hass, "flexmeasures_trigger_schedule", {**trigger, "duration": "PT2H"}
    )
    assert response["status"] == "done"
    values = [item["value"] for item in response["values"]]
    assert len(values) == 8
    assert datetime.fromisoformat(response["start"]) == begin
    async with session.post(
        f"{server.url}/api/requestAuthToken",
        json={"email": server.demo.email, "password": server.demo.password},
    ) as resp:
        token = (await resp.json())["auth_token"]
    async with session.get(
        f"{server.url}/api/v3_0/sensors/{battery}/schedules/{response['schedule_id']}",
        params={"duration": "PT2H"},
        headers={"Authorization": token},
    ) as resp:
        truth = await resp.json()
    assert truth["unit"] == "kW"
    assert values == pytest.approx(truth["values"])
    soc = 5.0
    for value in values:
        assert abs(value) <= 3 + 1e-6
        soc += value / 4
        assert 1 - 1e-3 <= soc <= 10 + 1e-3

    unique_id = f"flexmeasures:{server_id(server.url)}:{battery}:plan"
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, unique_id)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    now = datetime.now(UTC)
    assert float(state.state) == pytest.approx(values[(now - begin) // QUARTER])
    assert state.attributes["sensor_id"] == battery
    assert datetime.fromisoformat(state.attributes["schedule_start"]) == begin
    assert datetime.fromisoformat(state.attributes["schedule_end"]) == begin + 2 * HOUR
    assert "values" not in state.attributes
