"""FlexMeasures' actions against the simulator: what reaches the server, what comes back.

Called through Home Assistant's service registry; the simulator's beliefs
(`truth_posted`), demo values (`truth_values`) and computed plans
(`truth_schedule`) are the truth. Recorded history is written with
`hass.states.async_set` at chosen past times and read back by the recorder.
tests/flexmeasures/test_actions_real.py runs the same actions against a real server.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import CONF_BACKFILL_DAYS, DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from tests.conftest import SITE_IDS, SetupEntry, climkit_entry_for
from tests.flexmeasures.sim_entries import flexmeasures_sim_entry, sim_server
from tests.simulator import Simulator
from tests.simulator.flexmeasures_data import (
    BATTERY_POWER,
    HA_ENERGY,
    HA_POWER,
    OTHER_POWER,
    PRICE,
)

POST = "flexmeasures_post_measurements"
DATA = "flexmeasures_get_sensor_data"
SCHEDULE = "flexmeasures_trigger_schedule"
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAST = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
"""Where recorded history starts (the clock is frozen there, then moved)."""


pytestmark = pytest.mark.usefixtures("entity_registry_enabled_by_default")


def floor(moment: datetime, step: timedelta) -> datetime:
    """Return the start of the step `moment` falls in."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


async def loaded(simulator: Simulator, setup_entry: SetupEntry) -> MockConfigEntry:
    """Set up the demo entry; it must load."""
    entry = flexmeasures_sim_entry(simulator, options={CONF_BACKFILL_DAYS: 1})
    assert await setup_entry(entry)
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def record(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entity_id: str,
    states: Sequence[tuple[datetime, str]],
    attributes: dict[str, Any],
) -> None:
    """Record an entity's states at the times given (oldest first), then move on.

    The clock is moved to each time: the recorder keeps the state in effect at a
    period's start only where it was running then. The clock ends a minute after
    the last state.
    """
    for moment, state in states:
        freezer.move_to(moment)
        hass.states.async_set(entity_id, state, attributes)
    freezer.move_to(states[-1][0] + timedelta(minutes=1))
    await async_wait_recording_done(hass)


