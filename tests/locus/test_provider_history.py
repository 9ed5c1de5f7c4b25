"""Locus Energy history against the simulator's ground truth, across DST and windows.

History is 15-minute `Wh_sum` asked with tz=UTC: `ts` labels the interval's
start, values are Wh per interval (never running totals), omitted fields mean
no data. The provider must yield start-labelled UTC intervals in kWh, each
once, in windows shorter than the documented 31 days.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Interval,
    Inventory,
    Kind,
    Quantity,
)
from tests.provider_factory import MakeProvider, collect
from tests.simulator import Simulator
from tests.simulator.locus import (
    HARBOR_PV_METER_ID,
    HARBOR_SITE_ID,
    MAPLE_INVERTER_ID,
    MAPLE_PV_METER_ID,
    MAPLE_SITE_ID,
)
from tests.stub import StubServer

QUARTER = timedelta(minutes=15)
NEW_YORK = ZoneInfo("America/New_York")
# Several days around each of New York's DST changes of 2026 (both in the past).
SPRING = datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)
AUTUMN = datetime(2026, 10, 29, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
DST_DAYS = {SPRING: (date(2026, 3, 8), 23), AUTUMN: (date(2026, 11, 1), 25)}
MAPLE_SITE = f"{MAPLE_SITE_ID}:site:{MAPLE_SITE_ID}:Wh_sum"
MAPLE_METER = f"{MAPLE_SITE_ID}:component:{MAPLE_PV_METER_ID}:Wh_sum"
MAPLE_INVERTER = f"{MAPLE_SITE_ID}:component:{MAPLE_INVERTER_ID}:Wh_sum"
HARBOR_METER = f"{HARBOR_SITE_ID}:component:{HARBOR_PV_METER_ID}:Wh_sum"


def hourly_wh(intervals: list[Interval]) -> dict[datetime, Decimal]:
    """Sum intervals per UTC hour of their start, back in Wh, exactly (decimal)."""
    hours: dict[datetime, Decimal] = {}
    for interval in intervals:
        hour = interval.start.replace(minute=0)
        wh = Decimal(repr(interval.value)) * 1000
        hours[hour] = hours.get(hour, Decimal(0)) + wh
    return hours


def truth_wh(
    simulator: Simulator, channel: Channel, start: datetime, end: datetime
) -> dict[datetime, Decimal]:
    """Return the simulator's hourly Wh of a channel, as exact decimals."""
    scope, ident = channel.ref[:2]
    truth = simulator.locus.truth_hourly(
        int(ident),
        channel.ref[3],
        start,
        end,
        kind="site" if scope == "site" else "component",
    )
    return {hour: Decimal(repr(value)) for hour, value in truth.items()}


def assert_well_formed(
    intervals: list[Interval], start: datetime, end: datetime
) -> None:
    """Intervals are aware UTC, 15 minutes long, sorted, unique, starting in [start, end)."""
    starts = [interval.start for interval in intervals]
    assert starts == sorted(set(starts))
    for interval in intervals:
        assert interval.start.tzinfo is UTC
        assert interval.end - interval.start == QUARTER
        assert start <= interval.start < end
        assert interval.start.minute % 15 == 0
        assert interval.value >= 0


def data_windows(simulator: Simulator) -> list[tuple[datetime, datetime]]:
    """Return the (start, end) of every data request, as aware UTC."""
    windows = []
    for record in simulator.log_for("locus"):
        if record.path.endswith("/data"):
            assert (record.query["tz"], record.query["gran"]) == ("UTC", "15min")
            windows.append(
                (
                    datetime.fromisoformat(record.query["start"]).replace(tzinfo=UTC),
                    datetime.fromisoformat(record.query["end"]).replace(tzinfo=UTC),
                )
            )
    return windows


@pytest.fixture
async def channels(simulator: Simulator, locus: LocusProvider) -> dict[str, Channel]:
    """Discover the two small sites; return their history channels by key."""
    inventory: Inventory = await locus.async_discover(
        [str(MAPLE_SITE_ID), str(HARBOR_SITE_ID)]
    )
    simulator.clear_log()
    return {c.key: c for c in inventory.channels if c.history}


