"""Energydata.dk's own config flow steps: a token and the datastreams to read with it.

The API cannot list a token's datastreams: the sign-in form also asks for their ids,
one read proves the token may read them all, and each is then described on a form of
its own (what it measures, then its unit among that quantity's), each becoming a
datastream subentry of the new entry.
"""

from typing import Any, Final

import probatio

from custom_components.cloud_energy_meters.const import (
    CONF_ACCOUNT_ID,
    CONF_API_URL,
    CONF_DATASTREAMS,
)
from custom_components.cloud_energy_meters.extras.base import SignInFlow
from custom_components.cloud_energy_meters.forms import read_sign_in
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.model import Quantity
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.helpers.selector import TextSelector

from .datastreams import (
    CONF_ID,
    CONF_QUANTITY,
    CONF_TYPE,
    SUBENTRY_TYPE,
    datastream_data,
    datastream_schema,
    datastreams_taken,
    needs_unit,
    unit_schema,
    with_unit,
)

KEY: Final = EnergydataProvider.key
DATASTREAM_STEP: Final = "datastream"
UNIT_STEP: Final = "datastream_unit"
_PENDING: Final = "pending"
_DESCRIBED: Final = "described"
_CURRENT: Final = "current"
"""flow.extra: the datastream whose unit the unit form asks."""


def _datastream_ids(text: str) -> list[int] | None:
    """Read "65603, 65607" into ids; None when it is not such a list."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        return None
    return list(dict.fromkeys(int(part) for part in parts))


def _ids_field() -> dict[Any, Any]:
    return {probatio.Required(CONF_DATASTREAMS): TextSelector()}


async def async_step_sign_in(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Ask for a token and the datastreams to read with it; check both with one read."""
    errors: dict[str, str] = {}
    if user_input is not None:
        data, errors = read_sign_in(EnergydataProvider, user_input)
        ids = _datastream_ids(str(user_input.get(CONF_DATASTREAMS, "")))
        if ids is None:
            errors[CONF_DATASTREAMS] = "invalid_datastreams"
        elif set(ids) & datastreams_taken(flow.hass, data[CONF_API_URL]):
            errors[CONF_DATASTREAMS] = "already_configured"
        if not errors and ids is not None:
            # The entry's own id: its statistics, devices and entities keep it
            # whatever token reads them later.
            data[CONF_ACCOUNT_ID] = EnergydataProvider.new_account_id()
            settings = {
                CONF_ACCOUNT_ID: data[CONF_ACCOUNT_ID],
                CONF_DATASTREAMS: [{CONF_ID: i} for i in ids],
            }
            errors = await flow.async_sign_in(KEY, data, settings)
        if not errors and ids is not None:
            flow.extra[_PENDING] = ids
            flow.extra[_DESCRIBED] = []
            return await async_step_datastream(flow, None)
    return flow.async_show_sign_in(KEY, user_input, errors, _ids_field())


def _placeholders(flow: SignInFlow) -> dict[str, str]:
    pending: list[int] = flow.extra[_PENDING]
    described: list[dict[str, Any]] = flow.extra[_DESCRIBED]
    return {
        "id": str(pending[0]),
        "number": str(len(described) + 1),
        "count": str(len(described) + len(pending)),
    }


async def async_step_datastream(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Describe each datastream named at sign-in, one after the other.

    Each form starts blank: only the id's own name is suggested, nothing of the
    previous datastream's answers.
    """
    pending: list[int] = flow.extra[_PENDING]
    errors: dict[str, str] = {}
    if user_input is not None:
        data, errors = datastream_data(pending[0], user_input)
        if not errors:
            if needs_unit(data):
                flow.extra[_CURRENT] = data
                return await async_step_datastream_unit(flow, None)
            return await _async_next(flow, data)
    return flow.async_show_form(
        step_id=DATASTREAM_STEP,
        data_schema=flow.add_suggested_values_to_schema(
            datastream_schema(with_id=False),
            user_input or {"name": f"Datastream {pending[0]}", CONF_TYPE: ""},
        ),
        description_placeholders=_placeholders(flow),
        errors=errors,
    )


async def async_step_datastream_unit(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Ask the unit of the datastream just described, among its quantity's."""
    current: dict[str, Any] = flow.extra[_CURRENT]
    if user_input is not None:
        return await _async_next(flow, with_unit(current, user_input))
    schema = unit_schema(Quantity(current[CONF_QUANTITY]))
    assert schema is not None
    return flow.async_show_form(
        step_id=UNIT_STEP,
        data_schema=schema,
        description_placeholders=_placeholders(flow) | {"name": current["name"]},
    )


async def _async_next(flow: SignInFlow, data: dict[str, Any]) -> ConfigFlowResult:
    """Keep a described datastream; describe the next, or create the entry."""
    pending: list[int] = flow.extra[_PENDING]
    described: list[dict[str, Any]] = flow.extra[_DESCRIBED]
    described.append(data)
    pending.pop(0)
    if pending:
        return await async_step_datastream(flow, None)
    (site,) = flow.signed_in_sites
    return flow.async_create_account(
        [site.id],
        [
            {
                "subentry_type": SUBENTRY_TYPE,
                "data": data,
                "title": data["name"],
                "unique_id": str(data[CONF_ID]),
            }
            for data in described
        ],
    )
