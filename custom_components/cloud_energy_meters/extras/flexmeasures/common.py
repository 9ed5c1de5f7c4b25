"""What FlexMeasures' actions share: fields, the entry's provider, errors, answers."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
import math
from typing import Any

import probatio

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.coordinator import CloudEnergyCoordinator
from custom_components.cloud_energy_meters.extras.calls import loaded_entry
from custom_components.cloud_energy_meters.providers.errors import (
    ProviderError,
    RateLimited,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.flexmeasures import (
    FlexMeasuresProvider,
)
from homeassistant.core import ServiceCall
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_SENSOR_ID = "sensor_id"
ATTR_START = "start"
ATTR_END = "end"
ATTR_DURATION = "duration"
ATTR_RESOLUTION = "resolution"
ATTR_UNIT = "unit"

FALLBACK_STEP = timedelta(minutes=15)
"""The step of an instantaneous sensor (resolution 0), as the provider reads it."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SENSOR_ID = probatio.All(probatio.Coerce(int), probatio.Range(min=1))


def period(value: Any) -> timedelta:
    """Read a positive duration: ISO 8601 (`PT15M`), `HH:MM:SS`, seconds or a dict."""
    if isinstance(value, str) and (parsed := dt_util.parse_duration(value)):
        if parsed <= timedelta(0):
            raise probatio.Invalid("a duration must be positive")
        return parsed
    found: timedelta = cv.positive_time_period(value)
    if not found:
        raise probatio.Invalid("a duration must be positive")
    return found


def coordinator_of(call: ServiceCall) -> CloudEnergyCoordinator:
    """Return the coordinator of the loaded FlexMeasures entry the call names."""
    return loaded_entry(
        call.hass,
        call.data[ATTR_CONFIG_ENTRY_ID],
        FlexMeasuresProvider,
        "not_flexmeasures",
    )


def provider_of(coordinator: CloudEnergyCoordinator) -> FlexMeasuresProvider:
    """Return the entry's FlexMeasures client."""
    provider = coordinator.provider
    assert isinstance(provider, FlexMeasuresProvider)
    return provider


@contextmanager
def translated(sensor_id: str, *, trigger: bool = False) -> Iterator[None]:
    """Turn the server's refusals and failures into translated errors.

    A refusal (4xx) names the sensor and gives the server's own reason: a sensor of
    another account (403), a unit it cannot take (422), a failed job.
    """
    try:
        yield
    except RateLimited as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="trigger_limited" if trigger else "rate_limited",
            translation_placeholders={"seconds": str(math.ceil(err.retry_after))},
        ) from err
    except RequestRejected as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="flexmeasures_refused",
            translation_placeholders={
                "sensor": sensor_id,
                "status": str(err.status),
                "reason": err.detail or "no reason given",
            },
        ) from err
    except ProviderError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="action_failed",
            translation_placeholders={"error": str(err)},
        ) from err


def floor(moment: datetime, step: timedelta) -> datetime:
    """Return the start of the step `moment` falls in (steps from the Unix epoch)."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


def ceil(moment: datetime, step: timedelta) -> datetime:
    """Return the first step boundary at or after `moment`."""
    start = floor(moment, step)
    return start if start == moment else start + step


def iso_duration(span: timedelta) -> str:
    """Format a span as ISO 8601 (`PT15M`, `PT24H`, `P1DT2H`)."""
    days, rest = divmod(int(span.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(
        f"{number}{unit}"
        for number, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
        if number
    )
    text = f"P{days}D" if days else "P"
    return f"{text}T{clock}" if clock or not days else text


def series(
    start: datetime, step: timedelta, values: Sequence[float | None]
) -> list[JsonValueType]:
    """Return values with the start of each step, for templates."""
    return [
        {"start": (start + index * step).isoformat(), "value": value}
        for index, value in enumerate(values)
    ]