async def call(
    hass: HomeAssistant, service: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Call an action and return its response."""
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


# --------------------------------------------------------------------------- which entry


def calls_of(entry_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Return one valid call of each action, for an entry."""
    start = datetime.now(UTC) - HOUR
    return [
        (
            POST,
            {
                "config_entry_id": entry_id,
                "sensor_id": HA_POWER,
                "values": [1.0],
                "start": start.isoformat(),
                "duration": "PT15M",
            },
        ),
        (
            DATA,
            {
                "config_entry_id": entry_id,
                "sensor_id": PRICE,
                "start": start.isoformat(),
                "duration": "PT1H",
            },
        ),
        (SCHEDULE, {"config_entry_id": entry_id, "sensor_id": BATTERY_POWER}),
    ]


async def test_actions_refuse_an_entry_of_another_cloud_or_not_loaded(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A Climkit entry, an unloaded entry and no entry at all: refused by name.

    Nothing may reach FlexMeasures (nor Climkit) with such a call.
    """
    climkit = climkit_entry_for(simulator, sites=SITE_IDS[:1])
    assert await setup_entry(climkit)
    unloaded = await loaded(simulator, setup_entry)
    assert await hass.config_entries.async_unload(unloaded.entry_id)
    simulator.clear_log()
    for entry_id, reason in (
        (climkit.entry_id, "not_flexmeasures"),
        (unloaded.entry_id, "entry_not_loaded"),
        ("no-such-entry", "entry_not_found"),
    ):
        for service, data in calls_of(entry_id):
            with pytest.raises(ServiceValidationError) as caught:
                await hass.services.async_call(
                    DOMAIN, service, data, blocking=True, return_response=True
                )
            assert caught.value.translation_key == reason, service
    assert simulator.log_for("flexmeasures") == []


# --------------------------------------------------------------------------- post values


async def test_post_values_reach_the_sensor(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Values with a start and a duration: stored one per quarter, the gap skipped."""
    entry = await loaded(simulator, setup_entry)
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    response = await call(
        hass,
        POST,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": HA_POWER,
            "values": [1.5, None, "2.25", 3],
            "start": start.isoformat(),
            "duration": "PT1H",
        },
    )
    assert response == {"values": 3, "statuses": ["PROCESSED"], "jobs": []}
    assert simulator.flexmeasures.truth_posted(HA_POWER) == {
        start: 1.5,
        start + 2 * QUARTER: 2.25,
        start + 3 * QUARTER: 3.0,
    }


async def test_post_values_in_another_unit_with_a_resolution(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Watts, one per 15 minutes (resolution, no duration): the server converts."""
    entry = await loaded(simulator, setup_entry)
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    response = await call(
        hass,
        POST,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": HA_POWER,
            "values": [500, 1250],
            "start": start.isoformat(),
            "resolution": {"minutes": 15},
            "unit": "W",
        },
    )
    assert response["values"] == 2
    assert simulator.flexmeasures.truth_posted(HA_POWER) == {
        start: 0.5,
        start + QUARTER: 1.25,
    }


async def test_with_a_worker_a_post_is_followed_to_its_end(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """202 + job: the action answers once the job has finished and the values are stored."""
    simulator.flexmeasures.ingestion_worker = True
    entry = await loaded(simulator, setup_entry)
    start = datetime(2026, 1, 6, 10, tzinfo=UTC)
    response = await call(
        hass,
        POST,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": HA_ENERGY,
            "values": [0.5, 0.75],
            "start": start.isoformat(),
            "duration": "PT2H",
        },
    )
    assert response["statuses"] == ["FINISHED"]
    (job,) = response["jobs"]
    assert simulator.flexmeasures.truth_jobs()[job] == "FINISHED"
    assert simulator.flexmeasures.truth_posted(HA_ENERGY) == {
        start: 0.5,
        start + HOUR: 0.75,
    }


@pytest.mark.parametrize(
    ("sensor", "unit", "status", "reason"),
    [
        (
            OTHER_POWER,
            None,
            "403",
            "You cannot be authorized for this content or functionality.",
        ),
        (
            HA_POWER,
            "EUR/MWh",
            "422",
            "Required unit for this sensor is kW, got incompatible unit: EUR/MWh",
        ),
    ],
    ids=["other_account", "wrong_unit"],
)
async def test_post_refused_by_the_server_gives_its_reason(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    sensor: int,
    unit: str | None,
    status: str,
    reason: str,
) -> None:
    """Another account's sensor (403), a unit the sensor cannot take (422).

    The user sees the sensor, the status and the server's own reason; nothing is stored.
    """
    entry = await loaded(simulator, setup_entry)
    data: dict[str, Any] = {
        "config_entry_id": entry.entry_id,
        "sensor_id": sensor,
        "values": [1.0],
        "start": "2026-01-05T10:00:00+00:00",
        "duration": "PT15M",
    }
    if unit:
        data["unit"] = unit
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, POST, data, blocking=True)
    assert caught.value.translation_key == "flexmeasures_refused"
    assert caught.value.translation_placeholders == {
        "sensor": str(sensor),
        "status": status,
        "reason": reason,
    }
    assert simulator.flexmeasures.truth_posted(sensor) == {}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"values": [None, None]}, "no_values_to_send"),
        ({"values": [1.0, "abc"]}, "invalid_value"),
        ({"values": [True]}, "invalid_value"),
        ({"values": [1.0], "end": "2026-01-05T09:00:00+00:00"}, "end_before_start"),
        ({"entity_id": "sensor.nothing_recorded"}, "end_needed"),
    ],
    ids=["only_gaps", "text", "boolean", "end_before_start", "entity_without_end"],
)
async def test_post_refuses_what_cannot_be_sent(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    data: dict[str, Any],
    reason: str,
) -> None:
    """Refused with a translated reason before anything is posted."""
    entry = await loaded(simulator, setup_entry)
    simulator.clear_log()
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            POST,
            {
                "config_entry_id": entry.entry_id,
                "sensor_id": HA_POWER,
                "start": "2026-01-05T10:00:00+00:00",
                **data,
            },
            blocking=True,
        )
    assert caught.value.translation_key == reason
    assert not [r for r in simulator.log_for("flexmeasures") if r.method == "POST"]


# --------------------------------------------------------------------------- post history


@pytest.mark.freeze_time(PAST, tick=True)
async def test_post_the_mean_of_a_power_entity(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A power entity in W: each completed quarter's time-weighted mean, in kW.

    The quarter still running is not sent; a quarter without any known state is
    a gap, skipped by the server.
    """
    entry = await loaded(simulator, setup_entry)
    first = PAST + HOUR
    minutes = lambda m: first + timedelta(minutes=m)  # noqa: E731
    await record(
        hass,
        freezer,
        "sensor.heat_pump_power",
        [
            (minutes(-20), "unavailable"),
            (minutes(20), "1000"),  # quarter 1 [15, 30): 1000 W for 10 of 15 min
            (minutes(40), "2500"),  # quarter 2 [30, 45): 1000 for 10, 2500 for 5
            (minutes(50), "unknown"),  # quarter 3 [45, 60): 2500 for 5, then unknown
            (minutes(58), "400"),  # 400 for the last 2 minutes
            (minutes(62), "700"),  # quarter 4: still running, not sent
        ],
        {"unit_of_measurement": "W", "device_class": "power"},
    )
    response = await call(
        hass,
        POST,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": HA_POWER,
            "entity_id": "sensor.heat_pump_power",
            "start": minutes(3).isoformat(),  # taken back to the quarter
            "end": minutes(90).isoformat(),  # beyond now: cut
        },
    )
    assert response["values"] == 3
    assert simulator.flexmeasures.truth_posted(HA_POWER) == pytest.approx(
        {
            minutes(15): 1.0,
            minutes(30): (1.0 * 10 + 2.5 * 5) / 15,
            minutes(45): (2.5 * 5 + 0.4 * 2) / 7,
        }
    )


@pytest.mark.freeze_time(PAST, tick=True)
async def test_post_a_register_as_its_difference_per_interval(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An energy register in Wh (total_increasing) with a reset: kWh per hour.

    The reset (the meter starting again from 0) counts its new value in full,
    never a negative amount; an outage is bridged (the meter kept counting).
    """
    entry = await loaded(simulator, setup_entry)
    first = PAST + HOUR
    minutes = lambda m: first + timedelta(minutes=m)  # noqa: E731
    await record(
        hass,
        freezer,
        "sensor.meter_energy",
        [
            (minutes(-5), "100000"),
            (minutes(20), "100400"),
            (minutes(50), "101200"),  # hour 1: 1200 Wh
            (minutes(70), "101500"),
            (minutes(80), "200"),  # reset: +200
            (minutes(110), "900"),  # hour 2: 300 + 200 + 700 = 1200 Wh
            (minutes(130), "unavailable"),
            (minutes(170), "1400"),  # hour 3: 500 Wh across the outage
            (minutes(181), "1500"),
        ],
        {
            "unit_of_measurement": "Wh",
            "device_class": "energy",
            "state_class": "total_increasing",
        },
    )
    response = await call(
        hass,
        POST,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": HA_ENERGY,
            "entity_id": "sensor.meter_energy",
            "start": first.isoformat(),
            "duration": {"hours": 3},
        },
    )
    assert response == {"values": 3, "statuses": ["PROCESSED"], "jobs": []}
    assert simulator.flexmeasures.truth_posted(HA_ENERGY) == pytest.approx(
        {first: 1.2, first + HOUR: 1.2, first + 2 * HOUR: 0.5}
    )


@pytest.mark.freeze_time(PAST, tick=True)
async def test_post_a_register_into_a_power_sensor(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Energy counted per quarter into a kW sensor: the kWh divided by 0.25 h."""
    entry = await loaded(simulator, setup_entry)
    first = PAST + HOUR
    await record(
        hass,
        freezer,
        "sensor.meter_energy",
        [
            (first - QUARTER, "10.0"),
            (first + QUARTER, "10.5"),
            (first + 2 * QUARTER, "10.75"),
            (first + 3 * QUARTER, "11.0"),
        ],
        {"unit_of_measurement": "kWh", "state_class": "total"},
    )
    await call(
        hass,
        POST,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": HA_POWER,
            "entity_id": "sensor.meter_energy",
            "start": first.isoformat(),
            "end": (first + 2 * QUARTER).isoformat(),
        },
    )
    # The change at the end of a quarter belongs to the next one.
    assert simulator.flexmeasures.truth_posted(HA_POWER) == pytest.approx(
        {first: 0.0, first + QUARTER: 2.0}
    )


async def test_post_history_of_an_entity_without_any(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """No recorded number in the period: refused by name, nothing posted."""
    entry = await loaded(simulator, setup_entry)
    now = datetime.now(UTC)
    hass.states.async_set("sensor.empty", "unknown")
    await async_wait_recording_done(hass)
    simulator.clear_log()
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            POST,
            {
                "config_entry_id": entry.entry_id,
                "sensor_id": HA_POWER,
                "entity_id": "sensor.empty",
                "start": (now - 2 * HOUR).isoformat(),
                "end": (now - HOUR).isoformat(),
            },
            blocking=True,
        )
    assert caught.value.translation_key == "no_history"
    assert caught.value.translation_placeholders == {"entity_id": "sensor.empty"}
    assert not [r for r in simulator.log_for("flexmeasures") if r.method == "POST"]


# --------------------------------------------------------------------------- sensor data


async def test_get_sensor_data_gives_prices_for_automations(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Today's day-ahead prices in EUR/kWh, each with its start: the server's, /1000."""
    entry = await loaded(simulator, setup_entry)
    start = floor(datetime.now(UTC), HOUR)
    response = await call(
        hass,
        DATA,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": PRICE,
            "start": start.isoformat(),
            "end": (start + 6 * HOUR).isoformat(),
            "unit": "EUR/kWh",
        },
    )
    truth = simulator.flexmeasures.truth_values(PRICE, start, start + 6 * HOUR)
    assert response["sensor_id"] == PRICE
    assert response["unit"] == "EUR/kWh"
    assert response["resolution"] == "PT1H"
    assert datetime.fromisoformat(response["start"]) == start
    assert [
        (datetime.fromisoformat(item["start"]), item["value"])
        for item in response["values"]
    ] == [(moment, pytest.approx(value / 1000)) for moment, value in truth.items()]


async def test_get_sensor_data_in_another_resolution_and_refused(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Two hours' prices as one 2-hour mean; another account's sensor is refused."""
    entry = await loaded(simulator, setup_entry)
    start = floor(datetime.now(UTC), HOUR)
    response = await call(
        hass,
        DATA,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": PRICE,
            "start": start.isoformat(),
            "duration": "PT2H",
            "resolution": "PT2H",
        },
    )
    truth = list(
        simulator.flexmeasures.truth_values(PRICE, start, start + 2 * HOUR).values()
    )
    assert response["unit"] == "EUR/MWh"
    assert [item["value"] for item in response["values"]] == [
        pytest.approx(sum(truth) / 2)
    ]
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            DATA,
            {
                "config_entry_id": entry.entry_id,
                "sensor_id": OTHER_POWER,
                "start": start.isoformat(),
                "duration": "PT1H",
            },
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "flexmeasures_refused"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["status"] == "403"


# --------------------------------------------------------------------------- schedules


def schedule_call(
    entry: MockConfigEntry, start: datetime, **extra: Any
) -> dict[str, Any]:
    """Return a two-hour battery schedule call against the day-ahead price."""
    return {
        "config_entry_id": entry.entry_id,
        "sensor_id": BATTERY_POWER,
        "start": start.isoformat(),
        "duration": "PT2H",
        "soc_min": 1,
        "soc_max": 10,
        "power_capacity": 3,
        "consumption_price_sensor": PRICE,
        **extra,
    }


def planned_entity(hass: HomeAssistant, simulator: Simulator) -> str | None:
    """Return the battery's planned power entity, once it exists."""
    return er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"flexmeasures:{sim_server(simulator)}:{BATTERY_POWER}:plan"
    )


