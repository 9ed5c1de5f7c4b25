"""Energydata.dk datastreams as config subentries: the form, its checks, its flow.

The API cannot list a token's datastreams, so the user names each one: its id, what it
measures, whether its values are a cumulative register, amounts per interval or
measurements, and its MQTT topic if it is pushed in real time. Each becomes a
subentry (its own device and sensor), added and edited in the UI.
"""

from collections.abc import Mapping
from typing import Any, Final, override

import probatio

from custom_components.cloud_energy_meters.claims import same_server
from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_PROVIDER,
    DOMAIN,
)
from custom_components.cloud_energy_meters.extras.base import LoadedEntrySubentryFlow
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
from custom_components.cloud_energy_meters.providers.model import Quantity, Role, Unit
from homeassistant.config_entries import SOURCE_USER, SubentryFlowResult
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
CONF_ROLE: Final = "role"

# What an energy datastream counts for the Energy dashboard (the offer adds it there):
# the first is shown chosen; "measurement" keeps it off the dashboard.
ROLES: Final = (
    Role.CONSUMPTION,
    Role.GRID_IMPORT,
    Role.GRID_EXPORT,
    Role.PRODUCTION,
    Role.MEASUREMENT,
)

# What a datastream may measure, with the units Home Assistant accepts for it (the
# first is the one the unit form shows first); OTHER takes any unit or none, TEXT none.
QUANTITY_UNITS: Final[dict[Quantity, tuple[str, ...]]] = {
    Quantity.ENERGY: (Unit.KWH, Unit.WH, "MWh"),
    Quantity.POWER: (Unit.W, Unit.KW),
    Quantity.WATER: (Unit.CUBIC_METER, Unit.LITER),
    Quantity.GAS: (Unit.CUBIC_METER, Unit.LITER),
    Quantity.TEMPERATURE: (Unit.CELSIUS,),
    Quantity.HUMIDITY: (Unit.PERCENT,),
    Quantity.TEXT: (),
    Quantity.OTHER: (),
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
    """Return the first form describing a datastream (its id only when adding it).

    What it measures comes first; its unit is asked next, among that quantity's
    (`unit_schema`): one form cannot change its choices while it is filled in.
    """
    fields: dict[Any, Any] = {}
    if with_id:
        # Text, not a number box: an id has no default (a box would show its minimum).
        fields[probatio.Required(CONF_ID)] = TextSelector()
    fields[probatio.Required(CONF_NAME)] = TextSelector()
    # No default: shown with an empty suggested value (the frontend preselects the
    # first option of a required choice that has no value: a guess one may miss).
    fields[probatio.Required(CONF_TYPE)] = SelectSelector(
        SelectSelectorConfig(
            options=list(TYPES),
            translation_key=CONF_TYPE,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )
    fields[probatio.Optional(CONF_TOPIC, default="")] = TextSelector()
    return probatio.Schema(fields)


def unit_schema(
    quantity: Quantity, unit: str = "", role: str = ""
) -> probatio.Schema | None:
    """Return the form asking the unit among the quantity's, `unit` shown if it fits.

    Energy is also asked what it counts for the Energy dashboard (`role` shown if
    set). None when there is nothing to ask: text has no unit, and a temperature or
    a humidity one unit only (the type's name says which).
    """
    allowed = QUANTITY_UNITS[quantity]
    if quantity is Quantity.OTHER:
        return probatio.Schema(
            {probatio.Optional(CONF_UNIT, default=unit): TextSelector()}
        )
    if len(allowed) < 2:
        return None
    # The usual unit shown chosen, in the open: never filled in behind the user's back.
    shown = unit if unit in allowed else allowed[0]
    fields: dict[Any, Any] = {
        probatio.Required(CONF_UNIT, default=shown): SelectSelector(
            SelectSelectorConfig(options=list(allowed), mode=SelectSelectorMode.LIST)
        )
    }
    if quantity is Quantity.ENERGY:
        fields[probatio.Required(CONF_ROLE, default=role or ROLES[0])] = SelectSelector(
            SelectSelectorConfig(
                options=[str(r) for r in ROLES],
                translation_key=CONF_ROLE,
                mode=SelectSelectorMode.LIST,
            )
        )
    return probatio.Schema(fields)


def form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a datastream's data as its first form shows it."""
    values = {key: data[key] for key in (CONF_NAME, CONF_TOPIC) if key in data}
    if (kind := type_of(data)) is not None:
        values[CONF_TYPE] = kind
    return values


def datastream_data(
    datastream_id: int, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return a datastream's data from its first form, or the form's errors.

    The unit is the quantity's only one (none for text), else left for `with_unit`.
    """
    quantity, meaning = TYPES[user_input[CONF_TYPE]]
    topic = str(user_input.get(CONF_TOPIC) or "").strip().strip("/")
    if topic and ("/" not in topic or not valid_topic(topic)):
        return {}, {CONF_TOPIC: "invalid_topic"}
    allowed = QUANTITY_UNITS[quantity]
    return {
        CONF_ID: datastream_id,
        CONF_NAME: str(user_input.get(CONF_NAME) or "").strip()
        or f"Datastream {datastream_id}",
        CONF_QUANTITY: quantity.value,
        CONF_UNIT: allowed[0] if len(allowed) == 1 else "",
        CONF_MEANING: meaning,
        CONF_TOPIC: topic,
    }, {}


def needs_unit(data: Mapping[str, Any]) -> bool:
    """Return whether the unit form follows the first one for this datastream."""
    return unit_schema(Quantity(data[CONF_QUANTITY])) is not None


def with_unit(data: Mapping[str, Any], user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Return the datastream's data with the unit form's unit (and energy's role).

    The form's choice admits the quantity's units only (Home Assistant refuses
    anything else, an empty one too); another number takes any unit, or none.
    """
    answered = {**data, CONF_UNIT: str(user_input.get(CONF_UNIT) or "").strip()}
    if CONF_ROLE in user_input:
        answered[CONF_ROLE] = str(user_input[CONF_ROLE])
    return answered


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


def err_of_id(error: str) -> bool:
    """Return whether a check's error says the datastream id is wrong."""
    return error in REFUSED.values()


def check_error(err: Exception) -> str:
    """Return the form error for a failed latest read of datastreams."""
    if isinstance(err, AuthError):
        return "invalid_auth"
    if isinstance(err, RequestRejected) and err.status in REFUSED:
        return REFUSED[err.status]
    if isinstance(err, ProviderError):
        return "cannot_connect"
    return "unknown"


class DatastreamSubentryFlow(LoadedEntrySubentryFlow):
    """Add or edit one datastream of an Energydata.dk account: what, then its unit."""

    def __init__(self) -> None:
        """Start with nothing described."""
        self._data: dict[str, Any] = {}

    @override
    async def _async_form(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Describe a new datastream (checking the token may read it), or edit one.

        A datastream's id stays when it is edited.
        """
        entry = self._get_entry()
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
            if datastream_id is None:
                errors[CONF_ID] = "invalid_datastream_id"
            elif datastream_id in taken:
                errors[CONF_ID] = "already_configured"
            else:
                data, errors = datastream_data(datastream_id, user_input)
            if not errors:
                assert datastream_id is not None
                provider = entry.runtime_data.provider
                assert isinstance(provider, EnergydataProvider)
                try:
                    await provider.async_check([datastream_id])
                except Exception as err:  # noqa: BLE001 - shown to the user
                    error = check_error(err)
                    # A datastream refused or unknown: its id is wrong (when typed).
                    errors[CONF_ID if adding and err_of_id(error) else "base"] = error
            if not errors:
                self._data = data
                if needs_unit(data):
                    return await self.async_step_unit()
                return self._async_save(data)
        schema = datastream_schema(with_id=adding)
        suggested = user_input or (
            form_values(current.data) if current else {CONF_TYPE: ""}
        )
        return self.async_show_form(
            step_id="user" if adding else "reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_unit(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask the unit among those of what the datastream measures."""
        if user_input is not None:
            return self._async_save(with_unit(self._data, user_input))
        current = (
            None if self.source == SOURCE_USER else self._get_reconfigure_subentry()
        )
        unit = str(current.data.get(CONF_UNIT, "")) if current else ""
        role = str(current.data.get(CONF_ROLE, "")) if current else ""
        schema = unit_schema(Quantity(self._data[CONF_QUANTITY]), unit, role)
        assert schema is not None
        return self.async_show_form(
            step_id="unit",
            data_schema=schema,
            description_placeholders={"name": str(self._data[CONF_NAME])},
        )

    def _async_save(self, data: dict[str, Any]) -> SubentryFlowResult:
        """Add the datastream, or save the edited one."""
        if self.source == SOURCE_USER:
            return self.async_create_entry(
                title=data[CONF_NAME], data=data, unique_id=str(data[CONF_ID])
            )
        return self.async_update_and_abort(
            self._get_entry(),
            self._get_reconfigure_subentry(),
            title=data[CONF_NAME],
            data=data,
        )
