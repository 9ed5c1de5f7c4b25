"""Copper Labs' request plan in Home Assistant, measured from the simulator's log.

A week of the default home, twenty restarts in an hour, a 200-meter enterprise's
backfill: each within 100 requests an hour and 1,000 a day (our share: 60 %), with
no 429, on a frozen clock moved by hand.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import json

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.cloud_energy_meters.accounts import _ACCOUNTS
from custom_components.cloud_energy_meters.const import (
    CONF_BUDGET_SHARE,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.providers.copper import (
    CCF_M3,
    GALLON_M3,
    CopperProvider,
)
from custom_components.cloud_energy_meters.statistics import series_for
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from tests.conftest import SetupEntry
from tests.helpers import settle, stored
from tests.simulator import Simulator
from tests.simulator.copper import (
    CABIN_PREMISE_ID,
    DEMO_EMAIL,
    ENTERPRISE_ID,
    HOME_PREMISE_ID,
)
from tests.simulator.requestlog import RequestRecord

from .entries import app_refresh_token, copper_entry

NOW = datetime(2026, 11, 16, 9, 7, tzinfo=UTC)
HOUR = 3600.0
DAY = 86400.0
SHARE = 0.6
FACTORS = {"electric": Decimal(1), "gas": CCF_M3, "water": GALLON_M3}


def api_requests(simulator: Simulator) -> list[RequestRecord]:
    """Return the requests the API counts (Auth0's are not counted)."""
    return [
        r for r in simulator.log_for("copper") if not r.path.startswith("/copper-auth")
    ]


def most_in_window(records: Sequence[RequestRecord], period: float) -> int:
    """Return the most requests any rolling window of `period` seconds held."""
    times = sorted(r.wall.timestamp() for r in records)
    most = first = 0
    for last, moment in enumerate(times):
        while times[first] <= moment - period:
            first += 1
        most = max(most, last - first + 1)
    return most


async def advance(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    span: timedelta,
    step: timedelta = timedelta(minutes=5),
) -> None:
    """Move the clock by `span` in steps, letting timers fire and work finish."""
    end = datetime.now(UTC) + span
    while datetime.now(UTC) < end:
        freezer.tick(step)
        async_fire_time_changed(hass)
        await settle(hass)


def assert_within_budgets(records: Sequence[RequestRecord]) -> None:
    """Our share of both budgets, and no 429."""
    assert [r for r in records if r.status == 429] == []
    assert most_in_window(records, HOUR) <= 100 * SHARE
    assert most_in_window(records, DAY) <= 1000 * SHARE


@pytest.mark.usefixtures("recorder_mock")
async def test_a_week_of_the_default_home(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Seven days of two premises and five meters: within budget, history current."""
    freezer.move_to(NOW)
    token = await app_refresh_token(async_get_clientsession(hass), simulator)
    entry = copper_entry(simulator, refresh_token=token, options={})
    assert await setup_entry(entry)
    coordinator = entry.runtime_data
    assert coordinator.update_interval == timedelta(minutes=15)
    assert coordinator.pacing.plan is not None
    assert coordinator.pacing.plan.history == timedelta(hours=1)
    simulator.clear_log()

    await advance(hass, freezer, timedelta(days=7), timedelta(minutes=15))

    records = api_requests(simulator)
    assert_within_budgets(records)
    per_day = len(records) / 7
    # Two instant reads every 15 minutes, five meters' history every hour, the
    # state twice a day: 192 + 120 + 2.
    assert per_day == pytest.approx(314, abs=3)
    # History kept up: every meter's statistic reaches the last complete hour.
    last_hour = datetime.now(UTC).replace(minute=0, second=0) - timedelta(hours=1)
    for statistic_id in coordinator.imported.ids:
        rows = await stored(hass, statistic_id)
        assert max(rows) >= last_hour - timedelta(hours=1), statistic_id


@pytest.mark.usefixtures("recorder_mock")
async def test_twenty_restarts_in_an_hour(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Restarts cost one instant read a premise; the hour's count survives them.

    A restart is an unload and a setup with the account's shared state dropped, as
    a new process has it: only the entry's storage remembers.
    """
    freezer.move_to(NOW)
    token = await app_refresh_token(async_get_clientsession(hass), simulator)
    entry = copper_entry(simulator, refresh_token=token, options={})
    assert await setup_entry(entry)
    first = len(api_requests(simulator))
    assert first == 1 + 2 + 5  # the listing, two instant reads, five histories

    for _ in range(20):
        freezer.tick(timedelta(minutes=2))
        assert await hass.config_entries.async_unload(entry.entry_id)
        hass.data.pop(_ACCOUNTS, None)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await settle(hass)
        assert entry.state is ConfigEntryState.LOADED

    records = api_requests(simulator)
    # No listing (the inventory is kept), no history (imported minutes ago): two
    # instant reads a restart, and the rotated refresh token always worked.
    assert len(records) == first + 20 * 2
    assert_within_budgets(records)

    # The hour's 48 requests are remembered: at a share of 30 % the next restart
    # reads nothing more this hour.
    hass.config_entries.async_update_entry(entry, options={CONF_BUDGET_SHARE: 30})
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.data.pop(_ACCOUNTS, None)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert len(api_requests(simulator)) == len(records)
    assert not entry.runtime_data.last_update_success


def enterprise_sites(simulator: Simulator, meters: int) -> list[str]:
    """Return the first premises of the enterprise holding `meters` meters or more."""
    chosen: list[str] = []
    count = 0
    for premise in simulator.copper.premises_of_enterprise(ENTERPRISE_ID):
        if count >= meters:
            break
        chosen.append(premise.id)
        count += len(premise.meters)
    return chosen


@pytest.mark.usefixtures("recorder_mock")
async def test_an_enterprise_of_200_meters_backfills_within_budget(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thirty days of every meter, paced by the plan: how long it takes, in hours."""
    # A turn that must wait gives up at once (the clock here moves only by hand).
    monkeypatch.setattr(
        CopperProvider, "policy", replace(CopperProvider.policy, max_wait=0.0)
    )
    freezer.move_to(NOW)
    sites = enterprise_sites(simulator, 200)
    entry = copper_entry(simulator, sites=sites, options={})
    assert await setup_entry(entry)
    coordinator = entry.runtime_data
    plan = coordinator.pacing.plan
    assert plan is not None and plan.feasible
    inventory = coordinator.inventory
    assert inventory is not None
    hours_of = [
        (series_for("copper", site, channel).key, channel.ref[2])
        for channel in inventory.channels
        if channel.history
        and channel.statistic
        and (site := inventory.site(channel.site_id))
    ]
    statistic_ids = [statistic_id for statistic_id, _ in hours_of]
    meter_ids = [meter_id for _, meter_id in hours_of]
    series = len(statistic_ids)
    assert series >= 200
    start = datetime.now(UTC)

    hours = 0
    while missing := set(statistic_ids) - set(coordinator.imports):
        await advance(hass, freezer, timedelta(hours=1), timedelta(minutes=15))
        hours += 1
        assert hours <= 12, f"{len(missing)} of {series} not imported after 12 hours"
    # What was stored is the truth, 30 days back (a meter that went silent long ago
    # has nothing to store).
    end = start.replace(minute=0, second=0)
    first = end - timedelta(days=30)
    by_id = dict(zip(statistic_ids, meter_ids, strict=True))
    for statistic_id in statistic_ids[:: max(1, series // 12)]:
        meter = simulator.copper.meter(by_id[statistic_id])
        rows = await stored(hass, statistic_id)
        if meter.silent_from is not None:
            assert rows == {}
            continue
        # Thirty days back from when the meter's turn came.
        oldest = min(rows)
        assert first <= oldest <= first + timedelta(hours=hours)
        factor = FACTORS[meter.kind]
        for moment in (oldest, first + timedelta(days=15), end - timedelta(hours=1)):
            used = simulator.copper.truth_usage(
                meter.id, moment, moment + timedelta(hours=1)
            )
            assert rows[moment][0] == float(Decimal(str(used)) * factor)
    records = api_requests(simulator)
    assert_within_budgets(records)
    # The plan's estimate (4 hours for 200 meters), give or take the hourly rounds.
    assert hours <= 6, hours
    ir_issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"budget_too_small_{entry.entry_id}"
    )
    assert ir_issue is None


@pytest.mark.usefixtures("recorder_mock")
async def test_the_phone_app_spends_too_a_429_halves_our_share(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One 429, then no other: we pause and keep to 30 % for the rest of the day.

    Also through a restart.
    """
    freezer.move_to(NOW)
    token = await app_refresh_token(async_get_clientsession(hass), simulator)
    entry = copper_entry(simulator, refresh_token=token, options={})
    assert await setup_entry(entry)
    limiter = entry.runtime_data.provider.state.limiter
    simulator.copper.spend(DEMO_EMAIL, 100 - len(api_requests(simulator)))

    await advance(hass, freezer, timedelta(minutes=15), timedelta(minutes=15))
    assert [r.status for r in api_requests(simulator)][-1] == 429
    assert limiter.share_now() == pytest.approx(0.3)
    assert not entry.runtime_data.last_update_success
    simulator.clear_log()

    await advance(hass, freezer, timedelta(hours=12), timedelta(minutes=15))
    records = api_requests(simulator)
    assert [r for r in records if r.status == 429] == []
    assert most_in_window(records, HOUR) <= 30
    assert entry.runtime_data.last_update_success
    # A restart remembers it: the new limiter keeps to 30 % too.
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.data.pop(_ACCOUNTS, None)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.runtime_data.provider.state.limiter is not limiter
    limiter = entry.runtime_data.provider.state.limiter
    assert limiter.share_now() == pytest.approx(0.3)
    # A day after the 429 the whole share is ours again.
    await advance(hass, freezer, timedelta(hours=12), timedelta(hours=1))
    assert limiter.share_now() == pytest.approx(0.6)


@pytest.mark.usefixtures("recorder_mock")
async def test_an_account_too_large_for_its_share_is_a_repair_issue(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """229 meters within 10 % of the budget: said, with what to do; gone at 60 %."""
    monkeypatch.setattr(
        CopperProvider, "policy", replace(CopperProvider.policy, max_wait=0.0)
    )
    freezer.move_to(NOW)
    every = [p.id for p in simulator.copper.premises_of_enterprise(ENTERPRISE_ID)]
    entry = copper_entry(simulator, sites=every, options={CONF_BUDGET_SHARE: 10})
    assert await setup_entry(entry)
    issue_id = f"budget_too_small_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "budget_too_small"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["share"] == "10%"
    assert issue.translation_placeholders["series"] == "229"
    assert_within_budgets(api_requests(simulator))

    hass.config_entries.async_update_entry(entry, options={CONF_BUDGET_SHARE: 60})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await settle(hass)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert await hass.config_entries.async_remove(entry.entry_id)


@pytest.mark.usefixtures("recorder_mock")
async def test_diagnostics_show_the_plan_and_no_token(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """The plan, our share and what each window holds; the refresh token redacted."""
    token = await app_refresh_token(async_get_clientsession(hass), simulator)
    entry = copper_entry(simulator, refresh_token=token, options={})
    assert await setup_entry(entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    requests = diagnostics["requests"]
    assert requests["share"] == SHARE
    assert requests["refresh"] == "0:15:00"
    assert requests["history_cadence"] == "1:00:00"
    assert requests["feasible"] is True
    sent = len(api_requests(simulator))
    assert [w["sent"] for w in requests["in_windows"]] == [sent, sent]
    text = json.dumps(diagnostics)
    assert entry.data["refresh_token"] not in text
    assert token not in text


@pytest.mark.usefixtures("recorder_mock")
async def test_the_share_is_an_option(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Options offer the share (60 % at first); a new one paces the account."""
    token = await app_refresh_token(async_get_clientsession(hass), simulator)
    entry = copper_entry(simulator, refresh_token=token, options={})
    assert await setup_entry(entry)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"]
    assert schema is not None
    defaults = {str(key): key.description["suggested_value"] for key in schema.schema}
    assert defaults[CONF_BUDGET_SHARE] == 60
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"update_interval": 15, "backfill_days": 30, CONF_BUDGET_SHARE: 25},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    assert entry.options[CONF_BUDGET_SHARE] == 25
    assert entry.runtime_data.provider.state.limiter.share == 0.25


@pytest.mark.usefixtures("recorder_mock")
async def test_a_restart_keeps_the_values_and_drops_premises_left_out(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Registers and last hours are back at once; a premise no longer chosen goes.

    Neither needs a request: the meters' newest usage rows are kept with the
    request times, and the saved inventory says which devices are the premise's.
    """
    token = await app_refresh_token(async_get_clientsession(hass), simulator)
    entry = copper_entry(simulator, refresh_token=token, options={})
    assert await setup_entry(entry)
    before = dict(entry.runtime_data.data)
    usage = sorted(k for k in before if k.endswith((":register", ":hour")))
    assert len(usage) == 10  # five meters

    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_SITES: [HOME_PREMISE_ID]}
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.data.pop(_ACCOUNTS, None)
    simulator.clear_log()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    after = entry.runtime_data.data
    home = [k for k in usage if k.startswith(HOME_PREMISE_ID)]
    assert {k: after[k] for k in home} == {k: before[k] for k in home}
    # One instant read (the Home premise); no history, no listing.
    assert [r.path for r in api_requests(simulator)] == [
        f"/app/instant/{HOME_PREMISE_ID}"
    ]
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, CABIN_PREMISE_ID), entry.entry_id
        )
        is None
    )
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, HOME_PREMISE_ID), entry.entry_id
        )
        is not None
    )
