"""What the clouds' actions share: the entry a call names, its time fields."""

from contextlib import suppress
from datetime import datetime
import math

from custom_components.cloud_energy_meters.const import CONF_PROVIDER, DOMAIN
from custom_components.cloud_energy_meters.coordinator import (
    CloudEnergyConfigEntry,
    CloudEnergyCoordinator,
)
from custom_components.cloud_energy_meters.providers import Provider
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util


def loaded_entry(
    hass: HomeAssistant, entry_id: str, provider: type[Provider], wrong_cloud: str
) -> CloudEnergyCoordinator:
    """Return the coordinator of a loaded entry of `provider`'s cloud.

    Refused, with a translated reason: an entry that is not ours, of another cloud
    (`wrong_cloud`, the translation key), or not loaded.
    """
    entry: CloudEnergyConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry": entry_id},
        )
    if entry.data[CONF_PROVIDER] != provider.key:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=wrong_cloud,
            translation_placeholders={"entry": entry.title},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"entry": entry.title},
        )
    return entry.runtime_data


def as_utc(moment: datetime) -> datetime:
    """Read a naive time as Home Assistant's local time, as the UI means it."""
    return dt_util.as_utc(moment if moment.tzinfo else dt_util.as_local(moment))


def finite_number(raw: object, field: str) -> int | float:
    """Return the value as a finite number; text that reads as one becomes one.

    An int stays an int ("22" too) and a float a float: a cloud may take only
    whole numbers (an Energydata.dk integer datastream). True/false, NaN and
    infinities are refused with a translated error naming `field`.
    """
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = int(text)
        except ValueError:
            with suppress(ValueError):
                value = float(text)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_value",
            translation_placeholders={"field": field, "value": str(raw)},
        )
    return value
