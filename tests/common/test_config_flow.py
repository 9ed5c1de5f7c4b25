"""The generic parts of the config flow: site claims, options, subentries, URL rules.

Climkit's account is the vehicle; each cloud's own form is tested in its folder.
"""

from datetime import timedelta

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.config_flow import (
    CloudEnergyMetersConfigFlow,
)
from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from custom_components.cloud_energy_meters.forms import url_error
from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.ratelimit import RatePolicy
from homeassistant.const import CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownStep
from tests.conftest import SITE_IDS, SetupEntry, climkit_entry_for, energydata_entry_for
from tests.helpers import climkit_credentials, open_flow
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_USERNAME, SITE_FERME, SITE_LAC

pytestmark = pytest.mark.usefixtures("recorder_mock")


async def test_only_energydata_accounts_offer_subentries(
    hass: HomeAssistant, simulator: Simulator, climkit_entry: MockConfigEntry
) -> None:
    """Energydata.dk accounts add and edit datastreams; Climkit lists its own sites."""
    energydata_entry = energydata_entry_for(simulator)
    for entry in (climkit_entry, energydata_entry):
        entry.add_to_hass(hass)
    assert energydata_entry.supported_subentry_types == {
        "datastream": {"supports_reconfigure": True}
    }
    assert climkit_entry.supported_subentry_types == {}


async def test_a_site_belongs_to_one_entry(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Sites another entry of the same server reads are not offered again.

    With one site left the flow creates the entry at once; with none it aborts.
    A site that appears later joins the entry that does not hold it elsewhere.
    """
    simulator.climkit.add_user("solo", "pw", site_ids=[SITE_FERME.id, SITE_LAC.id])
    assert await setup_entry(climkit_entry_for(simulator, sites=[SITE_LAC.id]))
    result = await open_flow(hass, "climkit")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], climkit_credentials(simulator.url("climkit"), "solo", "pw")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SITES] == [SITE_FERME.id]
    assert set(result["data"][CONF_KNOWN_SITES]) == {SITE_FERME.id, SITE_LAC.id}
    await hass.async_block_till_done(wait_background_tasks=True)

    simulator.climkit.add_user("late", "pw", site_ids=[SITE_FERME.id, SITE_LAC.id])
    result = await open_flow(hass, "climkit")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], climkit_credentials(simulator.url("climkit"), "late", "pw")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    # Reconfiguring the first entry offers its own site and the free one, not solo's.
    first = next(
        e
        for e in hass.config_entries.async_entries(DOMAIN)
        if e.data[CONF_USERNAME] == DEMO_USERNAME
    )
    result = await first.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: simulator.url("climkit")}
    )
    sites_key = next(key for key in result["data_schema"].schema if key == CONF_SITES)
    offered = [
        o["value"] for o in result["data_schema"].schema[sites_key].config["options"]
    ]
    assert SITE_FERME.id not in offered
    assert set(offered) == {site_id for site_id in SITE_IDS if site_id != SITE_FERME.id}
    assert sites_key.default() == [SITE_LAC.id]


async def test_options(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Options refuse an interval faster than the rate budget and reload on change."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    # A cloud allowing one request every 3 s: the demo account's refresh (42 requests)
    # may then poll every ⌈2 × 41 × 3.05 s⌉ = 5 minutes at most.
    monkeypatch.setattr(ClimkitProvider, "policy", RatePolicy(min_interval=3))
    coordinator._discovered_at = None
    await coordinator.async_refresh()
    result = await hass.config_entries.options.async_init(climkit_entry.entry_id)
    assert result["step_id"] == "init"
    assert result["description_placeholders"] == {"minimum": "5"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_UPDATE_INTERVAL: 2, CONF_BACKFILL_DAYS: 10}
    )
    assert result["errors"] == {CONF_UPDATE_INTERVAL: "interval_too_short"}
    # The entry reloads with ten days to backfill: at one request every 3 s that
    # would take minutes of real time and prove nothing more, so the tests' unpaced
    # cloud is back (the reload takes the class's policy for its new account state).
    monkeypatch.setattr(ClimkitProvider, "policy", RatePolicy(min_interval=0))
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_UPDATE_INTERVAL: 20, CONF_BACKFILL_DAYS: 10}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert climkit_entry.options == {CONF_UPDATE_INTERVAL: 20, CONF_BACKFILL_DAYS: 10}
    await hass.async_block_till_done(wait_background_tasks=True)
    assert climkit_entry.runtime_data is not coordinator, "the entry reloaded"
    assert climkit_entry.runtime_data.update_interval == timedelta(minutes=20)


async def test_options_of_an_entry_not_loaded(
    hass: HomeAssistant, climkit_entry: MockConfigEntry
) -> None:
    """Options can be edited while the entry is not loaded (no budget known yet)."""
    climkit_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(climkit_entry.entry_id)
    assert result["description_placeholders"] == {"minimum": "1"}


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://api.climkit.io/api/v1", None),
        ("http://127.0.0.1:8765/climkit/api/v1", None),
        ("http://[::1]:8765/x", None),
        ("http://localhost:8765/x", None),
        ("http://192.168.1.10/x", "insecure_url"),
        ("http://api.climkit.io/api/v1", "insecure_url"),
        ("api.climkit.io", "invalid_url"),
        ("https://", "invalid_url"),
        ("http://[bad", "invalid_url"),
    ],
)
def test_url_rules(url: str, error: str | None) -> None:
    """HTTPS only, except loopback hosts (the simulator, a local server)."""
    assert url_error(url) == error


async def test_only_clouds_and_their_steps_are_steps(hass: HomeAssistant) -> None:
    """A step no cloud declares is refused; other missing attributes stay missing."""
    with pytest.raises(UnknownStep):
        await hass.config_entries.flow.async_init(DOMAIN, context={"source": "nope"})
    flow = CloudEnergyMetersConfigFlow()
    assert callable(flow.async_step_climkit)
    assert not hasattr(flow, "async_step_nope")
    assert not hasattr(flow, "no_such_attribute")
