"""Copper Labs long-term statistics against the simulator's ground truth, hour by hour.

One statistic per meter: electricity in kWh, gas and water in m³. The truth is the
simulator's exact hourly usage (kWh, CCF, US gallons) converted in decimal with the
exact factors (1 CCF = 2.8316846592 m³, 1 gal = 0.003785411784 m³): every stored
hour must be the float of that product, to the last digit.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import CONF_BACKFILL_DAYS, DOMAIN
from homeassistant.components.recorder.statistics import async_list_statistic_ids
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify
from tests.conftest import SetupEntry
from tests.helpers import assert_matches_truth, hour, stored, where
from tests.simulator import Simulator
from tests.simulator.copper import (
    DEMO_EMAIL,
    ENTERPRISE_ID,
    HOME_GAS_ID,
    HOME_PREMISE_ID,
    SimMeter,
    SimPremise,
)

from .entries import app_refresh_token, copper_entry

DENVER = ZoneInfo("America/Denver")
CHANGE = date(2026, 11, 1)
"""The November change in America/Denver: 02:00 MDT is 01:00 MST (08:00 UTC)."""
BEFORE = datetime(2026, 11, 1, 7, 20, tzinfo=UTC)
"""01:20 MDT, forty minutes before the clocks go back."""
AFTER = datetime(2026, 11, 2, 9, 40, tzinfo=UTC)
"""The next day, 02:40 MST: the 25-hour local day is complete."""
NOW = datetime(2026, 11, 20, 15, 7, tzinfo=UTC)
CCF_M3 = Decimal("2.8316846592")
GALLON_M3 = Decimal("0.003785411784")
FACTORS = {"electric": Decimal(1), "gas": CCF_M3, "water": GALLON_M3}
WORDS = {"electric": "energy", "gas": "gas", "water": "water"}
UNITS = {"electric": "kWh", "gas": "m³", "water": "m³"}

type Truth = Callable[[datetime, datetime], dict[datetime, float]]


def statistic_id(premise: SimPremise, meter: SimMeter) -> str:
    """Return a meter's statistic id: the premise, the meter and what it measures."""
    return f"{DOMAIN}:{slugify(f'copper_{premise.id}_{meter.id}_{WORDS[meter.kind]}')}"


def series(simulator: Simulator, premises: list[SimPremise]) -> dict[str, Truth]:
    """Return every statistic the premises must have, with its truth in kWh or m³."""
    cloud = simulator.copper

    def truth(meter: SimMeter) -> Truth:
        factor = FACTORS[meter.kind]
        return lambda start, end: {
            moment: float(Decimal(repr(value)) * factor)
            for moment, value in cloud.truth_hourly(meter.id, start, end).items()
        }

    return {
        statistic_id(premise, meter): truth(meter)
        for premise in premises
        for meter in premise.meters
    }


async def assert_all_match(
    hass: HomeAssistant,
    simulator: Simulator,
    premises: list[SimPremise],
    start: datetime,
    end: datetime,
) -> dict[str, dict[datetime, tuple[float, float]]]:
    """Assert every meter's statistic equals the truth over [start, end); return rows.

    `start` is taken to its hour: a backfill starts on the hour `days` ago.
    """
    start = hour(start)
    found = {}
    for statistic, truth in series(simulator, premises).items():
        rows = await stored(hass, statistic)
        expected = truth(start, end)
        assert expected, statistic
        assert_matches_truth(rows, expected, statistic)
        found[statistic] = rows
    return found


async def app_entry(
    session: ClientSession, simulator: Simulator, days: int
) -> MockConfigEntry:
    """Return the demo user's entry (both premises) backfilling `days` days."""
    token = await app_refresh_token(session, simulator)
    return copper_entry(
        simulator, refresh_token=token, options={CONF_BACKFILL_DAYS: days}
    )


