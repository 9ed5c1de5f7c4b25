"""Every field of every form the flows show is described: where the user finds it.

The forms are the ones Home Assistant is handed (each schema as shown, sections
included), not the strings alone: a field added to a schema without a text under it
fails here. Every form step the strings declare must be met, so a new step is too.
"""

from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

import probatio
import pytest

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigFlow,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowHandler, section
from tests.conftest import (
    SetupEntry,
    climkit_entry_for,
    energydata_entry_for,
    locus_entry_for,
)
from tests.copper.entries import copper_entry
from tests.flexmeasures.sim_entries import flexmeasures_sim_entry
from tests.flexmeasures.test_forward import POWER, measurement, power
from tests.helpers import CLOUDS, climkit_credentials, open_flow
from tests.simulator import Simulator
from tests.simulator.energydata import DEMO_TOKEN
from tests.simulator.flexmeasures_data import HA_POWER

pytestmark = pytest.mark.usefixtures("recorder_mock")

STRINGS = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "custom_components/cloud_energy_meters/strings.json"
    ).read_text(encoding="utf-8")
)

type Shown = list[tuple[str, str, Any]]


def _kind(flow: FlowHandler) -> str:
    """Return where a flow's texts are in strings.json."""
    if isinstance(flow, ConfigSubentryFlow):
        return f"config_subentries.{flow.handler[1]}"
    if isinstance(flow, OptionsFlow):
        return "options"
    assert isinstance(flow, ConfigFlow)
    return "config"


@pytest.fixture
def shown() -> Iterator[Shown]:
    """Record every form any flow shows: (texts' place, step id, schema)."""
    forms: Shown = []
    original = FlowHandler.async_show_form

    def record(self: FlowHandler, **kwargs: Any) -> Any:
        forms.append((_kind(self), kwargs["step_id"], kwargs.get("data_schema")))
        return original(self, **kwargs)

    with patch.object(FlowHandler, "async_show_form", record):
        yield forms


def undescribed(kind: str, step_id: str, schema: Any) -> list[str]:
    """Return the fields of a shown form that have no label or no description."""
    texts: dict[str, Any] = STRINGS
    for part in kind.split("."):
        texts = texts[part]
    step = texts["step"].get(step_id, {})
    missing: list[str] = []
    for key, value in (schema.schema if schema is not None else {}).items():
        name = str(key)
        if isinstance(value, section):
            part = step.get("sections", {}).get(name, {})
            fields = [str(inner) for inner in value.schema.schema]
            where = f"{kind}.step.{step_id}.sections.{name}"
        else:
            part, fields, where = step, [name], f"{kind}.step.{step_id}"
        missing += [
            f"{where}.{field}"
            for field in fields
            if not part.get("data", {}).get(field)
            or not part.get("data_description", {}).get(field)
        ]
    return missing


def form_steps() -> set[tuple[str, str]]:
    """Return every form step strings.json declares (menus left out)."""
    kinds = {"config": STRINGS["config"], "options": STRINGS["options"]}
    kinds |= {
        f"config_subentries.{key}": flow
        for key, flow in STRINGS["config_subentries"].items()
    }
    return {
        (kind, step_id)
        for kind, flow in kinds.items()
        for step_id, step in flow["step"].items()
        if "menu_options" not in step
    }


async def _configure(hass: HomeAssistant, result: Any, data: dict[str, Any]) -> Any:
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)


async def _sub(hass: HomeAssistant, result: Any, data: dict[str, Any]) -> Any:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


async def test_every_field_of_every_form_is_described(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    shown: Shown,
) -> None:
    """Sign-in, sites, datastream, reauth, reconfigure, options and subentry forms."""
    for cloud in CLOUDS:
        result = await open_flow(hass, cloud) if cloud != "copper" else None
        if cloud == "copper":
            for kind in ("copper_app", "copper_enterprise"):
                menu = await hass.config_entries.flow.async_init(
                    "cloud_energy_meters", context={"source": SOURCE_USER}
                )
                menu = await _configure(hass, menu, {"next_step_id": "copper"})
                await _configure(hass, menu, {"next_step_id": kind})
        elif cloud == "climkit":  # three sites: the sites form
            result = await _configure(
                hass, result, climkit_credentials(simulator.url("climkit"))
            )
            assert result["step_id"] == "sites"
    # Energydata.dk's datastreams: what each is, then its unit.
    result = await open_flow(hass, "energydata")
    result = await _configure(
        hass,
        result,
        {
            "api_token": DEMO_TOKEN,
            "datastreams": "65603",
            "advanced": {"api_url": simulator.url("energydata")},
        },
    )
    result = await _configure(hass, result, {"name": "M", "type": "energy_register"})
    assert result["step_id"] == "datastream_unit"

    entries = [
        climkit_entry_for(simulator),
        locus_entry_for(simulator),
        copper_entry(simulator),  # an enterprise: its secret asked again
        copper_entry(simulator, refresh_token="a-refresh-token"),  # the link again
        flexmeasures_sim_entry(simulator, subentries=[measurement(POWER, HA_POWER)]),
    ]
    for entry in entries:
        entry.add_to_hass(hass)
        await entry.start_reauth_flow(hass)
        await entry.start_reconfigure_flow(hass)
        await hass.config_entries.options.async_init(entry.entry_id)

    # Subentries, on loaded entries.
    datastreams = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(datastreams)
    await datastreams.start_reconfigure_flow(hass)
    await hass.config_entries.options.async_init(datastreams.entry_id)
    result = await hass.config_entries.subentries.async_init(
        (datastreams.entry_id, "datastream"), context={"source": SOURCE_USER}
    )
    fields = {"id": "70001", "name": "Heating", "type": "water_register"}
    result = await _sub(hass, result, fields)
    assert result["step_id"] == "unit"
    (subentry,) = datastreams.subentries.values()
    await datastreams.start_subentry_reconfigure_flow(hass, subentry.subentry_id)

    power(hass, 1000)
    sender = entries[-1]
    await hass.config_entries.async_unload(sender.entry_id)
    assert await setup_entry(sender)
    await hass.config_entries.subentries.async_init(
        (sender.entry_id, "measurement"), context={"source": SOURCE_USER}
    )
    (subentry,) = sender.subentries.values()
    await sender.start_subentry_reconfigure_flow(hass, subentry.subentry_id)

    assert {(kind, step_id) for kind, step_id, _ in shown} == form_steps()
    missing = [m for form in shown for m in undescribed(*form)]
    assert missing == []
    for entry in [*entries, datastreams]:
        await hass.config_entries.async_unload(entry.entry_id)


def test_the_check_finds_a_field_without_description() -> None:
    """A field of a schema, or of its section, without a description is found."""
    schema = probatio.Schema(
        {
            probatio.Required("username"): str,
            probatio.Required("nickname"): str,
            probatio.Optional("advanced"): section(
                probatio.Schema(
                    {probatio.Required("api_url"): str, probatio.Required("proxy"): str}
                ),
                {"collapsed": True},
            ),
        }
    )
    assert undescribed("config", "climkit", schema) == [
        "config.step.climkit.nickname",
        "config.step.climkit.sections.advanced.proxy",
    ]
