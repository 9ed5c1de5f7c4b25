"""Long-term statistics against the simulator's ground truth, to the last decimal.

Every test compares each hourly value the recorder stored with the sum of the
simulator's 15-minute values of that hour, and checks that sums accumulate exactly.
"""

import asyncio
from datetime import UTC, date, datetime, timedelta
import re
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import (
    CONF_BACKFILL_DAYS,
    STATISTICS_INTERVAL,
)
from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.ratelimit import RatePolicy
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import async_list_statistic_ids
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from tests.conftest import (
    SetupEntry,
    climkit_entry_for,
    energydata_entry_for,
    locus_entry_for,
)
from tests.helpers import (
    DAY,
    assert_matches_truth,
    expected_series,
    hour,
    recorder_queue_held,
    stored,
    where,
)
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_FERME, SITE_LAC, SITES

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


async def _assert_all_sites(
    hass: HomeAssistant, simulator: Simulator, start: datetime, end: datetime
) -> int:
    """Assert every statistic of every site equals the truth over [start, end)."""
    checked = 0
    for site in SITES:
        for statistic_id, truth in expected_series(simulator, site).items():
            assert_matches_truth(
                await stored(hass, statistic_id), truth(start, end), statistic_id
            )
            checked += 1
    return checked


@pytest.mark.freeze_time(NOW)
async def test_first_backfill_matches_truth(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """The first import stores the configured days of every meter and site total."""
    climkit_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        climkit_entry, options={CONF_BACKFILL_DAYS: 30}
    )
    assert await setup_entry(climkit_entry)
    checked = await _assert_all_sites(hass, simulator, NOW - 30 * DAY, NOW)
    assert checked > 20
    # A 30-day backfill is one request per statistic: the document sets no maximum span.
    history = [
        record
        for record in simulator.log_for("climkit")
        if record.body and record.body.get("t_s", "").startswith("2026-10-21")
    ]
    assert len(history) == checked