@pytest.mark.parametrize("window", [SPRING, AUTUMN], ids=["spring", "autumn"])
@pytest.mark.parametrize(
    "key",
    [MAPLE_SITE, MAPLE_INVERTER, HARBOR_METER],
    ids=["maple-site", "maple-inverter", "harbor-meter"],
)
async def test_history_equals_truth_across_dst(
    simulator: Simulator,
    locus: LocusProvider,
    channels: dict[str, Channel],
    window: tuple[datetime, datetime],
    key: str,
) -> None:
    """A site and generation components sum to the truth hour by hour over DST.

    New York's day of the change has 23 or 25 hours: in UTC every hour has four
    intervals (gaps aside) and the local day 92 or 100.
    """
    start, end = window
    channel = channels[key]
    intervals = await collect(locus, channel, start, end)
    assert_well_formed(intervals, start, end)
    truth = truth_wh(simulator, channel, start, end)
    assert len(truth) >= 5 * 24 - 6  # gappy components miss a few hours
    assert hourly_wh(intervals) == truth
    assert data_windows(simulator) == [(start, end)]
    if key == MAPLE_SITE:
        day, hours = DST_DAYS[window]
        local = [i for i in intervals if i.start.astimezone(NEW_YORK).date() == day]
        assert len(local) == hours * 4


async def test_gaps_and_zeros(
    simulator: Simulator, locus: LocusProvider, channels: dict[str, Channel]
) -> None:
    """Omitted fields give no interval; nights are real zeros, present as 0.

    Maple's inverter is offline 13-15 UTC every third day (2026-11-01 is one).
    """
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = start + timedelta(days=1)
    intervals = await collect(locus, channels[MAPLE_INVERTER], start, end)
    starts = {interval.start for interval in intervals}
    gap = {start + timedelta(hours=13) + n * QUARTER for n in range(8)}
    assert starts == {start + n * QUARTER for n in range(96)} - gap
    truth = truth_wh(simulator, channels[MAPLE_INVERTER], start, end)
    assert start + timedelta(hours=13) not in truth
    night = [i for i in intervals if i.start.hour in (2, 3, 4)]
    assert len(night) == 12
    assert all(i.value == 0.0 for i in night)
    assert truth[start + timedelta(hours=3)] == 0


