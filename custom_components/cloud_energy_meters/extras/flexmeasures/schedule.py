"""FlexMeasures' trigger_schedule action: flex-model and flex-context, wait, answer.

The request body uses FlexMeasures 1.0's hyphenated fields. Every quantity is
sent with its unit ("5 kWh", "3 kW"): a bare number means MWh or MW to one server
version and the sensor's unit to another.
"""

from datetime import datetime, timedelta
from typing import Any

import probatio

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.extras.calls import as_utc
from custom_components.cloud_energy_meters.providers.errors import RequestRejected
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, PERCENTAGE
from homeassistant.core import ServiceCall, ServiceResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_conversion import EnergyConverter

from .common import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DURATION,
    ATTR_SENSOR_ID,
    ATTR_START,
    FALLBACK_STEP,
    SENSOR_ID,
    ceil,
    coordinator_of,
    iso_duration,
    period,
    provider_of,
    series,
    translated,
)

ATTR_SCHEDULE_ID = "schedule_id"
ATTR_SOC_AT_START = "soc_at_start"
ATTR_SOC_ENTITY = "soc_entity"
ATTR_SOC_MIN = "soc_min"
ATTR_SOC_MAX = "soc_max"
ATTR_SOC_UNIT = "soc_unit"
ATTR_SOC_TARGETS = "soc_targets"
ATTR_POWER_CAPACITY = "power_capacity"
ATTR_CONSUMPTION_PRICE = "consumption_price_sensor"
ATTR_PRODUCTION_PRICE = "production_price_sensor"
ATTR_WAIT = "wait"

DEFAULT_DURATION = timedelta(hours=24)
DEFAULT_WAIT = 120.0
SOC_UNITS = ("kWh", "MWh")
_AMOUNT = probatio.All(probatio.Coerce(float), probatio.Range(min=0))

SCHEDULE_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_SENSOR_ID): SENSOR_ID,
        probatio.Optional(ATTR_START): cv.datetime,
        probatio.Optional(ATTR_DURATION, default=DEFAULT_DURATION): period,
        probatio.Optional(ATTR_SCHEDULE_ID): cv.string,
        probatio.Exclusive(ATTR_SOC_AT_START, "soc"): _AMOUNT,
        probatio.Exclusive(ATTR_SOC_ENTITY, "soc"): cv.entity_id,
        probatio.Optional(ATTR_SOC_MIN): _AMOUNT,
        probatio.Optional(ATTR_SOC_MAX): _AMOUNT,
        probatio.Optional(ATTR_SOC_UNIT, default="kWh"): probatio.In(SOC_UNITS),
        probatio.Optional(ATTR_SOC_TARGETS): [
            {
                probatio.Required("datetime"): cv.datetime,
                probatio.Required("value"): _AMOUNT,
            }
        ],
        probatio.Optional(ATTR_POWER_CAPACITY): probatio.All(
            probatio.Coerce(float), probatio.Range(min=0, min_included=False)
        ),
        probatio.Optional(ATTR_CONSUMPTION_PRICE): SENSOR_ID,
        probatio.Optional(ATTR_PRODUCTION_PRICE): SENSOR_ID,
        probatio.Optional(ATTR_WAIT, default=DEFAULT_WAIT): probatio.All(
            probatio.Coerce(float), probatio.Range(min=0, max=600)
        ),
    }
)