async def test_trigger_schedule_returns_the_plan_and_shows_it_now(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """The schedule the server computed, in kW; then an entity with its value now.

    The entity's attributes name the schedule's span, never its series (which
    would fill the recorder).
    """
    entry = await loaded(simulator, setup_entry)
    assert planned_entity(hass, simulator) is None
    # The quarter we are in (off the hour three times in four): hourly prices hold
    # for each quarter of their hour.
    start = floor(datetime.now(UTC), QUARTER)
    response = await call(hass, SCHEDULE, schedule_call(entry, start, soc_at_start=5))
    plan = simulator.flexmeasures.truth_schedule(response["schedule_id"])
    assert response["status"] == "done"
    assert (response["unit"], response["resolution"]) == ("kW", "PT15M")
    assert datetime.fromisoformat(response["start"]) == start
    assert datetime.fromisoformat(response["end"]) == start + 2 * HOUR
    assert [item["value"] for item in response["values"]] == list(plan.power_kw)
    assert [datetime.fromisoformat(item["start"]) for item in response["values"]] == [
        start + n * QUARTER for n in range(8)
    ]
    assert plan.soc_kwh[0] == 5.0
    assert any(power != 0 for power in plan.power_kw)
    body = next(
        r.body for r in simulator.log_for("flexmeasures") if r.path.endswith("/trigger")
    )
    assert body["flex-model"] == {
        "soc-at-start": "5 kWh",
        "soc-min": "1 kWh",
        "soc-max": "10 kWh",
        "power-capacity": "3 kW",
    }
    assert body["flex-context"] == {"consumption-price": {"sensor": PRICE}}

    entity_id = planned_entity(hass, simulator)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    now = datetime.now(UTC)
    assert float(state.state) == pytest.approx(plan.power_kw[(now - start) // QUARTER])
    assert state.attributes["unit_of_measurement"] == "kW"
    assert state.attributes["sensor_id"] == BATTERY_POWER
    assert datetime.fromisoformat(state.attributes["schedule_start"]) == start
    assert datetime.fromisoformat(state.attributes["schedule_end"]) == start + 2 * HOUR
    assert not any(
        isinstance(value, list) and len(value) >= 8
        for value in state.attributes.values()
    )


async def test_trigger_schedule_with_the_state_of_charge_of_an_entity(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """An entity at 40 % of a 10 kWh battery starts the plan at 4 kWh; targets are met."""
    entry = await loaded(simulator, setup_entry)
    hass.states.async_set("sensor.battery_level", "40", {"unit_of_measurement": "%"})
    start = floor(datetime.now(UTC), HOUR) + HOUR
    target = {"datetime": (start + HOUR).isoformat(), "value": 6.5}
    response = await call(
        hass,
        SCHEDULE,
        schedule_call(
            entry, start, soc_entity="sensor.battery_level", soc_targets=[target]
        ),
    )
    plan = simulator.flexmeasures.truth_schedule(response["schedule_id"])
    assert plan.soc_kwh[0] == pytest.approx(4.0)
    # Reached to the scheduler's step (3 kW for a sixteenth of an hour).
    assert plan.soc_kwh[4] == pytest.approx(6.5, abs=3 / 16)
    assert [item["value"] for item in response["values"]] == list(plan.power_kw)


@pytest.mark.parametrize(
    ("state", "unit", "extra", "reason"),
    [
        ("40", "%", {}, "soc_percent_needs_max"),
        ("unavailable", "kWh", {}, "soc_entity_unknown"),
        ("4", "V", {}, "soc_entity_unit"),
    ],
    ids=["percent_without_max", "unavailable", "not_energy"],
)
async def test_trigger_schedule_refuses_a_state_of_charge_it_cannot_read(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    state: str,
    unit: str,
    extra: dict[str, Any],
    reason: str,
) -> None:
    """A guess would schedule the wrong battery: refused before any trigger."""
    entry = await loaded(simulator, setup_entry)
    hass.states.async_set("sensor.battery_level", state, {"unit_of_measurement": unit})
    data = schedule_call(
        entry, datetime.now(UTC), soc_entity="sensor.battery_level", **extra
    )
    del data["soc_max"]
    if unit != "%":
        data["soc_max"] = 10
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, SCHEDULE, data, blocking=True)
    assert caught.value.translation_key == reason
    assert simulator.flexmeasures.truth_jobs() == {}


async def test_a_schedule_still_computing_is_fetched_later_by_its_id(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """No wait: status computing with the id; the same call with the id fetches it.

    Fetching it triggers nothing new (the server counts triggers).
    """
    simulator.flexmeasures.schedule_polls = 2
    entry = await loaded(simulator, setup_entry)
    start = floor(datetime.now(UTC), HOUR)
    first = await call(
        hass, SCHEDULE, schedule_call(entry, start, soc_at_start=5, wait=0)
    )
    assert first == {"schedule_id": first["schedule_id"], "status": "computing"}
    assert planned_entity(hass, simulator) is None
    later = await call(
        hass,
        SCHEDULE,
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": BATTERY_POWER,
            "schedule_id": first["schedule_id"],
            "duration": "PT2H",
        },
    )
    plan = simulator.flexmeasures.truth_schedule(first["schedule_id"])
    assert later["status"] == "done"
    assert [item["value"] for item in later["values"]] == list(plan.power_kw)
    assert len(simulator.flexmeasures.truth_jobs()) == 1
    assert planned_entity(hass, simulator) is not None


async def test_a_schedule_the_server_cannot_make_says_why(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """No price given (and none on the asset): the job fails; its reason is shown."""
    simulator.flexmeasures.schedule_polls = 0
    entry = await loaded(simulator, setup_entry)
    data = schedule_call(entry, floor(datetime.now(UTC), HOUR), soc_at_start=5)
    del data["consumption_price_sensor"]
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(DOMAIN, SCHEDULE, data, blocking=True)
    assert caught.value.translation_key == "schedule_failed"
    assert caught.value.translation_placeholders is not None
    assert "No consumption price" in caught.value.translation_placeholders["reason"]


async def test_the_trigger_limit_is_named(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Beyond the server's trigger limit: a translated error saying so, with the wait."""
    simulator.flexmeasures.enforce_rate_limits = True
    simulator.flexmeasures.trigger_limit = 1
    entry = await loaded(simulator, setup_entry)
    start = floor(datetime.now(UTC), HOUR)
    await call(hass, SCHEDULE, schedule_call(entry, start, soc_at_start=5))
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            SCHEDULE,
            schedule_call(entry, start, soc_at_start=6),
            blocking=True,
        )
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "trigger_limited"
    assert caught.value.translation_placeholders is not None
    assert 120 < int(caught.value.translation_placeholders["seconds"]) <= 300
    assert len(simulator.flexmeasures.truth_jobs()) == 1
    # The trigger limit pauses triggers only: the account's reads go on.
    coordinator = entry.runtime_data
    assert coordinator.provider.state.limiter.paused_for == 0
    await coordinator.async_refresh()
    assert coordinator.last_update_success


async def test_the_planned_power_entity_follows_the_newest_schedule(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A second, shorter schedule: the entity's span attributes are the new one's.

    The entity is created with the first schedule's channel; a later schedule
    changes the channel's attributes, which the entity must show.
    """
    entry = await loaded(simulator, setup_entry)
    start = floor(datetime.now(UTC), HOUR)
    await call(
        hass, SCHEDULE, schedule_call(entry, start, soc_at_start=5, duration="PT4H")
    )
    second = await call(hass, SCHEDULE, schedule_call(entry, start, soc_at_start=9))
    entity_id = planned_entity(hass, simulator)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert datetime.fromisoformat(state.attributes["schedule_end"]) == start + 2 * HOUR
    now = datetime.now(UTC)
    value = second["values"][(now - start) // QUARTER]["value"]
    assert float(state.state) == pytest.approx(value)


async def test_a_server_failing_on_its_side_is_a_translated_failure(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A 500 while posting: the action fails with the reason, nothing is stored."""
    entry = await loaded(simulator, setup_entry)
    simulator.faults.add("http_500", cloud="flexmeasures", path=r"/sensors/\d+/data")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            POST,
            {
                "config_entry_id": entry.entry_id,
                "sensor_id": HA_POWER,
                "values": [1.0],
                "start": "2026-01-05T10:00:00+00:00",
                "duration": "PT15M",
            },
            blocking=True,
        )
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "action_failed"
    assert simulator.flexmeasures.truth_posted(HA_POWER) == {}
