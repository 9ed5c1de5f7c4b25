"""Energydata.dk datastreams as config subentries: the form, its checks, its flow.

The API cannot list a token's datastreams, so the user names each one: its id, what it
measures, whether its values are a cumulative register, amounts per interval or
measurements, and its MQTT topic if it is pushed in real time. Each becomes a
subentry (its own device and sensor), added and edited in the UI.
"""

from collections.abc import Mapping
from typing import Any, Final

import probatio

from custom_components.cloud_energy_meters.claims import same_server
from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_PROVIDER,
    DOMAIN,
)
from custom_components.cloud_energy_meters.forms import whole_number
from custom_components.cloud_energy_meters.providers.energydata import (
    AMOUNT_END,
    AMOUNT_START,
    MEASUREMENT,
    REGISTER,
    EnergydataProvider,
    valid_topic,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    ProviderError,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.model import Quantity, Unit
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

SUBENTRY_TYPE: Final = "datastream"
CONF_ID: Final = "id"
CONF_TYPE: Final = "type"
CONF_QUANTITY: Final = "quantity"
CONF_UNIT: Final = "unit"
CONF_MEANING: Final = "meaning"
CONF_TOPIC: Final = "topic"

# What a datastream may measure, with the units Home Assistant accepts for it (the
# first is the default); OTHER takes any unit, TEXT none.
QUANTITY_UNITS: Final[dict[Quantity, tuple[str, ...]]] = {
    Quantity.ENERGY: (Unit.KWH, Unit.WH, "MWh"),
    Quantity.POWER: (Unit.W, Unit.KW),
    Quantity.WATER: (Unit.CUBIC_METER, Unit.LITER),
    Quantity.GAS: (Unit.CUBIC_METER, Unit.LITER),
    Quantity.TEMPERATURE: (Unit.CELSIUS,),
    Quantity.HUMIDITY: (Unit.PERCENT,),
    Quantity.TEXT: ("",),
    Quantity.OTHER: ("",),
}

# What a datastream's values are: only the pairs of quantity and meaning Home
# Assistant accepts (an energy meter is a register or amounts, never a measurement; a
# power is a measurement, never a register). The form offers these, nothing else.
TYPES: Final[dict[str, tuple[Quantity, str]]] = {
    **{
        f"{quantity.value}_{meaning}": (quantity, meaning)
        for quantity in (Quantity.ENERGY, Quantity.WATER, Quantity.GAS)
        for meaning in (REGISTER, AMOUNT_END, AMOUNT_START)
    },
    **{
        quantity.value: (quantity, MEASUREMENT)
        for quantity in (Quantity.POWER, Quantity.TEMPERATURE, Quantity.HUMIDITY)
    },
    "other_register": (Quantity.OTHER, REGISTER),
    "other_measurement": (Quantity.OTHER, MEASUREMENT),
    "text": (Quantity.TEXT, MEASUREMENT),
}


def type_of(data: Mapping[str, Any]) -> str | None:
    """Return the form's type of a datastream's data (None for a pair not offered)."""
    pair = (data.get(CONF_QUANTITY), data.get(CONF_MEANING))
    return next((key for key, known in TYPES.items() if known == pair), None)


def datastream_schema(*, with_id: bool) -> probatio.Schema:
    """Return the form describing one datastream (its id only when adding it)."""
    fields: dict[Any, Any] = {}
    if with_id:
        # Text, not a number box: an id has no default (a box would show its minimum).
        fields[probatio.Required(CONF_ID)] = TextSelector()
    fields[probatio.Required(CONF_NAME)] = TextSelector()
    fields[probatio.Required(CONF_TYPE, default="energy_register")] = SelectSelector(
        SelectSelectorConfig(
            options=list(TYPES),
            translation_key=CONF_TYPE,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )
    fields[probatio.Optional(CONF_UNIT, default="")] = SelectSelector(
        SelectSelectorConfig(
            options=sorted(
                {u for units in QUANTITY_UNITS.values() for u in units if u}
            ),
            custom_value=True,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )
    fields[probatio.Optional(CONF_TOPIC, default="")] = TextSelector()
    return probatio.Schema(fields)


def form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a datastream's data as the form shows it."""
    values = {
        key: data[key] for key in (CONF_NAME, CONF_UNIT, CONF_TOPIC) if key in data
    }
    if (kind := type_of(data)) is not None:
        values[CONF_TYPE] = kind
    return values


def datastream_data(
    datastream_id: int, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Return a datastream's subentry data from the form, or the error to show."""
    quantity, meaning = TYPES[user_input[CONF_TYPE]]
    allowed = QUANTITY_UNITS[quantity]
    unit = str(user_input.get(CONF_UNIT) or allowed[0]).strip()
    if quantity is Quantity.TEXT:
        unit = ""  # text has no unit: a value with one must be a number
    elif allowed != ("",) and unit not in allowed:
        return {}, "unit_mismatch"
    topic = str(user_input.get(CONF_TOPIC) or "").strip().strip("/")
    if topic and ("/" not in topic or not valid_topic(topic)):
        return {}, "invalid_topic"
    return {
        CONF_ID: datastream_id,
        CONF_NAME: str(user_input[CONF_NAME]).strip() or f"Datastream {datastream_id}",
        CONF_QUANTITY: quantity.value,
        CONF_UNIT: unit,
        CONF_MEANING: meaning,
        CONF_TOPIC: topic,
    }, None


def datastreams_taken(
    hass: HomeAssistant, api_url: str, exclude: str | None = None
) -> set[int]:
    """Return the datastreams entries on this server hold (not `exclude`'s).

    A datastream id is unique on its server: read by two entries, it would be two
    devices and two statistics of one meter.
    """
    return {
        int(subentry.data[CONF_ID])
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.entry_id != exclude
        and entry.data.get(CONF_PROVIDER) == EnergydataProvider.key
        and same_server(str(entry.data.get(CONF_API_URL, "")), api_url)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_TYPE
    }


# What Energydata.dk means when it refuses a read of datastreams.
REFUSED: Final = {403: "datastream_forbidden", 404: "unknown_datastream"}


def check_error(err: Exception) -> str:
    """Return the form error for a failed latest read of datastreams."""
    if isinstance(err, AuthError):
        return "invalid_auth"
    if isinstance(err, RequestRejected) and err.status in REFUSED:
        return REFUSED[err.status]
    if isinstance(err, ProviderError):
        return "cannot_connect"
    return "unknown"


class DatastreamSubentryFlow(ConfigSubentryFlow):
    """Add or edit one datastream of an Energydata.dk account."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Describe a new datastream; check the token may read it."""
        return await self._async_step(user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a datastream's description (its id stays)."""
        return await self._async_step(user_input)

    async def _async_step(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        adding = self.source == SOURCE_USER
        current = None if adding else self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            if current is not None:
                datastream_id: int | None = int(current.data[CONF_ID])
            else:
                datastream_id = whole_number(user_input.get(CONF_ID, ""))
            taken = datastreams_taken(
                self.hass, entry.data[CONF_API_URL], exclude=entry.entry_id
            ) | {
                int(subentry.data[CONF_ID])
                for subentry in entry.subentries.values()
                if subentry is not current
            }
            data: dict[str, Any] = {}
            error: str | None
            if datastream_id is None:
                error = "invalid_datastream_id"
            elif datastream_id in taken:
                error = "already_configured"
            else:
                data, error = datastream_data(datastream_id, user_input)
            if error is None:
                assert datastream_id is not None
                provider = entry.runtime_data.provider
                assert isinstance(provider, EnergydataProvider)
                try:
                    await provider.async_check([datastream_id])
                except Exception as err:  # noqa: BLE001 - shown to the user
                    error = check_error(err)
            if error is None:
                if current is None:
                    return self.async_create_entry(
                        title=data[CONF_NAME], data=data, unique_id=str(datastream_id)
                    )
                return self.async_update_and_abort(
                    entry, current, title=data[CONF_NAME], data=data
                )
            errors["base"] = error
        schema = datastream_schema(with_id=adding)
        suggested = user_input or (form_values(current.data) if current else {})
        return self.async_show_form(
            step_id="user" if adding else "reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )
