"""Setting up, unloading and removing entries; devices and entities that come and go."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
import math
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.cloud_energy_meters import async_remove_config_entry_device
from custom_components.cloud_energy_meters.const import (
    BUDGET_SHARE,
    CONF_KNOWN_SITES,
    CONF_SITES,
    DOMAIN,
    STATISTICS_INTERVAL,
)
from custom_components.cloud_energy_meters.coordinator import CloudEnergyCoordinator
from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.ratelimit import (
    SPACING_MARGIN,
    RatePolicy,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from tests.conftest import SetupEntry, climkit_entry_for
from tests.helpers import expected_series, settle, stored
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_FERME, SITE_LAC, SITES

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


async def test_setup_and_unload(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """An entry sets up against the simulator and unloads cleanly.

    Its coordinator is its runtime data, and the cloud is read with Home
    Assistant's shared web session.
    """
    assert await setup_entry(climkit_entry)
    assert climkit_entry.state is ConfigEntryState.LOADED
    coordinator = climkit_entry.runtime_data
    assert isinstance(coordinator, CloudEnergyCoordinator)
    assert coordinator.provider.session is async_get_clientsession(hass)
    states = hass.states.async_all("sensor")
    assert states
    assert all(state.state != STATE_UNAVAILABLE for state in states)
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    assert climkit_entry.state is ConfigEntryState.NOT_LOADED
    assert all(
        state.state == STATE_UNAVAILABLE for state in hass.states.async_all("sensor")
    )


async def test_removing_the_entry_clears_its_statistics(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Removal deletes every statistic the entry imported, and only those."""
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    assert await setup_entry(climkit_entry)
    ids = [sid for site in SITES for sid in expected_series(simulator, site)]
    assert all([await stored(hass, sid) for sid in ids])
    assert await hass.config_entries.async_remove(climkit_entry.entry_id)
    await hass.async_block_till_done()
    assert not any([await stored(hass, sid) for sid in ids])


async def test_removal_clears_sites_dropped_before(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A site dropped by reconfigure keeps its history until the entry is removed.

    Then every statistic the entry ever wrote goes, not only its current sites'.
    """
    assert await setup_entry(climkit_entry)
    dropped = list(expected_series(simulator, SITE_FERME))
    kept = [
        sid
        for site in (SITE_LAC, SITE_CENTRALE)
        for sid in expected_series(simulator, site)
    ]
    hass.config_entries.async_update_entry(
        climkit_entry,
        data={**climkit_entry.data, CONF_SITES: [SITE_LAC.id, SITE_CENTRALE.id]},
    )
    assert await hass.config_entries.async_reload(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert all([await stored(hass, sid) for sid in dropped + kept])
    assert await hass.config_entries.async_remove(climkit_entry.entry_id)
    await hass.async_block_till_done()
    assert not any([await stored(hass, sid) for sid in dropped + kept])


async def test_unselected_sites_lose_their_device(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """After the user drops a site, its device and entities go at the next start."""
    assert await setup_entry(climkit_entry)
    hass.config_entries.async_update_entry(
        climkit_entry, data={**climkit_entry.data, CONF_SITES: [SITE_LAC.id]}
    )
    assert await hass.config_entries.async_reload(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    devices = dr.async_entries_for_config_entry(device_registry, climkit_entry.entry_id)
    # The site's device and its meters' (linked to it) stay; the others go.
    assert [d.name for d in devices if d.via_device_id is None] == [SITE_LAC.name]
    assert all(str(device.name).startswith(SITE_LAC.name) for device in devices)
    entities = er.async_entries_for_config_entry(
        entity_registry, climkit_entry.entry_id
    )
    assert all(SITE_LAC.id in entity.unique_id for entity in entities)


async def test_new_and_vanished_meters_follow_the_cloud(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A vanished meter fails nothing; it goes after two discoveries; new ones come."""
    assert await setup_entry(climkit_entry)
    cloud = simulator.climkit
    gone = SITE_CENTRALE.meters[2]
    newcomer = replace(
        SITE_FERME.meters[1], id="64f1c2a9e3b5d7f903a2c102", name="PV Est"
    )
    cloud.sites[1] = replace(
        SITE_CENTRALE, meters=tuple(m for m in SITE_CENTRALE.meters if m is not gone)
    )
    cloud.sites[2] = replace(SITE_FERME, meters=(*SITE_FERME.meters, newcomer))
    coordinator = climkit_entry.runtime_data

    def unique_ids() -> set[str]:
        return {
            entity.unique_id
            for entity in er.async_entries_for_config_entry(
                entity_registry, climkit_entry.entry_id
            )
        }

    # The gone meter answers 404: the others are read all the same.
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    other = entity_registry.async_get_entity_id(
        "sensor",
        DOMAIN,
        f"climkit:{SITE_CENTRALE.id}:{SITE_CENTRALE.meters[1].id}:total",
    )
    assert other
    assert hass.states.get(other).state not in (STATE_UNAVAILABLE, "unknown")
    # The next refresh lists the account again: the newcomer appears at once, the
    # gone meter's entities stay through this first miss...
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert any(newcomer.id in unique_id for unique_id in unique_ids())
    assert any(gone.id in unique_id for unique_id in unique_ids())
    # ... and go when the next discovery misses it again.
    coordinator._discovered_at = None  # as if DISCOVERY_INTERVAL had passed
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert not any(gone.id in unique_id for unique_id in unique_ids())
    entity_id = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"climkit:{SITE_FERME.id}:{newcomer.id}:total"
    )
    assert entity_id
    state = hass.states.get(entity_id)
    assert state
    assert state.state != STATE_UNAVAILABLE


