"""Copper Labs history: hourly usage equal to the ground truth, hour by hour."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from custom_components.cloud_energy_meters.providers.copper import (
    CCF_M3,
    GALLON_M3,
    CopperProvider,
)
from custom_components.cloud_energy_meters.providers.model import Channel
from tests.provider_factory import collect
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.copper import (
    ENTERPRISE_ID,
    HOME_ELECTRIC_ID,
    HOME_GAS_ID,
    HOME_PREMISE_ID,
    HOME_WATER_ID,
)

NOW = datetime(2026, 11, 3, 12, 7, 30, tzinfo=UTC)  # two days after the US DST end
FACTORS = {HOME_ELECTRIC_ID: Decimal(1), HOME_GAS_ID: CCF_M3, HOME_WATER_ID: GALLON_M3}


@pytest.fixture
def frozen(sim_clock: FakeClock) -> FakeClock:
    """Freeze the simulator two days after the November change in America/Denver."""
    sim_clock.value = NOW
    return sim_clock


async def hour_channels(provider: CopperProvider, premise: str) -> dict[str, Channel]:
    """Discover a premise; return its history channels by meter id."""
    inventory = await provider.async_discover([premise])
    return {c.ref[2]: c for c in inventory.channels if c.history}


def truth(simulator: Simulator, meter: str, start: datetime, end: datetime) -> dict:
    """Return the simulator's exact hours, converted as the provider must."""
    factor = FACTORS.get(meter, Decimal(1))
    return {
        hour: float(Decimal(str(value)) * factor)
        for hour, value in simulator.copper.truth_hourly(meter, start, end).items()
    }


@pytest.mark.usefixtures("frozen")
async def test_history_across_the_november_change_equals_the_truth(
    app: CopperProvider, simulator: Simulator
) -> None:
    """Every meter's hours, the 25-hour local day included, as the cloud measured."""
    start = datetime(2026, 10, 30, 6, tzinfo=UTC)  # Denver midnight (MDT)
    end = datetime(2026, 11, 3, 7, tzinfo=UTC)  # Denver midnight (MST)
    channels = await hour_channels(app, HOME_PREMISE_ID)
    simulator.clear_log()
    for meter, channel in channels.items():
        intervals = await collect(app, channel, start, end)
        expected = truth(simulator, meter, start, end)
        assert len(expected) == 4 * 24 + 1
        assert {i.start: i.value for i in intervals} == expected
        assert all(i.end - i.start == timedelta(hours=1) for i in intervals)
    # One request per meter: the whole span in one window.
    assert len(simulator.log_for("copper")) == 3
    assert app.refusals.total == 0


@pytest.mark.usefixtures("frozen")
async def test_windows_shrink_only_when_refused(
    enterprise: CopperProvider, simulator: Simulator
) -> None:
    """Too many rows: halve the window and ask again; once learnt, no more refusals."""
    simulator.copper.max_points = 30 * 24
    first = simulator.copper.premises_of_enterprise(ENTERPRISE_ID)[0]
    channels = await hour_channels(enterprise, first.id)
    meter, channel = next(iter(channels.items()))
    end = NOW.replace(minute=0, second=0)
    start = end - timedelta(days=60)
    simulator.clear_log()
    intervals = await collect(enterprise, channel, start, end)
    expected = truth(simulator, meter, start, end)
    assert len(expected) == 60 * 24
    assert {i.start: i.value for i in intervals} == expected
    statuses = [r.status for r in simulator.log_for("copper")]
    # 92 days refused, 46 refused, 23 accepted: 60 days in 3 windows.
    assert statuses == [400, 400, 200, 200, 200]
    simulator.clear_log()
    await collect(enterprise, channel, start, end)
    assert simulator.log_for("copper") == []  # fresh (Cache-Control): not asked
    enterprise.cache.clear()
    await collect(enterprise, channel, start, end)
    assert [r.status for r in simulator.log_for("copper")] == [200, 200, 200]


@pytest.mark.usefixtures("frozen")
async def test_null_buckets_are_absent_never_zero(
    app: CopperProvider, simulator: Simulator
) -> None:
    """Hours whose readings are withheld are left out; the rest are exact."""
    channels = await hour_channels(app, HOME_PREMISE_ID)
    start, end = NOW - timedelta(days=1), NOW
    late = (NOW - timedelta(hours=10), NOW - timedelta(hours=7))
    simulator.copper.publish_late(*late, HOME_GAS_ID)
    intervals = await collect(app, channels[HOME_GAS_ID], start, end)
    got = {i.start: i.value for i in intervals}
    expected = truth(simulator, HOME_GAS_ID, start, end)
    missing = set(expected) - set(got)
    assert missing
    assert all(late[0] - timedelta(hours=1) <= hour < late[1] for hour in missing)
    assert got == {h: v for h, v in expected.items() if h not in missing}
    assert 0.0 not in got.values()


@pytest.mark.usefixtures("frozen")
async def test_unaligned_span_and_no_duplicated_boundary(
    app: CopperProvider, simulator: Simulator
) -> None:
    """Hours starting in [start, end): the boundary rows of each window once."""
    channels = await hour_channels(app, HOME_PREMISE_ID)
    start = NOW - timedelta(hours=5, minutes=20)
    end = NOW - timedelta(hours=1, minutes=50)
    intervals = await collect(app, channels[HOME_ELECTRIC_ID], start, end)
    first = start.replace(minute=0, second=0) + timedelta(hours=1)
    assert [i.start for i in intervals] == [
        first + timedelta(hours=n) for n in range(4)
    ]
