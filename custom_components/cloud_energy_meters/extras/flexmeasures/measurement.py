"""The "measurement to send" subentry: a Home Assistant sensor and a FlexMeasures one."""

from typing import Any, override

import probatio

from custom_components.cloud_energy_meters.coordinator import CloudEnergyConfigEntry
from custom_components.cloud_energy_meters.extras.base import LoadedEntrySubentryFlow
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    ProviderError,
)
from custom_components.cloud_energy_meters.providers.flexmeasures import (
    FlexMeasuresProvider,
)
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.config_entries import SOURCE_USER, SubentryFlowResult
from homeassistant.const import ATTR_FRIENDLY_NAME
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .forward import CONF_ENTITY_ID, CONF_SENSOR_ID
from .recorded import convertible


def _targets(entry: CloudEnergyConfigEntry) -> list[SelectOptionDict]:
    """Return the entry's FlexMeasures sensors that can take values, by name."""
    inventory = entry.runtime_data.inventory
    if inventory is None:
        return []
    names = {site.id: site.name for site in inventory.sites}
    names |= {device.id: device.name for device in inventory.devices}
    options: dict[str, SelectOptionDict] = {}
    for channel in inventory.channels:
        sensor_id = channel.ref[0] if channel.ref else ""
        if not sensor_id or channel.ref[1] == "plan" or sensor_id in options:
            continue
        where = names.get(channel.device_id or channel.site_id, "")
        options[sensor_id] = SelectOptionDict(
            value=sensor_id, label=f"{where} › {channel.source or channel.name}"
        )
    return sorted(options.values(), key=lambda option: option["label"])


class MeasurementSubentryFlow(LoadedEntrySubentryFlow):
    """Choose a Home Assistant sensor whose intervals go to a FlexMeasures sensor.

    Reconfiguring changes either sensor of a pair; sending resumes where it stopped.
    """

    @override
    async def _async_form(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Pick the two sensors; check FlexMeasures can take the values' unit."""
        entry: CloudEnergyConfigEntry = self._get_entry()
        adding = self.source == SOURCE_USER
        current = None if adding else self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            entity_id = str(user_input[CONF_ENTITY_ID])
            sensor_id = str(user_input[CONF_SENSOR_ID])
            taken = {
                str(subentry.data.get(CONF_SENSOR_ID))
                for subentry in entry.subentries.values()
                if subentry is not current
            }
            state = self.hass.states.get(entity_id)
            provider = entry.runtime_data.provider
            assert isinstance(provider, FlexMeasuresProvider)
            if sensor_id in taken:
                errors[CONF_SENSOR_ID] = "already_configured"
            if state is None:
                errors[CONF_ENTITY_ID] = "entity_not_found"
            if not errors:
                assert state is not None
                try:
                    sensor = await provider.async_sensor(sensor_id)
                except AuthError:
                    errors["base"] = "invalid_auth"
                except ProviderError:
                    errors["base"] = "cannot_connect"
                else:
                    if not convertible(state, sensor.unit):
                        errors["base"] = "unit_mismatch"
                    else:
                        name = state.attributes.get(ATTR_FRIENDLY_NAME) or entity_id
                        title = f"{name} → {sensor.name}"
                        data = {CONF_ENTITY_ID: entity_id, CONF_SENSOR_ID: sensor_id}
                        if current is None:
                            return self.async_create_entry(
                                title=title, data=data, unique_id=sensor_id
                            )
                        return self.async_update_and_abort(
                            entry, current, title=title, data=data, unique_id=sensor_id
                        )
        schema = probatio.Schema(
            {
                probatio.Required(CONF_ENTITY_ID): EntitySelector(
                    EntitySelectorConfig(domain=SENSOR_DOMAIN)
                ),
                probatio.Required(CONF_SENSOR_ID): SelectSelector(
                    SelectSelectorConfig(
                        options=_targets(entry), mode=SelectSelectorMode.DROPDOWN
                    )
                ),
            }
        )
        # The frontend preselects the first option of a required choice left without
        # a value: an empty one leaves the choice to the user.
        shown = {CONF_SENSOR_ID: "", **(current.data if current else {})}
        return self.async_show_form(
            step_id="user" if adding else "reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, {**shown, **(user_input or {})}
            ),
            errors=errors,
        )