async def test_site_gone_from_the_account(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A site the account lost: its device goes, a repair issue explains; it heals."""
    assert await setup_entry(climkit_entry)
    simulator.climkit.add_user(
        "demo", "demo-password", site_ids=[SITE_LAC.id, SITE_CENTRALE.id]
    )
    coordinator = climkit_entry.runtime_data
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, SITE_FERME.id), climkit_entry.entry_id
    )
    assert device
    assert not await async_remove_config_entry_device(hass, climkit_entry, device)
    coordinator._discovered_at = None
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    issue = issue_registry.async_get_issue(
        DOMAIN, f"sites_missing_{climkit_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders == {
        "entry": climkit_entry.title,
        "sites": SITE_FERME.id,
    }
    # One incomplete answer keeps the device (and the user's customisations) ...
    assert device_registry.async_get_device_by_identifier(
        (DOMAIN, SITE_FERME.id), climkit_entry.entry_id
    )
    # ... a second discovery without the site removes it.
    coordinator._discovered_at = None
    await coordinator.async_refresh()
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, SITE_FERME.id), climkit_entry.entry_id
        )
        is None
    )
    assert await async_remove_config_entry_device(hass, climkit_entry, device)

    simulator.climkit.add_user("demo", "demo-password")
    coordinator._discovered_at = None
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert not issue_registry.async_get_issue(
        DOMAIN, f"sites_missing_{climkit_entry.entry_id}"
    )
    assert device_registry.async_get_device_by_identifier(
        (DOMAIN, SITE_FERME.id), climkit_entry.entry_id
    )


async def test_statistics_keep_importing_without_entities(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """History imports on its own hourly schedule, even with every entity disabled."""
    assert await setup_entry(climkit_entry)
    for entity in er.async_entries_for_config_entry(
        entity_registry, climkit_entry.entry_id
    ):
        entity_registry.async_update_entity(
            entity.entity_id, disabled_by=er.RegistryEntryDisabler.USER
        )
    await hass.config_entries.async_reload(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not hass.states.async_all("sensor")
    statistic_id = next(iter(expected_series(simulator, SITE_LAC)))
    last = max(await stored(hass, statistic_id))
    freezer.tick(STATISTICS_INTERVAL + timedelta(minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert max(await stored(hass, statistic_id)) > last


async def test_a_restart_uses_the_saved_inventory(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Setup after a restart proves the credentials only; discovery runs later."""
    assert await setup_entry(climkit_entry)
    states = len(hass.states.async_all("sensor"))
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    simulator.clear_log()
    with patch.object(CloudEnergyCoordinator, "async_start"):
        assert await hass.config_entries.async_setup(climkit_entry.entry_id)
        await hass.async_block_till_done()
    assert [r.path for r in simulator.log_for("climkit")] == ["/auth"]
    assert len(hass.states.async_all("sensor")) == states


async def test_polling_slows_down_to_fit_the_rate_budget(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When a refresh costs more than the interval allows, the interval grows."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    cost = coordinator.provider.refresh_cost(coordinator.channels)
    # An account whose cloud allows one request every 10 s (the limiter keeps its
    # pace for this test; only the budget arithmetic sees the slower cloud).
    monkeypatch.setattr(ClimkitProvider, "policy", RatePolicy(min_interval=10))
    coordinator._discovered_at = None
    await coordinator.async_refresh()
    seconds = (cost - 1) * (10 + SPACING_MARGIN) / BUDGET_SHARE
    assert coordinator.minimum_interval == timedelta(minutes=math.ceil(seconds / 60))
    assert coordinator.update_interval == coordinator.minimum_interval
    assert f"one refresh costs {cost} requests" in caplog.text


async def test_sites_added_to_the_account_later_join(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A site the user never saw in the flow joins; one the user left out stays out."""
    entry = climkit_entry_for(simulator, sites=[SITE_LAC.id])
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        data={**entry.data, CONF_KNOWN_SITES: [SITE_LAC.id, SITE_CENTRALE.id]},
        options=entry.options,
    )
    assert await setup_entry(entry)
    assert entry.data[CONF_SITES] == [SITE_LAC.id, SITE_FERME.id]
    assert set(entry.data[CONF_KNOWN_SITES]) == {site.id for site in SITES}
    names = {
        d.name
        for d in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        if d.via_device_id is None  # a site's; its meters' devices are under it
    }
    assert names == {SITE_LAC.name, SITE_FERME.name}
    assert "new sites" in caplog.text


async def test_a_site_chosen_later_is_listed_at_setup(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The saved inventory is not used when it lacks a chosen site: setup lists it."""
    entry = climkit_entry_for(simulator, sites=[SITE_LAC.id])
    assert await setup_entry(entry)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_SITES: [SITE_LAC.id, SITE_FERME.id]}
    )
    simulator.clear_log()
    with patch.object(CloudEnergyCoordinator, "async_start"):
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
    assert "/meter_info/" + SITE_FERME.id in [
        r.path for r in simulator.log_for("climkit")
    ]
    assert device_registry.async_get_device_by_identifier(
        (DOMAIN, SITE_FERME.id), entry.entry_id
    )


async def test_no_history_import_while_reauth_waits(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A refused password is not tried again every hour while the user is asked."""
    assert await setup_entry(climkit_entry)
    simulator.climkit.revoke("demo")
    await climkit_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    simulator.clear_log()
    await climkit_entry.runtime_data.async_import_statistics()
    assert simulator.log_for("climkit") == []


async def test_devices_of_an_entry_not_loaded_can_be_deleted(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Without a loaded entry nothing is known of the account: the user decides."""
    assert await setup_entry(climkit_entry)
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, SITE_LAC.id), climkit_entry.entry_id
    )
    assert device
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    assert await async_remove_config_entry_device(hass, climkit_entry, device)


