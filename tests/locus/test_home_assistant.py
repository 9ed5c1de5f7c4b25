"""Locus Energy end to end: devices, entities, alerts and events, statistics, limits."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.cloud_energy_meters.const import DOMAIN, EVENT_ALERT
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import LOCUS_SMALL_SITES, SetupEntry, locus_entry_for
from tests.helpers import assert_matches_truth, hour, stored, where
from tests.simulator import Simulator
from tests.simulator.locus import DEMO_USERNAME
from tests.simulator.requestlog import RequestRecord

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
MAPLE, HARBOR = (int(site) for site in LOCUS_SMALL_SITES)
MAPLE_METER, ARRAY_GROUP, MAPLE_INVERTER, MAPLE_NET, WEATHER = range(5437001, 5437006)
HARBOR_METER, HARBOR_INVERTER, HARBOR_NET = range(5437011, 5437014)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


def kwh_truth(
    simulator: Simulator,
    entity_id: int,
    start: datetime,
    end: datetime,
    kind: str = "component",
) -> dict[datetime, float]:
    """Return the hourly truth in kWh: the exact decimal Wh sum divided by 1000."""
    return {
        moment: float(Decimal(repr(wh)) / 1000)
        for moment, wh in simulator.locus.truth_hourly(
            entity_id, "Wh_sum", start, end, kind=kind
        ).items()
    }


def statistic(site: int, component: int | None = None) -> str:
    """Return the id of a site's or a component's production statistic."""
    if component is None:
        return f"{DOMAIN}:locus_{site}_production"
    return f"{DOMAIN}:locus_{site}_{component}_production"


async def test_devices_follow_the_hierarchy(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A device per site, a child device per monitored component, none conceptual."""
    assert await setup_entry(locus_entry)
    entry_id = locus_entry.entry_id

    def device(identifier: str) -> dr.DeviceEntry | None:
        found = device_registry.async_get_device_by_identifier(
            (DOMAIN, identifier), entry_id
        )
        assert found is None or isinstance(found, dr.DeviceEntry)
        return found

    maple = device(str(MAPLE))
    assert maple
    assert maple.name == "Maple Street Residence"
    meter = device(f"component-{MAPLE_METER}")
    inverter = device(f"component-{MAPLE_INVERTER}")
    assert meter
    assert inverter
    assert meter.via_device_id == maple.id
    # The inverter hangs below a conceptual node: it links to the meter above it.
    assert inverter.via_device_id == meter.id
    assert device(f"component-{ARRAY_GROUP}") is None
    for component in simulator.locus.components_of(MAPLE):
        if component.is_conceptual:
            continue
        found = device(f"component-{component.id}")
        assert found
        assert found.name == f"Maple Street Residence {component.name}"
        assert str(component.id) in next(iter(found.identifiers))[1]
    devices = dr.async_entries_for_config_entry(device_registry, entry_id)
    monitored = [
        c
        for site in (MAPLE, HARBOR)
        for c in simulator.locus.components_of(site)
        if not c.is_conceptual
    ]
    assert len(devices) == 2 + len(monitored)


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "only_platform")
async def test_entities_snapshot(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every entity of the two small sites, from their dataavailable answers."""
    freezer.move_to(NOW)
    freezer.tick(0)
    assert await setup_entry(locus_entry)
    await snapshot_platform(hass, entity_registry, snapshot, locus_entry.entry_id)


@pytest.mark.parametrize("only_platform", [Platform.BINARY_SENSOR], indirect=True)
@pytest.mark.usefixtures("only_platform")
async def test_problem_sensors_snapshot(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A problem sensor per monitored component, off while no alert is open."""
    freezer.move_to(NOW)
    freezer.tick(0)
    assert await setup_entry(locus_entry)
    await snapshot_platform(hass, entity_registry, snapshot, locus_entry.entry_id)


async def test_common_fields_enabled_rare_ones_disabled(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Power and energy are on; A, Hz, PF, voltages, VA, VAR, modelled ones are off."""
    assert await setup_entry(locus_entry)
    entries = er.async_entries_for_config_entry(entity_registry, locus_entry.entry_id)
    by_key = {entry.translation_key: [] for entry in entries}
    for entry in entries:
        by_key[entry.translation_key].append(entry)
    for key in ("power", "energy", "irradiance", "ambient_temperature", "site_power"):
        assert all(e.disabled_by is None for e in by_key[key]), key
    for key in (
        "current",
        "frequency",
        "power_factor",
        "voltage_phase",
        "voltage_line",
        "apparent_power",
        "reactive_power",
        "modeled_power",
        "modeled_energy",
        "phase_power_a",
    ):
        assert by_key[key], key
        assert all(
            e.disabled_by is er.RegistryEntryDisabler.INTEGRATION for e in by_key[key]
        ), key
    # Enabled entities all have values.
    for entry in entries:
        if entry.disabled_by is None and entry.domain == "sensor":
            state = hass.states.get(entry.entity_id)
            assert state
            assert state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN), (
                entry.entity_id
            )


async def test_values_equal_the_cloud(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Latest power and energy (Wh shown in kWh) are what Locus answers now."""
    assert await setup_entry(locus_entry)

    def state(unique_id: str) -> str:
        entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, unique_id)
        assert entity_id, unique_id
        found = hass.states.get(entity_id)
        assert found
        return found.state

    key = f"locus:{MAPLE}:component:{MAPLE_INVERTER}"
    truth = simulator.locus.truth_latest(MAPLE_INVERTER, "W_avg")
    assert truth is not None
    assert float(state(f"{key}:W_avg")) == truth[1]
    truth = simulator.locus.truth_latest(MAPLE_INVERTER, "Wh_sum")
    assert truth is not None
    assert float(state(f"{key}:Wh_sum")) == float(Decimal(repr(truth[1])) / 1000)
    assert state(f"locus:{MAPLE}:fact:size") != STATE_UNKNOWN


async def test_statistics_equal_the_truth(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Production per site and per generation component, hour by hour, in kWh."""
    assert await setup_entry(locus_entry)
    start, end = NOW - timedelta(days=3), datetime.now(UTC)
    for site, components in (
        (MAPLE, (MAPLE_METER, MAPLE_INVERTER)),
        (HARBOR, (HARBOR_METER, HARBOR_INVERTER)),
    ):
        assert_matches_truth(
            await stored(hass, statistic(site)),
            kwh_truth(simulator, site, start, end, kind="site"),
            statistic(site),
        )
        for component in components:
            assert_matches_truth(
                await stored(hass, statistic(site, component)),
                kwh_truth(simulator, component, start, end),
                statistic(site, component),
            )
    # No statistic for the net meter, the weather station or the conceptual node.
    for component in (MAPLE_NET, WEATHER, ARRAY_GROUP, HARBOR_NET):
        assert not await stored(hass, statistic(MAPLE, component))
        assert not await stored(hass, statistic(HARBOR, component))


async def test_statistic_names(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A site's statistic names the site only; a component's names the component."""
    from homeassistant.components.recorder.statistics import (  # noqa: PLC0415
        async_list_statistic_ids,
    )

    assert await setup_entry(locus_entry)
    await async_wait_recording_done(hass)
    names = {
        row["statistic_id"]: row["name"]
        for row in await async_list_statistic_ids(hass)
        if row["source"] == DOMAIN
    }
    site_name = names[await where(hass, statistic(MAPLE))]
    assert "Maple Street Residence" in site_name
    assert "Meter" not in site_name
    assert "Inverter" not in site_name
    inverter = simulator.locus.component(MAPLE_INVERTER)
    assert inverter.name in names[await where(hass, statistic(MAPLE, MAPLE_INVERTER))]


@pytest.mark.parametrize(
    ("now", "change_day", "hours"),
    [
        (datetime(2026, 3, 9, 9, 0, tzinfo=UTC), date(2026, 3, 8), 23),
        (datetime(2026, 11, 2, 9, 0, tzinfo=UTC), date(2026, 11, 1), 25),
    ],
)
async def test_dst_days_in_new_york(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    now: datetime,
    change_day: date,
    hours: int,
) -> None:
    """Across a DST change in New York every UTC hour is stored once, exactly."""
    await hass.config.async_set_time_zone("America/New_York")
    freezer.move_to(now)
    entry = locus_entry_for(simulator, sites=[str(MAPLE)])
    assert await setup_entry(entry)
    truth = kwh_truth(simulator, MAPLE, now - timedelta(days=3), now, kind="site")
    rows = await stored(hass, statistic(MAPLE))
    assert_matches_truth(rows, truth, statistic(MAPLE))
    zone = ZoneInfo("America/New_York")
    day = [moment for moment in rows if moment.astimezone(zone).date() == change_day]
    # Night hours are stored as 0, so every local hour of the day has a row.
    assert len(day) == hours


async def test_alerts_turn_problems_on_and_off_and_fire_events(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """An alert opening turns the problem on and fires an event; closing, the reverse."""
    events = async_capture_events(hass, EVENT_ALERT)
    assert await setup_entry(locus_entry)
    assert events == []  # the first read only learns what is open
    problem = entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, f"locus:component-{MAPLE_METER}:problem"
    )
    assert problem
    assert hass.states.get(problem).state == STATE_OFF

    alert_id = simulator.locus.open_alert(
        MAPLE_METER, "Device Fault", "High", short="VDC high", long="Long text"
    )
    coordinator = locus_entry.runtime_data
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    state = hass.states.get(problem)
    assert state.state == STATE_ON
    assert state.attributes["alert_type"] == "Device Fault"
    assert state.attributes["priority"] == "High"
    assert state.attributes["description"] == "VDC high"
    assert state.attributes["details"] == "Long text"
    assert len(events) == 1
    opened = events[0].data
    assert opened["state"] == "opened"
    assert opened["opened"] is True
    assert opened["alert_id"] == str(alert_id)
    assert opened["component_id"] == str(MAPLE_METER)
    assert opened["component_name"] == "PV Meter"
    assert opened["site_id"] == str(MAPLE)
    assert opened["site_name"] == "Maple Street Residence"
    assert opened["alert_type"] == "Device Fault"
    assert opened["priority"] == "High"

    # The same alert read again (updatedSince overlaps) is not announced twice.
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert len(events) == 1

    simulator.locus.close_alert(alert_id)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(problem).state == STATE_OFF
    assert [event.data["state"] for event in events] == ["opened", "closed"]
    alert_reads = [
        record.query
        for record in simulator.log_for("locus")
        if record.path.endswith("/alerts")
    ]
    assert "updatedSince" not in alert_reads[0]
    assert all("updatedSince" in query for query in alert_reads[2:])


async def test_no_two_requests_at_once_with_several_entries(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
) -> None:
    """Entries of one account share its one-request-at-a-time limit: never a 429."""
    simulator.locus.processing_delay = 0.01
    first = locus_entry_for(simulator, sites=[str(MAPLE)], unique_id="locus_a")
    second = locus_entry_for(simulator, sites=[str(HARBOR)], unique_id="locus_b")
    first.add_to_hass(hass)
    second.add_to_hass(hass)
    await hass.config_entries.async_setup(first.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert first.state is ConfigEntryState.LOADED
    assert second.state is ConfigEntryState.LOADED
    await first.runtime_data.async_refresh()
    log = simulator.log_for("locus")
    assert len(log) > 20
    assert all(record.status == 200 for record in log), [
        (r.path, r.status) for r in log if r.status != 200
    ]
    # Arrivals are ordered and none arrived before the previous one was answered:
    # the simulator would have answered 429 otherwise.
    assert all(b.at >= a.at for a, b in pairwise(log))


async def test_client_credentials_account(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
) -> None:
    """An API client with only the client-credentials grant works the same."""
    from tests.simulator.locus import CC_CLIENT_ID, CC_CLIENT_SECRET  # noqa: PLC0415

    entry = locus_entry_for(
        simulator,
        client_id=CC_CLIENT_ID,
        client_secret=CC_CLIENT_SECRET,
        username="",
        password="",
        sites=[str(HARBOR)],
    )
    assert await setup_entry(entry)
    grants = [
        record.body["grant_type"]
        for record in simulator.log_for("locus")
        if record.path == "/oauth/token"
    ]
    assert grants
    assert set(grants) == {"client_credentials"}
    assert await stored(hass, statistic(HARBOR))
    assert hour(NOW) is not None


def _grants(simulator: Simulator) -> list[str]:
    return [
        record.body["grant_type"]
        for record in simulator.log_for("locus")
        if record.path == "/oauth/token" and isinstance(record.body, dict)
    ]


async def test_tokens_are_refreshed_silently(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An hour later the refresh token renews the access token; refused, a login.

    Moving the clock an hour also starts the hourly history import, which needs a
    token at the same time as the refresh: one renewal serves both, no request goes
    out with the old token (no 401), and the test waits for the import so that no
    request of one hour is still under way when the clock moves again.
    """
    assert await setup_entry(locus_entry)
    coordinator = locus_entry.runtime_data

    async def an_hour_later() -> list[RequestRecord]:
        simulator.clear_log()
        freezer.tick(timedelta(minutes=61))
        async_fire_time_changed(hass)  # the hourly import starts now
        await coordinator.async_refresh()
        assert coordinator.last_update_success
        await hass.async_block_till_done(wait_background_tasks=True)
        log = simulator.log_for("locus")
        assert any(r.query.get("gran") == "15min" for r in log)  # the import ran
        assert not any(r.status == 401 for r in log)
        return log

    await an_hour_later()
    assert _grants(simulator) == ["refresh_token"]

    simulator.locus.refuse_refresh()
    await an_hour_later()
    assert _grants(simulator) == ["refresh_token", "password"]
    assert not hass.config_entries.flow.async_progress()


async def test_revoked_user_starts_reauth(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """When the SolarOS user is refused, the user is asked to sign in again."""
    assert await setup_entry(locus_entry)
    simulator.locus.revoke_user(DEMO_USERNAME)
    await locus_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_cloud_failure_unavailable_then_back(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A 500 makes the entities unavailable; the next good refresh brings them back."""
    assert await setup_entry(locus_entry)
    coordinator = locus_entry.runtime_data
    simulator.faults.add("http_500", count=1, cloud="locus", path="/data$")
    await coordinator.async_refresh()
    sensors = [
        s.state
        for s in hass.states.async_all("sensor")
        if not s.entity_id.endswith("_history_import")  # the import goes on
    ]
    assert set(sensors) == {STATE_UNAVAILABLE}
    await coordinator.async_refresh()
    assert STATE_UNAVAILABLE not in {s.state for s in hass.states.async_all("sensor")}


async def test_late_data_and_restart(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Hours published late land in their hour; a restart days later resumes exactly."""
    simulator.locus.publish_late(
        NOW - timedelta(hours=20), NOW - timedelta(hours=14), MAPLE_METER
    )
    assert await setup_entry(locus_entry)
    rows = await stored(hass, statistic(MAPLE, MAPLE_METER))
    assert hour(NOW - timedelta(hours=17)) not in rows
    simulator.locus.release_late()
    assert await hass.config_entries.async_unload(locus_entry.entry_id)
    later = NOW + timedelta(days=1, hours=2)  # the late hours are in the 48-h window
    freezer.move_to(later)
    assert await hass.config_entries.async_setup(locus_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    start, end = NOW - timedelta(days=3), datetime.now(UTC)
    for site, component in ((MAPLE, MAPLE_METER), (MAPLE, MAPLE_INVERTER)):
        assert_matches_truth(
            await stored(hass, statistic(site, component)),
            kwh_truth(simulator, component, start, end),
            statistic(site, component),
        )
    assert_matches_truth(
        await stored(hass, statistic(MAPLE)),
        kwh_truth(simulator, MAPLE, start, end, kind="site"),
        statistic(MAPLE),
    )


async def test_refresh_cost_is_what_a_refresh_sends(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """C + 2 S requests: one per component with enabled fields, two per site."""
    assert await setup_entry(locus_entry)
    coordinator = locus_entry.runtime_data
    simulator.clear_log()
    await coordinator.async_refresh()
    sent = len(simulator.log_for("locus"))
    assert sent == 7 + 2 * 2
    assert (
        coordinator.provider.refresh_cost(
            coordinator._wanted_channels(), coordinator._site_ids_present
        )
        == sent
    )
    assert coordinator.minimum_interval == timedelta(minutes=1)
