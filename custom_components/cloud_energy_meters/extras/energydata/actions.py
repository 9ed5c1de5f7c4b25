"""Energydata.dk's actions: publish values by MQTT, upload recorded history."""

from datetime import datetime

import probatio

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.extras.calls import (
    as_utc,
    finite_number,
    loaded_entry,
)
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
    valid_topic,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    CannotConnect,
    ProviderError,
    PublishRefused,
)
from homeassistant.components.recorder import history
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.typing import ConfigType

SERVICE_PUBLISH = "energydata_publish"
SERVICE_UPLOAD = "energydata_upload_history"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_TOPIC = "topic"
ATTR_VALUE = "value"
ATTR_VALUES = "values"
ATTR_TIMESTAMP = "timestamp"
ATTR_DATASTREAM = "datastream"
ATTR_START = "start"
ATTR_END = "end"

# Numbers are checked by the action itself, for an error the user can read.
_SCALAR = probatio.Any(float, int, str)

PUBLISH_SCHEMA = probatio.Schema(
    probatio.All(
        {
            probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
            probatio.Required(ATTR_TOPIC): cv.string,
            probatio.Exclusive(ATTR_VALUE, "value"): _SCALAR,
            probatio.Exclusive(ATTR_VALUES, "value"): {cv.string: object},
            probatio.Optional(ATTR_TIMESTAMP): cv.datetime,
        },
        cv.has_at_least_one_key(ATTR_VALUE, ATTR_VALUES),
    )
)
UPLOAD_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_ENTITY_ID): cv.entity_id,
        probatio.Required(ATTR_DATASTREAM): cv.string,
        probatio.Required(ATTR_START): cv.datetime,
        probatio.Required(ATTR_END): cv.datetime,
    }
)


def _energydata(hass: HomeAssistant, call: ServiceCall) -> EnergydataProvider:
    """Return the Energydata.dk provider of the entry the call names."""
    provider = loaded_entry(
        hass, call.data[ATTR_CONFIG_ENTRY_ID], EnergydataProvider, "not_energydata"
    ).provider
    assert isinstance(provider, EnergydataProvider)
    return provider


def _payload_value(call: ServiceCall) -> int | float | dict[str, int | float]:
    """Return the number to publish, or the numbers by datastream suffix."""
    if ATTR_VALUES not in call.data:  # then the schema asks for a value
        return finite_number(call.data[ATTR_VALUE], ATTR_VALUE)
    values = {
        suffix: finite_number(item, f"{ATTR_VALUES}: {suffix}")
        for suffix, item in call.data[ATTR_VALUES].items()
    }
    if not values:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_values"
        )
    return values


async def _async_publish(call: ServiceCall) -> None:
    """Publish one number, or several on a dataset prefix, and wait for the ack."""
    provider = _energydata(call.hass, call)
    topic = call.data[ATTR_TOPIC].strip().strip("/")
    if not valid_topic(topic):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_topic",
            translation_placeholders={"topic": call.data[ATTR_TOPIC]},
        )
    value = _payload_value(call)
    moment = call.data.get(ATTR_TIMESTAMP)
    try:
        await provider.async_publish(topic, value, as_utc(moment) if moment else None)
    except AuthError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="mqtt_not_authorized"
        ) from err
    except CannotConnect as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="mqtt_not_connected"
        ) from err
    except PublishRefused as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="publish_refused",
            translation_placeholders={"topic": topic},
        ) from err


def _recorded_rows(
    hass: HomeAssistant, entity_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, float | str]]:
    """Return the entity's recorded values (numbers where they are numbers)."""
    states = history.state_changes_during_period(
        hass, start, end, entity_id, no_attributes=True, include_start_time_state=False
    ).get(entity_id, [])
    rows: list[tuple[datetime, float | str]] = []
    for state in states:
        if state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN, ""):
            continue
        try:
            value: float | str = float(state.state)
        except ValueError:
            value = state.state
        rows.append((state.last_updated, value))
    return rows


async def _async_upload(call: ServiceCall) -> ServiceResponse:
    """Upload an entity's recorded history into a datastream by batch import."""
    hass = call.hass
    provider = _energydata(hass, call)
    start, end = as_utc(call.data[ATTR_START]), as_utc(call.data[ATTR_END])
    if end <= start:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="end_before_start"
        )
    entity_id = call.data[ATTR_ENTITY_ID]
    rows = await get_instance(hass).async_add_executor_job(
        _recorded_rows, hass, entity_id, start, end
    )
    if not rows:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_history",
            translation_placeholders={"entity_id": entity_id},
        )
    name = f"home-assistant-{entity_id}-{start:%Y%m%dT%H%M%S}"
    try:
        outcome = await provider.async_upload(
            call.data[ATTR_DATASTREAM], rows, name=name
        )
    except ProviderError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="action_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    if outcome.status != "done":
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="upload_failed",
            translation_placeholders={
                "status": outcome.status,
                "errors": "; ".join(outcome.errors) or "-",
            },
        )
    return {
        "import_id": outcome.id,
        "status": outcome.status,
        "rows": outcome.rows,
    }


@callback
def async_setup_actions(hass: HomeAssistant, config: ConfigType) -> None:
    """Register the actions."""
    hass.services.async_register(
        DOMAIN, SERVICE_PUBLISH, _async_publish, schema=PUBLISH_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_UPLOAD,
        _async_upload,
        schema=UPLOAD_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