async def imported(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Run a history import now, as the hourly schedule would, and let it land."""
    await entry.runtime_data.async_import_statistics()
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)


async def test_30_days_and_a_resume_across_the_november_change(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A 30-day backfill before the change, resumed after it: every UTC hour once.

    The local day of the change in America/Denver has 25 hours, each stored once,
    exactly; the resumed import neither loses nor doubles an hour.
    """
    await hass.config.async_set_time_zone("America/Denver")
    freezer.move_to(BEFORE)
    entry = await app_entry(session, simulator, 30)
    premises = simulator.copper.premises_of_user(DEMO_EMAIL)
    home = simulator.copper.premise(HOME_PREMISE_ID)
    assert home.timezone == "America/Denver"
    assert await setup_entry(entry)
    await imported(hass, entry)
    start = BEFORE - timedelta(days=30)
    rows = await assert_all_match(hass, simulator, premises, start, BEFORE)
    assert all(len(found) == 30 * 24 for found in rows.values())

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    freezer.move_to(AFTER)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await imported(hass, entry)
    rows = await assert_all_match(hass, simulator, premises, start, AFTER)
    for meter in home.meters:
        found = rows[statistic_id(home, meter)]
        day = [moment for moment in found if moment.astimezone(DENVER).date() == CHANGE]
        assert len(day) == 25, meter.id
        # 01:00 local twice: MDT then MST, an hour apart in UTC.
        ones = [moment for moment in day if moment.astimezone(DENVER).hour == 1]
        assert [moment.astimezone(UTC).hour for moment in ones] == [7, 8]


async def test_units_and_names_of_the_statistics(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Electricity in kWh, gas and water in m³; named after premise and meter.

    A converted hour is not the cloud's number: CCF and gallons became m³.
    """
    freezer.move_to(NOW)
    entry = await app_entry(session, simulator, 2)
    assert await setup_entry(entry)
    await imported(hass, entry)
    premises = simulator.copper.premises_of_user(DEMO_EMAIL)
    listed = {
        row["statistic_id"]: row
        for row in await async_list_statistic_ids(hass)
        if row["source"] == DOMAIN
    }
    expected = {
        await where(hass, statistic_id(p, m)): (p, m)
        for p in premises
        for m in p.meters
    }  # five meters
    assert set(listed) == set(expected)
    for statistic, (premise, meter) in expected.items():
        assert listed[statistic]["statistics_unit_of_measurement"] == UNITS[meter.kind]
        assert premise.name in str(listed[statistic]["name"])
        assert meter.id in str(listed[statistic]["name"])
    gas = simulator.copper.meter(HOME_GAS_ID)
    home = simulator.copper.premise(HOME_PREMISE_ID)
    rows = await stored(hass, statistic_id(home, gas))
    moment = hour(NOW) - timedelta(hours=5)
    ccf = simulator.copper.truth_usage(gas.id, moment, moment + timedelta(hours=1))
    assert rows[moment][0] == float(Decimal(repr(ccf)) * CCF_M3)
    assert rows[moment][0] != ccf


async def test_a_register_jump_never_reaches_the_statistics(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Registers served x100 over two days and now: the hours and states stay true.

    For the app user and for the enterprise: the imported hours come from usage
    (which Copper keeps true); the registers shown before stay, or are unknown.
    """
    freezer.move_to(NOW)
    cloud = simulator.copper
    # Answers kept by their max-age would outlive the frozen clock's hour (the cache
    # counts real seconds): the cloud here says nothing of freshness.
    cloud.cache_max_age = None
    enterprise_premise = cloud.premises_of_enterprise(ENTERPRISE_ID)[0]
    app = await app_entry(session, simulator, 3)
    enterprise = copper_entry(
        simulator, sites=[enterprise_premise.id], options={CONF_BACKFILL_DAYS: 3}
    )
    for entry in (app, enterprise):
        assert await setup_entry(entry)
    jumped = [
        HOME_GAS_ID,
        *(m.id for m in enterprise_premise.meters if m.kind != "electric"),
    ]
    for meter in jumped:
        cloud.register_jump(meter, NOW - timedelta(days=2), NOW + timedelta(hours=2))
    freezer.move_to(NOW + timedelta(hours=1))
    for entry in (app, enterprise):
        await entry.runtime_data.async_refresh()
        await imported(hass, entry)
    premises = [*cloud.premises_of_user(DEMO_EMAIL), enterprise_premise]
    await assert_all_match(
        hass, simulator, premises, NOW - timedelta(days=3), NOW + timedelta(hours=1)
    )
    for meter_id in jumped:
        meter = cloud.meter(meter_id)
        entity_id = entity_registry.async_get_entity_id(
            "sensor", DOMAIN, f"copper:{meter.premise_id}:{meter.id}:register"
        )
        assert entity_id
        state = hass.states.get(entity_id)
        assert state is not None
        if state.state != STATE_UNKNOWN:
            at = datetime.fromisoformat(state.attributes["measured_at"])
            truth = float(
                Decimal(repr(cloud.truth_register(meter.id, at)))
                * (FACTORS[meter.kind])
            )
            assert state.state == f"{truth:.15}", (meter.id, state.state, truth)


async def test_late_readings_land_with_the_next_import(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Hours Copper published late are absent, then re-imported into their hour."""
    freezer.move_to(NOW)
    simulator.copper.publish_late(NOW - timedelta(hours=20), NOW - timedelta(hours=14))
    entry = await app_entry(session, simulator, 3)
    assert await setup_entry(entry)
    await imported(hass, entry)
    premises = simulator.copper.premises_of_user(DEMO_EMAIL)
    late = hour(NOW - timedelta(hours=18))
    for statistic in series(simulator, premises):
        rows = await stored(hass, statistic)
        assert late not in rows, statistic
        assert hour(NOW - timedelta(hours=24)) in rows, statistic
        assert hour(NOW - timedelta(hours=2)) in rows, statistic

    simulator.copper.release_late()
    later = NOW + timedelta(hours=1)
    freezer.move_to(later)
    await imported(hass, entry)
    await assert_all_match(hass, simulator, premises, NOW - timedelta(days=3), later)