@pytest.mark.freeze_time(NOW)
async def test_gap_hours_are_absent_and_zeros_present(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Hours the cloud says nothing about have no row; hours it says 0 have 0."""
    climkit_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        climkit_entry, options={CONF_BACKFILL_DAYS: 14}
    )
    assert await setup_entry(climkit_entry)
    gap_meter = next(meter for meter in SITE_LAC.meters if meter.gap)
    truth = simulator.climkit.truth_meter_hourly(
        SITE_LAC.id, gap_meter.id, NOW - 14 * DAY, NOW
    )
    every_hour = {hour(NOW - 14 * DAY) + timedelta(hours=h) for h in range(14 * 24)}
    assert every_hour - set(truth), "the simulator's gap meter must have gaps"
    rows = await stored(
        hass, f"cloud_energy_meters:climkit_{SITE_LAC.id}_{gap_meter.id}_energy"
    )
    assert not (every_hour - set(truth)) & set(rows)
    producer = next(meter for meter in SITE_LAC.meters if meter.mode == "production")
    solar = await stored(
        hass, f"cloud_energy_meters:climkit_{SITE_LAC.id}_{producer.id}_energy"
    )
    assert any(state == 0 for state, _ in solar.values()), "night hours are stored as 0"


async def test_resume_after_restart_nothing_missing_or_doubled(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A restart hours later resumes from the stored sums: no hour lost or counted twice."""
    freezer.move_to(NOW)
    assert await setup_entry(climkit_entry)
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    await hass.async_block_till_done()

    # Home Assistant is off for 3 days and 7 hours: longer than the re-import window.
    later = NOW + timedelta(days=3, hours=7, minutes=20)
    freezer.move_to(later)
    simulator.clear_log()
    assert await hass.config_entries.async_setup(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await _assert_all_sites(hass, simulator, NOW - 3 * DAY, later)

    # The resume asked only for what was missing, not the whole backfill again.
    starts = {
        record.body["t_s"]
        for record in simulator.log_for("climkit")
        if record.body and record.path.startswith("/meter_data/")
    }
    # History from the last stored hour (it may have been incomplete); latest values.
    assert starts == {"2026-11-20T09:00:00", "2026-11-22T17:20:00"}

    # And an hourly import an hour later re-imports the trailing window only.
    freezer.move_to(later + timedelta(hours=1))
    simulator.clear_log()
    async_fire_time_changed(hass, later + STATISTICS_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)
    await _assert_all_sites(hass, simulator, NOW - 3 * DAY, later + timedelta(hours=1))
    starts = {
        record.body["t_s"]
        for record in simulator.log_for("climkit")
        if record.body and record.path.startswith("/meter_data/")
    }
    # The 48-hour window before the current hour, and the latest values.
    assert min(starts) == "2026-11-21T18:00:00"


async def test_late_data_and_corrections_land_in_their_hour(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Data published hours late, and corrected values, are re-imported in the window."""
    freezer.move_to(NOW)
    simulator.climkit.publish_late(NOW - timedelta(hours=20), NOW - timedelta(hours=14))
    assert await setup_entry(climkit_entry)
    meter = next(m for m in SITE_LAC.meters if m.mode == "consumption" and not m.gap)
    statistic_id = f"cloud_energy_meters:climkit_{SITE_LAC.id}_{meter.id}_energy"
    rows = await stored(hass, statistic_id)
    assert hour(NOW - timedelta(hours=18)) not in rows

    simulator.climkit.release_late()
    corrected_at = NOW - timedelta(hours=30, minutes=15)
    simulator.climkit.correct(SITE_LAC.id, meter.id, corrected_at, 9.876)
    freezer.move_to(NOW + timedelta(hours=1, minutes=3))
    async_fire_time_changed(hass, NOW + STATISTICS_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)

    end = NOW + timedelta(hours=1, minutes=3)
    await _assert_all_sites(hass, simulator, NOW - 3 * DAY, end)
    rows = await stored(hass, statistic_id)
    assert hour(NOW - timedelta(hours=18)) in rows
    truth = simulator.climkit.truth_meter_hourly(
        SITE_LAC.id, meter.id, hour(corrected_at), end
    )
    assert rows[hour(corrected_at)][0] == truth[hour(corrected_at)]
    assert rows[hour(corrected_at)][0] > 9.8


async def test_a_site_with_nothing_published_yet(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A site whose data is all late gets no row at all, then everything once it lands."""
    freezer.move_to(NOW)
    simulator.climkit.publish_late(NOW - 4 * DAY, NOW, site_id=SITE_FERME.id)
    assert await setup_entry(climkit_entry)
    series = expected_series(simulator, SITE_FERME)
    assert not any([await stored(hass, statistic_id) for statistic_id in series])
    simulator.climkit.release_late()
    freezer.move_to(NOW + timedelta(minutes=30))
    async_fire_time_changed(hass, NOW + STATISTICS_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)
    await climkit_entry.runtime_data.async_import_statistics()
    for statistic_id, truth in series.items():
        assert_matches_truth(
            await stored(hass, statistic_id),
            truth(NOW - 3 * DAY, NOW + timedelta(minutes=30)),
            statistic_id,
        )


@pytest.mark.parametrize(
    ("now", "change_day", "hours"),
    [
        (datetime(2026, 3, 30, 4, 0, tzinfo=UTC), date(2026, 3, 29), 23),
        (datetime(2026, 10, 26, 4, 0, tzinfo=UTC), date(2026, 10, 25), 25),
    ],
)
async def test_dst_days_in_zurich(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    now: datetime,
    change_day: date,
    hours: int,
) -> None:
    """Across a daylight-saving change every UTC hour is stored once and sums hold."""
    await hass.config.async_set_time_zone("Europe/Zurich")
    freezer.move_to(now)
    assert await setup_entry(climkit_entry)
    await _assert_all_sites(hass, simulator, now - 3 * DAY, now)
    meter = next(m for m in SITE_CENTRALE.meters if m.mode == "consumption")
    rows = await stored(
        hass, f"cloud_energy_meters:climkit_{SITE_CENTRALE.id}_{meter.id}_energy"
    )
    zone = ZoneInfo("Europe/Zurich")
    assert len([h for h in rows if h.astimezone(zone).date() == change_day]) == hours


@pytest.mark.freeze_time(NOW, tick=True)
async def test_restart_in_the_middle_of_a_backfill(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unloading during a backfill and starting again completes it exactly."""
    # Pace requests so the backfill is still running when the entry is unloaded.
    monkeypatch.setattr(ClimkitProvider, "policy", RatePolicy(min_interval=0.05))
    climkit_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(climkit_entry.entry_id)
    pattern = re.compile(r"^/(meter|site)_data/")
    for _ in range(400):
        history = [
            r
            for r in simulator.log_for("climkit")
            if pattern.match(r.path)
            and r.body
            and r.body["t_s"] == "2026-11-17T10:00:00"
        ]
        if len(history) >= 6:
            break
        await asyncio.sleep(0.05)
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    await hass.async_block_till_done()
    series = {
        statistic_id
        for site in SITES
        for statistic_id in expected_series(simulator, site)
    }
    imported = [sid for sid in series if await stored(hass, sid)]
    assert 0 < len(imported) < len(series), "the backfill must have been interrupted"

    assert await hass.config_entries.async_setup(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    # Time ticks from NOW, an hour boundary: no new interval ends during the test.
    await _assert_all_sites(hass, simulator, NOW - 3 * DAY, datetime.now(UTC))


async def test_outage_after_a_mid_hour_import_completes_that_hour(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An hour stored while incomplete is completed after an outage of any length."""
    first = NOW + timedelta(minutes=20)  # 10:00-10:15 is published, the rest is not
    freezer.move_to(first)
    assert await setup_entry(climkit_entry)
    meter = next(m for m in SITE_LAC.meters if m.mode == "consumption" and not m.gap)
    statistic_id = f"cloud_energy_meters:climkit_{SITE_LAC.id}_{meter.id}_energy"
    partial = (await stored(hass, statistic_id))[NOW][0]
    assert (
        partial
        == simulator.climkit.truth_meter_hourly(SITE_LAC.id, meter.id, NOW, first)[NOW]
    )
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)

    later = NOW + timedelta(days=4, minutes=5)  # longer than the 48-hour window
    freezer.move_to(later)
    assert await hass.config_entries.async_setup(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    rows = await stored(hass, statistic_id)
    assert rows[NOW][0] > partial
    await _assert_all_sites(hass, simulator, NOW - 3 * DAY, later)


async def test_an_hour_the_cloud_withdraws_keeps_its_value(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The cloud saying nothing about a stored hour never loses it or breaks the sums."""
    freezer.move_to(NOW)
    assert await setup_entry(climkit_entry)
    meter = next(m for m in SITE_LAC.meters if m.mode == "consumption" and not m.gap)
    statistic_id = f"cloud_energy_meters:climkit_{SITE_LAC.id}_{meter.id}_energy"
    before = await stored(hass, statistic_id)
    withdrawn = NOW - timedelta(hours=5)
    simulator.climkit.publish_late(withdrawn, withdrawn + timedelta(hours=1))
    freezer.move_to(NOW + timedelta(hours=1, minutes=1))
    await climkit_entry.runtime_data.async_import_statistics()
    rows = await stored(hass, statistic_id)
    assert rows[withdrawn] == before[withdrawn]
    hours = sorted(rows)
    for previous, hour_ in zip(hours, hours[1:], strict=False):
        assert rows[hour_][1] - rows[previous][1] == pytest.approx(rows[hour_][0])
    truth = simulator.climkit.truth_meter_hourly(
        SITE_LAC.id, meter.id, NOW - 3 * DAY, NOW + timedelta(hours=1, minutes=1)
    )
    assert_matches_truth(rows, truth, statistic_id)


@pytest.mark.freeze_time(NOW)
async def test_statistic_metadata(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Names carry the site's and the meter's names; units and classes are set."""
    assert await setup_entry(climkit_entry)
    await async_wait_recording_done(hass)
    listed = {
        row["statistic_id"]: row
        for row in await async_list_statistic_ids(hass)
        if row["source"] == "cloud_energy_meters"
    }
    expected = {
        await where(hass, sid)
        for site in SITES
        for sid in expected_series(simulator, site)
    }
    assert set(listed) == expected
    for site in SITES:
        for meter in site.meters:
            water = meter.type in ("cold_water", "hot_water")
            word = "volume" if water else "energy"
            row = listed[
                await where(
                    hass, f"cloud_energy_meters:climkit_{site.id}_{meter.id}_{word}"
                )
            ]
            assert row["name"] == f"{site.name} {meter.name} {word}"
            assert row["statistics_unit_of_measurement"] == ("m³" if water else "kWh")
            assert row["unit_class"] == ("volume" if water else "energy")
            assert row["has_sum"] is True
            assert row["mean_type"] is StatisticMeanType.NONE
    grid = listed[
        await where(
            hass,
            f"cloud_energy_meters:climkit_{SITE_LAC.id}_site_electricity_grid_import",
        )
    ]
    assert grid["name"] == f"{SITE_LAC.name} Site grid import"


@pytest.mark.freeze_time(NOW, tick=True)  # tick: the waits below need a clock
@pytest.mark.parametrize("cloud", ["climkit", "energydata", "locus"])
async def test_setup_does_not_wait_for_the_recorder(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """With the recorder's queue not worked yet (a real start), entries load at once.

    Their first import queues its rows meanwhile; once the recorder works its
    queue, what it stored equals the truth.
    """
    entry = {
        "climkit": climkit_entry_for,
        "energydata": energydata_entry_for,
        "locus": locus_entry_for,
    }[cloud](simulator)
    entry.add_to_hass(hass)
    async with recorder_queue_held(hass):
        setup = hass.async_create_task(hass.config_entries.async_setup(entry.entry_id))
        await asyncio.wait({setup}, timeout=15)
        assert setup.done(), "setup waits for the recorder"
        assert entry.state is ConfigEntryState.LOADED
        settled = hass.async_create_task(
            hass.async_block_till_done(wait_background_tasks=True)
        )
        await asyncio.wait({settled}, timeout=15)
        assert settled.done(), "the first import waits for the recorder"
        assert entry.runtime_data.imports, "the first import ran"
    if cloud == "climkit":
        await _assert_all_sites(hass, simulator, NOW - 3 * DAY, NOW)
    for statistic_id, result in entry.runtime_data.imports.items():
        rows = await stored(hass, statistic_id)
        assert len(rows) == result.rows or result.rows == 0, statistic_id


@pytest.mark.freeze_time(NOW)
async def test_a_reload_before_the_recorder_wrote_counts_nothing_twice(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An import that resumes from rows still queued resumes from them, not from 0.

    The first import's rows wait in the recorder's queue when the entry reloads
    hours later: the second import must anchor on them, not on an empty database.
    """
    climkit_entry.add_to_hass(hass)
    async with recorder_queue_held(hass):
        assert await hass.config_entries.async_setup(climkit_entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert await hass.config_entries.async_unload(climkit_entry.entry_id)
        freezer.move_to(NOW + timedelta(hours=3))
        simulator.clear_log()
        assert await hass.config_entries.async_setup(climkit_entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        # It resumed: no second backfill was asked for.
        starts = {
            record.body["t_s"]
            for record in simulator.log_for("climkit")
            if record.body and record.path.startswith("/meter_data/")
        }
        assert "2026-11-17T10:00:00" not in starts
    await _assert_all_sites(hass, simulator, NOW - 3 * DAY, NOW + timedelta(hours=3))