def _quantity(value: float, unit: str) -> str:
    """Write an amount with its unit, without float noise ("5 kWh", "2.5 kW")."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _soc_from_entity(call: ServiceCall, unit: str) -> float:
    """Return the state of charge an entity shows, in `unit`.

    In % it is a share of `soc_max` (which must be given); in Wh, kWh or MWh it is
    converted. Anything else is refused: a guess would schedule a wrong battery.
    """
    entity_id = call.data[ATTR_SOC_ENTITY]
    state = call.hass.states.get(entity_id)
    try:
        value = float(state.state) if state is not None else None
    except ValueError:
        value = None
    if state is None or value is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="soc_entity_unknown",
            translation_placeholders={"entity_id": entity_id},
        )
    given = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
    if given == PERCENTAGE:
        if ATTR_SOC_MAX not in call.data:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="soc_percent_needs_max",
                translation_placeholders={"entity_id": entity_id},
            )
        return value / 100 * float(call.data[ATTR_SOC_MAX])
    if given in EnergyConverter.VALID_UNITS:
        return float(EnergyConverter.convert(value, given, unit))
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="soc_entity_unit",
        translation_placeholders={"entity_id": entity_id, "unit": str(given)},
    )


def trigger_body(call: ServiceCall, start: datetime) -> dict[str, Any]:
    """Return the trigger's body: start, duration, flex-model, flex-context."""
    unit = call.data[ATTR_SOC_UNIT]
    model: dict[str, Any] = {}
    soc = call.data.get(ATTR_SOC_AT_START)
    if ATTR_SOC_ENTITY in call.data:
        soc = _soc_from_entity(call, unit)
    if soc is not None:
        model["soc-at-start"] = _quantity(soc, unit)
    for field, key in ((ATTR_SOC_MIN, "soc-min"), (ATTR_SOC_MAX, "soc-max")):
        if field in call.data:
            model[key] = _quantity(call.data[field], unit)
    if targets := call.data.get(ATTR_SOC_TARGETS):
        model["soc-targets"] = [
            {
                "datetime": as_utc(target["datetime"]).isoformat(),
                "value": _quantity(target["value"], unit),
            }
            for target in targets
        ]
    if ATTR_POWER_CAPACITY in call.data:
        model["power-capacity"] = _quantity(call.data[ATTR_POWER_CAPACITY], "kW")
    context = {
        key: {"sensor": call.data[field]}
        for field, key in (
            (ATTR_CONSUMPTION_PRICE, "consumption-price"),
            (ATTR_PRODUCTION_PRICE, "production-price"),
        )
        if field in call.data
    }
    body: dict[str, Any] = {
        "start": start.isoformat(),
        "duration": iso_duration(call.data[ATTR_DURATION]),
    }
    # Left out when empty: the server then uses what the asset itself holds.
    if model:
        body["flex-model"] = model
    if context:
        body["flex-context"] = context
    return body


async def async_trigger_schedule(call: ServiceCall) -> ServiceResponse:
    """Trigger a device's schedule (or fetch one triggered before) and return it.

    A schedule still being computed after `wait` seconds is returned with status
    "computing" and its id: the same call with `schedule_id` fetches it later
    without a new trigger (which the server's 10 per 5 minutes limit counts).
    """
    coordinator = coordinator_of(call)
    provider = provider_of(coordinator)
    sensor_id = str(call.data[ATTR_SENSOR_ID])
    with translated(sensor_id):
        sensor = await provider.async_sensor(sensor_id)
    step = sensor.resolution or FALLBACK_STEP
    start = (
        as_utc(call.data[ATTR_START])
        if ATTR_START in call.data
        else ceil(dt_util.utcnow(), step)
    )
    schedule_id = call.data.get(ATTR_SCHEDULE_ID)
    if schedule_id is None:
        body = trigger_body(call, start)
        with translated(sensor_id, trigger=True):
            schedule_id = await provider.async_trigger_schedule(sensor_id, body)
    with translated(sensor_id):
        try:
            schedule = await provider.async_schedule(
                sensor_id,
                schedule_id,
                wait=call.data[ATTR_WAIT],
                duration=call.data[ATTR_DURATION],
            )
        except RequestRejected as err:
            # The server's worker could not make it (infeasible, prices unknown).
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="schedule_failed",
                translation_placeholders={
                    "schedule_id": schedule_id,
                    "reason": err.detail or "no reason given",
                },
            ) from err
    if schedule is None:
        return {"schedule_id": schedule_id, "status": "computing"}
    # The device's "planned" power entity appears (or follows the new schedule).
    await coordinator.async_rediscover()
    return {
        "schedule_id": schedule.id,
        "status": "done",
        "start": schedule.start.isoformat(),
        "end": schedule.end.isoformat(),
        "resolution": iso_duration(schedule.resolution),
        "unit": "kW",
        "values": series(schedule.start, schedule.resolution, schedule.values),
    }