async def test_a_reload_keeps_the_values_shown(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Until the cloud is read again, each sensor shows its value from before.

    The cloud hangs on the first read after the reload: the values stay (with when
    they were true), never *unknown*; once it answers, they are the cloud's again.
    """
    assert await setup_entry(climkit_entry)
    shown = {
        state.entity_id: state
        for state in hass.states.async_all("sensor")
        if state.state not in ("unknown", STATE_UNAVAILABLE)
    }
    assert len(shown) > 10
    simulator.faults.add("timeout", 1, cloud="climkit", path="meter_data")
    hass.config_entries.async_schedule_reload(climkit_entry.entry_id)
    await hass.async_block_till_done()
    assert climkit_entry.state is ConfigEntryState.LOADED
    for entity_id, before in shown.items():
        now = hass.states.get(entity_id)
        assert now is not None
        assert now.state == before.state, entity_id
        assert now.attributes.get("measured_at") == before.attributes.get(
            "measured_at"
        ), entity_id
    assert not climkit_entry.runtime_data.values_read
    simulator.faults.release_sleepers()  # that read fails (504): the next one counts
    await settle(hass)
    coordinator = climkit_entry.runtime_data
    await coordinator.async_refresh()
    assert coordinator.values_read
    for entity_id in shown:
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state not in ("unknown", STATE_UNAVAILABLE), entity_id