async def test_long_history_in_windows_shorter_than_31_days(
    simulator: Simulator, locus: LocusProvider, channels: dict[str, Channel]
) -> None:
    """70 days come in ≥ 3 windows (< 31 days each) joined without overlap or hole."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = start + timedelta(days=70)
    batches = [
        batch async for batch in locus.async_history(channels[MAPLE_METER], start, end)
    ]
    windows = data_windows(simulator)
    assert len(windows) >= 3
    assert len(batches) == len(windows)
    assert all(
        window_end - window_start < timedelta(days=31)
        for window_start, window_end in windows
    )
    assert windows[0][0] == start
    assert windows[-1][1] == end
    for (_, previous_end), (next_start, _) in zip(windows, windows[1:], strict=False):
        assert previous_end == next_start
    intervals = [interval for batch in batches for interval in batch]
    assert_well_formed(intervals, start, end)
    # Maple's PV meter has no gap: every quarter hour exactly once.
    assert [i.start for i in intervals] == [start + n * QUARTER for n in range(70 * 96)]
    for batch, (window_start, window_end) in zip(batches, windows, strict=True):
        assert all(window_start <= i.start < window_end for i in batch)
    assert hourly_wh(intervals) == truth_wh(
        simulator, channels[MAPLE_METER], start, end
    )


async def test_start_between_quarters(
    simulator: Simulator, locus: LocusProvider, channels: dict[str, Channel]
) -> None:
    """Only intervals starting at or after `start` are yielded, even mid-second."""
    start = datetime(2026, 7, 1, 12, tzinfo=UTC) + timedelta(milliseconds=500)
    end = datetime(2026, 7, 1, 13, tzinfo=UTC)
    intervals = await collect(locus, channels[MAPLE_METER], start, end)
    assert [i.start.minute for i in intervals] == [15, 30, 45]


async def test_corrections_and_late_data(
    simulator: Simulator, locus: LocusProvider, channels: dict[str, Channel]
) -> None:
    """A withheld interval is absent (not 0) until published; a correction is read as is."""
    start = datetime(2026, 7, 2, 16, tzinfo=UTC)
    end = start + timedelta(hours=1)
    simulator.locus.publish_late(start, start + QUARTER, MAPLE_PV_METER_ID)
    simulator.locus.correct(MAPLE_PV_METER_ID, start + QUARTER, 1252.4)
    late = await collect(locus, channels[MAPLE_METER], start, end)
    assert [i.start for i in late] == [start + n * QUARTER for n in (1, 2, 3)]
    assert late[0].value == 1.2524
    simulator.locus.release_late()
    released = await collect(locus, channels[MAPLE_METER], start, end)
    assert [i.start for i in released] == [start + n * QUARTER for n in range(4)]
    assert released[1:] == late
    assert hourly_wh(released) == truth_wh(simulator, channels[MAPLE_METER], start, end)


async def test_negative_energy_is_left_out(
    simulator: Simulator, locus: LocusProvider, channels: dict[str, Channel]
) -> None:
    """Energy per interval is never negative: such a point is left out, counted."""
    start = datetime(2026, 7, 3, tzinfo=UTC)
    simulator.locus.correct(MAPLE_PV_METER_ID, start, -1.5)
    intervals = await collect(locus, channels[MAPLE_METER], start, start + 2 * QUARTER)
    assert [i.start for i in intervals] == [start + QUARTER]
    assert locus.refusals.total == 1


STUB_CHANNEL = Channel(
    key="1:component:2:Wh_sum",
    site_id="1",
    name="Energy",
    label=None,
    quantity=Quantity.ENERGY,
    kind=Kind.INTERVAL,
    unit="kWh",
    ref=("component", "2", "latest", "Wh_sum"),
)
STUB_START = datetime(2026, 7, 1, 12, tzinfo=UTC)


async def test_naive_timestamps_are_utc(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """We ask tz=UTC: a timestamp without an offset is read as UTC."""
    stub.locus_auth()
    stub.json(
        "GET",
        "/v3/components/2/data",
        {"data": [{"id": 2, "ts": "2026-07-01T12:00:00", "Wh_sum": 12.5}]},
    )
    provider = make_provider("locus", api_url=f"{stub.url}/v3")
    intervals = await collect(provider, STUB_CHANNEL, STUB_START, STUB_START + QUARTER)
    assert intervals == [Interval(STUB_START, STUB_START + QUARTER, 0.0125)]


@pytest.mark.parametrize(
    "point",
    [
        {"id": 2, "ts": "2026-07-01T12:00:00+00:00", "Wh_sum": "12"},
        {"id": 2, "ts": "2026-07-01T12:00:00+00:00", "Wh_sum": True},
        {"id": 2, "ts": "2026-07-01T12:00:00+00:00", "Wh_sum": float("nan")},
        {"id": 2, "ts": "2026-07-01T12:00:00+00:00", "Wh_sum": 1e300},
        {"id": 2, "ts": "12:00", "Wh_sum": 12},
        {"id": 2, "ts": "2026-07-01T12:00:00+99:00", "Wh_sum": 12},
        {"id": 2, "ts": 1782907200, "Wh_sum": 12},
        {"id": 2, "Wh_sum": 12},
        [1, 2],
    ],
    ids=[
        "string-value",
        "bool-value",
        "nan-value",
        "huge-value",
        "bad-ts",
        "bad-offset",
        "epoch-ts",
        "no-ts",
        "no-object",
    ],
)
async def test_malformed_points(
    stub: StubServer, make_provider: MakeProvider, point: dict[str, object]
) -> None:
    """A point whose value is no number or whose time is none is left out, counted."""
    stub.locus_auth()
    good = {"id": 2, "ts": "2026-07-01T11:45:00+00:00", "Wh_sum": 10}
    stub.json("GET", "/v3/components/2/data", {"data": [good, point]})
    provider = make_provider("locus", api_url=f"{stub.url}/v3")
    assert await collect(provider, STUB_CHANNEL, STUB_START, STUB_START + QUARTER) == []
    assert provider.refusals.total == 1
    latest = (await provider.async_latest([STUB_CHANNEL])).readings
    assert latest[STUB_CHANNEL.key].start == STUB_START - QUARTER
    assert provider.refusals.total == 2
