"""FlexMeasures' actions: post measurements, read sensor data, trigger a schedule."""

from datetime import datetime

import probatio

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.extras.calls import as_utc, finite_number
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from .common import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DURATION,
    ATTR_END,
    ATTR_RESOLUTION,
    ATTR_SENSOR_ID,
    ATTR_START,
    ATTR_UNIT,
    FALLBACK_STEP,
    SENSOR_ID,
    ceil,
    coordinator_of,
    floor,
    iso_duration,
    period,
    provider_of,
    series,
    translated,
)
from .recorded import converted, intervals, recorded
from .schedule import SCHEDULE_SCHEMA, async_trigger_schedule

SERVICE_POST = "flexmeasures_post_measurements"
SERVICE_DATA = "flexmeasures_get_sensor_data"
SERVICE_SCHEDULE = "flexmeasures_trigger_schedule"
ATTR_VALUES = "values"

POST_SCHEMA = probatio.Schema(
    probatio.All(
        {
            probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
            probatio.Required(ATTR_SENSOR_ID): SENSOR_ID,
            probatio.Exclusive(ATTR_VALUES, "source"): list,
            probatio.Exclusive(ATTR_ENTITY_ID, "source"): cv.entity_id,
            probatio.Required(ATTR_START): cv.datetime,
            probatio.Exclusive(ATTR_DURATION, "span"): period,
            probatio.Exclusive(ATTR_END, "span"): cv.datetime,
            probatio.Optional(ATTR_RESOLUTION): period,
            probatio.Optional(ATTR_UNIT): cv.string,
        },
        cv.has_at_least_one_key(ATTR_VALUES, ATTR_ENTITY_ID),
    )
)
DATA_SCHEMA = probatio.Schema(
    probatio.All(
        {
            probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
            probatio.Required(ATTR_SENSOR_ID): SENSOR_ID,
            probatio.Required(ATTR_START): cv.datetime,
            probatio.Exclusive(ATTR_DURATION, "span"): period,
            probatio.Exclusive(ATTR_END, "span"): cv.datetime,
            probatio.Optional(ATTR_UNIT): cv.string,
            probatio.Optional(ATTR_RESOLUTION): period,
        },
        cv.has_at_least_one_key(ATTR_DURATION, ATTR_END),
    )
)


def _span(call: ServiceCall) -> tuple[datetime, datetime | None]:
    """Return the call's start and end (from `end` or `duration`), UTC."""
    start = as_utc(call.data[ATTR_START])
    if ATTR_DURATION in call.data:
        return start, start + call.data[ATTR_DURATION]
    if ATTR_END not in call.data:
        return start, None
    end = as_utc(call.data[ATTR_END])
    if end <= start:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="end_before_start"
        )
    return start, end


def _value(raw: object, index: int) -> float | None:
    """Return one value to send: a finite number (text that reads as one) or null."""
    if raw is None:
        return None
    return float(finite_number(raw, f"{ATTR_VALUES}[{index}]"))


async def _async_post(call: ServiceCall) -> ServiceResponse:
    """Post values, or an entity's recorded history, to a FlexMeasures sensor."""
    provider = provider_of(coordinator_of(call))
    sensor_id = str(call.data[ATTR_SENSOR_ID])
    start, end = _span(call)
    with translated(sensor_id):
        sensor = await provider.async_sensor(sensor_id)
    if ATTR_VALUES in call.data:
        values = [_value(raw, n) for n, raw in enumerate(call.data[ATTR_VALUES])]
        if all(value is None for value in values):
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_values_to_send"
            )
        step = (
            (end - start) / len(values)
            if end is not None
            else call.data.get(ATTR_RESOLUTION) or sensor.resolution or FALLBACK_STEP
        )
        unit = call.data.get(ATTR_UNIT) or sensor.unit
    else:
        if end is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="end_needed"
            )
        step = call.data.get(ATTR_RESOLUTION) or sensor.resolution or FALLBACK_STEP
        # Whole intervals of the sensor, completed ones only.
        start = floor(start, step)
        end = min(ceil(end, step), floor(dt_util.utcnow(), step))
        entity_id = call.data[ATTR_ENTITY_ID]
        found = (
            await get_instance(call.hass).async_add_executor_job(
                recorded, call.hass, entity_id, start, end
            )
            if end > start
            else None
        )
        raw = (
            []
            if found is None
            else intervals(found, start, step, (end - start) // step)
        )
        if found is None or all(value is None for value in raw):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_history",
                translation_placeholders={"entity_id": entity_id},
            )
        values, unit = converted(raw, found.rule, found.unit, sensor.unit, step)
    with translated(sensor_id):
        posted = await provider.async_post(sensor_id, start, step, values, unit)
    return {
        "values": posted.values,
        "statuses": list(posted.statuses),
        "jobs": list(posted.jobs),
    }


async def _async_data(call: ServiceCall) -> ServiceResponse:
    """Return a sensor's values for a period (prices, forecasts) to an automation."""
    provider = provider_of(coordinator_of(call))
    sensor_id = str(call.data[ATTR_SENSOR_ID])
    start, end = _span(call)
    assert end is not None  # the schema asks for a duration or an end
    with translated(sensor_id):
        unit = call.data.get(ATTR_UNIT) or (await provider.async_sensor(sensor_id)).unit
        data = await provider.async_sensor_data(
            sensor_id, start, end - start, unit, call.data.get(ATTR_RESOLUTION)
        )
    return {
        "sensor_id": int(sensor_id),
        "start": data.start.isoformat(),
        "resolution": iso_duration(data.resolution),
        "unit": data.unit,
        "values": series(data.start, data.resolution, data.values),
    }


@callback
def async_setup_actions(hass: HomeAssistant, config: ConfigType) -> None:
    """Register the actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_POST,
        _async_post,
        schema=POST_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_DATA,
        _async_data,
        schema=DATA_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SCHEDULE,
        async_trigger_schedule,
        schema=SCHEDULE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
