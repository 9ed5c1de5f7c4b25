"""Energydata.dk datastreams as config subentries: the form, its checks, its flow.

The API cannot list a token's datastreams, so the user names each one: its id, what it
measures, whether its values are a cumulative register, amounts per interval or
measurements, and its MQTT topic if it is pushed in real time. Each becomes a
subentry (its own device and sensor), added and edited in the UI.
"""

from collections.abc import Mapping
from typing import Any, Final

import probatio

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_NAME
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .providers.energydata import MEANINGS, EnergydataProvider, valid_topic
from .providers.errors import AuthError, ProviderError, RequestRejected
from .providers.model import Quantity, Unit

SUBENTRY_TYPE: Final = "datastream"
CONF_ID: Final = "id"
CONF_QUANTITY: Final = "quantity"
CONF_UNIT: Final = "unit"
CONF_MEANING: Final = "meaning"
CONF_TOPIC: Final = "topic"

# What a datastream may measure, with the units Home Assistant accepts for it (the
# first is the default); OTHER takes any unit.
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


def datastream_schema(*, with_id: bool) -> probatio.Schema:
    """Return the form describing one datastream (its id only when adding it)."""
    fields: dict[Any, Any] = {}
    if with_id:
        fields[probatio.Required(CONF_ID)] = NumberSelector(
            NumberSelectorConfig(min=1, step=1, mode=NumberSelectorMode.BOX)
        )
    fields[probatio.Required(CONF_NAME)] = TextSelector()
    fields[probatio.Required(CONF_QUANTITY, default=Quantity.ENERGY.value)] = (
        SelectSelector(
            SelectSelectorConfig(
                options=[quantity.value for quantity in QUANTITY_UNITS],
                translation_key=CONF_QUANTITY,
                mode=SelectSelectorMode.DROPDOWN,
            )
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
    fields[probatio.Required(CONF_MEANING, default=MEANINGS[0])] = SelectSelector(
        SelectSelectorConfig(
            options=list(MEANINGS),
            translation_key=CONF_MEANING,
            mode=SelectSelectorMode.LIST,
        )
    )
    fields[probatio.Optional(CONF_TOPIC, default="")] = TextSelector()
    return probatio.Schema(fields)


def describe(
    datastream_id: int, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Return a datastream's subentry data from the form, or the error to show."""
    quantity = Quantity(user_input[CONF_QUANTITY])
    allowed = QUANTITY_UNITS[quantity]
    unit = str(user_input.get(CONF_UNIT) or allowed[0]).strip()
    if allowed != ("",) and unit not in allowed:
        return {}, "unit_mismatch"
    topic = str(user_input.get(CONF_TOPIC) or "").strip().strip("/")
    if topic and ("/" not in topic or not valid_topic(topic)):
        return {}, "invalid_topic"
    return {
        CONF_ID: datastream_id,
        CONF_NAME: str(user_input[CONF_NAME]).strip() or f"Datastream {datastream_id}",
        CONF_QUANTITY: quantity.value,
        CONF_UNIT: unit,
        CONF_MEANING: user_input[CONF_MEANING],
        CONF_TOPIC: topic,
    }, None


def check_error(err: Exception) -> str:
    """Return the form error for a failed latest read of datastreams."""
    if isinstance(err, AuthError):
        return "invalid_auth"
    if isinstance(err, RequestRejected) and err.status == 403:
        return "datastream_forbidden"
    if isinstance(err, RequestRejected) and err.status == 404:
        return "unknown_datastream"
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
            datastream_id = (
                int(user_input[CONF_ID]) if adding else int(current.data[CONF_ID])  # type: ignore[union-attr]
            )
            taken = {
                int(subentry.data[CONF_ID])
                for subentry in entry.subentries.values()
                if subentry is not current
            }
            if datastream_id in taken:
                return self.async_abort(reason="already_configured")
            data, error = describe(datastream_id, user_input)
            if error is None:
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
        suggested = user_input or (dict(current.data) if current else {})
        return self.async_show_form(
            step_id="user" if adding else "reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )
