"""Climkit history against the simulator's ground truth, across DST and span limits.

Climkit labels 15-minute rows by their END in site-local time with an offset, and
answers with inclusive bounds; the provider must yield start-labelled UTC intervals,
each once, exactly the simulator's values.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.errors import RequestRejected
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Interval,
    Inventory,
    Role,
)
from tests.provider_factory import collect
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_FERME, SITE_LAC, SITES

QUARTER = timedelta(minutes=15)
SPRING = datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
AUTUMN = datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)
SITE_FIELDS = {
    Role.CONSUMPTION: "conso_total",
    Role.GRID_IMPORT: "from_ext",
    Role.PRODUCTION: "prod_total",
    Role.SELF_CONSUMPTION: "self",
    Role.GRID_EXPORT: "to_ext",
    Role.BATTERY_CHARGE: "storage_charging_total",
    Role.BATTERY_DISCHARGE: "storage_discharging_total",
}


def hourly(intervals: list[Interval]) -> dict[datetime, float]:
    """Sum intervals per UTC hour of their start, exactly (decimal), like the truth.

    Climkit publishes 3-decimal numbers: an hour's value is their exact sum.
    """
    hours: dict[datetime, Decimal] = {}
    for interval in intervals:
        hour = interval.start.replace(minute=0)
        hours[hour] = hours.get(hour, Decimal(0)) + Decimal(repr(interval.value))
    return {hour: float(total) for hour, total in hours.items()}


def truth_hourly(
    sim: Simulator, channel: Channel, start: datetime, end: datetime
) -> dict[datetime, float]:
    """Return the simulator's hourly truth of a history channel."""
    if channel.source_id is not None:
        return sim.climkit.truth_meter_hourly(
            channel.site_id, channel.source_id, start, end
        )
    meter_type = channel.key.split(":")[2]
    return sim.climkit.truth_site_hourly(
        channel.site_id, meter_type, SITE_FIELDS[channel.role], start, end
    )


def assert_well_formed(
    intervals: list[Interval], start: datetime, end: datetime
) -> None:
    """Intervals are aware UTC, 15 minutes long, sorted, unique and start in [start, end)."""
    starts = [interval.start for interval in intervals]
    assert starts == sorted(set(starts))
    for interval in intervals:
        assert interval.start.tzinfo is UTC
        assert interval.end.tzinfo is UTC
        assert interval.end - interval.start == QUARTER
        assert start <= interval.start < end
        assert interval.start.minute % 15 == 0


@pytest.fixture
async def inventory(climkit: ClimkitProvider) -> Inventory:
    """Discover all three simulated sites (which also teaches their time zones)."""
    return await climkit.async_discover([site.id for site in SITES])


@pytest.mark.parametrize("window", [SPRING, AUTUMN], ids=["spring", "autumn"])
async def test_history_equals_truth_across_dst(
    simulator: Simulator,
    climkit: ClimkitProvider,
    inventory: Inventory,
    window: tuple[datetime, datetime],
) -> None:
    """Every history channel of every site sums to the truth, hour by hour, over DST.

    The local day of the change has 23 or 25 hours; in UTC every hour has four
    intervals (the gappy meter aside) and the sums are exact.
    """
    start, end = window
    channels = [channel for channel in inventory.channels if channel.history]
    assert len(channels) == 37
    simulator.clear_log()
    for channel in channels:
        intervals = await collect(climkit, channel, start, end)
        assert_well_formed(intervals, start, end)
        truth = truth_hourly(simulator, channel, start, end)
        assert len(truth) >= 69  # the gappy meter misses 3 hours once a week
        assert hourly(intervals) == truth, channel.key
    # One request per channel: the simulator sets no span limit.
    assert len(simulator.log_for("climkit")) == len(channels)


async def test_meter_intervals_equal_truth_one_by_one(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """Each interval has the truth's start and value, also in the repeated DST hour."""
    start, end = AUTUMN
    for sim_site, meter in (
        (SITE_LAC, SITE_LAC.meters[1]),  # gappy apartment meter
        (SITE_LAC, SITE_LAC.meters[9]),  # hot water, m³
        (SITE_CENTRALE, SITE_CENTRALE.meters[1]),
        (SITE_FERME, SITE_FERME.meters[1]),
    ):
        channel = next(
            c for c in inventory.channels if c.source_id == meter.id and c.history
        )
        intervals = await collect(climkit, channel, start, end)
        truth = simulator.climkit.truth_meter_intervals(
            sim_site.id, meter.id, start, end
        )
        assert {i.start: i.value for i in intervals} == {
            at: values["total"] for at, values in truth
        }
    # The gappy meter really has a gap in this window (so absence was tested).
    gappy = simulator.climkit.truth_meter_intervals(
        SITE_LAC.id, SITE_LAC.meters[1].id, start, end
    )
    assert len(gappy) < 3 * 96


async def test_end_label_becomes_start(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """The row labelled 10:15+01:00 is the interval 09:00–09:15 UTC."""
    meter = SITE_LAC.meters[2]
    channel = next(c for c in inventory.channels if c.key.endswith(f"{meter.id}:total"))
    start = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    simulator.clear_log()
    intervals = await collect(climkit, channel, start, start + QUARTER)
    assert [(i.start, i.end) for i in intervals] == [(start, start + QUARTER)]
    # What the cloud labelled 10:15 local (+01:00) in its answer:
    ((at, values),) = simulator.climkit.truth_meter_intervals(
        SITE_LAC.id, meter.id, start, start + QUARTER
    )
    assert at == start
    assert intervals[0].value == values["total"]
    (request,) = simulator.log_for("climkit")
    assert request.body["t_s"] == "2026-01-15T09:00:00"


async def test_unaligned_bounds(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """Only intervals starting inside [start, end) come back, whatever the bounds."""
    channel = next(
        c for c in inventory.channels if c.history and c.site_id == SITE_FERME.id
    )
    start = datetime(2026, 10, 25, 0, 7, tzinfo=UTC)
    end = datetime(2026, 10, 25, 3, 45, tzinfo=UTC)
    intervals = await collect(climkit, channel, start, end)
    assert_well_formed(intervals, start, end)
    assert [i.start for i in intervals] == [
        datetime(2026, 10, 25, 0, 15, tzinfo=UTC) + n * QUARTER for n in range(14)
    ]
    assert await collect(climkit, channel, end, end) == []


async def test_inclusive_bounds_do_not_duplicate(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """Consecutive calls sharing a boundary yield each interval once in total."""
    channel = next(
        c for c in inventory.channels if c.key.endswith(":site:electricity:self")
    )
    start, end = AUTUMN
    middle = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # inside the repeated hour
    halves = await collect(climkit, channel, start, middle) + await collect(
        climkit, channel, middle, end
    )
    whole = await collect(climkit, channel, start, end)
    assert halves == whole
    assert len({i.start for i in whole}) == len(whole) == 3 * 96


async def test_history_in_a_max_span(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """A cloud refusing long spans gets smaller ones; the learnt span is kept.

    Everything comes back, exactly once; after the refusals no request is refused
    again, and the next history call sends no refused request at all.
    """
    simulator.climkit.max_span = timedelta(days=2)
    start, end = datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)
    meter = SITE_CENTRALE.meters[2]
    channel = next(c for c in inventory.channels if c.key.endswith(f"{meter.id}:total"))
    simulator.clear_log()
    intervals = await collect(climkit, channel, start, end)
    assert_well_formed(intervals, start, end)
    assert hourly(intervals) == simulator.climkit.truth_meter_hourly(
        SITE_CENTRALE.id, meter.id, start, end
    )
    assert len(intervals) == 7 * 96

    log = simulator.log_for("climkit")
    statuses = [r.status for r in log]
    first_ok = statuses.index(200)
    assert first_ok >= 1
    assert set(statuses[:first_ok]) == {400}
    assert set(statuses[first_ok:]) == {200}
    assert len(statuses) - first_ok >= 4

    def span(record_body: dict[str, str]) -> timedelta:
        return datetime.fromisoformat(record_body["t_e"]) - datetime.fromisoformat(
            record_body["t_s"]
        )

    assert all(span(r.body) > timedelta(days=2) for r in log[:first_ok])
    assert all(span(r.body) <= timedelta(days=2) for r in log[first_ok:])

    # The next call (another channel) starts with the learnt span: no refusal.
    site_total = next(
        c
        for c in inventory.channels
        if c.key == f"{SITE_LAC.id}:site:heating:conso_total"
    )
    simulator.clear_log()
    intervals = await collect(climkit, site_total, start, end)
    assert hourly(intervals) == simulator.climkit.truth_site_hourly(
        SITE_LAC.id, "heating", "conso_total", start, end
    )
    assert {r.status for r in simulator.log_for("climkit")} == {200}


async def test_history_in_one_day_spans(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """A cloud that serves at most one day per request still gives the whole history."""
    simulator.climkit.max_span = timedelta(days=1)
    start, end = AUTUMN
    channel = next(
        c for c in inventory.channels if c.key.endswith(":site:electricity:to_ext")
    )
    intervals = await collect(climkit, channel, start, end)
    assert_well_formed(intervals, start, end)
    assert hourly(intervals) == simulator.climkit.truth_site_hourly(
        channel.site_id, "electricity", "to_ext", start, end
    )


async def test_history_refused_whatever_the_span(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """When even the smallest span is refused, RequestRejected reaches the caller."""
    simulator.climkit.max_span = timedelta(hours=6)
    start, end = AUTUMN
    channel = next(c for c in inventory.channels if c.history)
    simulator.clear_log()
    with pytest.raises(RequestRejected) as caught:
        await collect(climkit, channel, start, end)
    assert caught.value.status == 400
    assert "too long" in str(caught.value)
    statuses = [r.status for r in simulator.log_for("climkit")]
    assert set(statuses) == {400}
    assert len(statuses) <= 5


async def test_history_of_a_missing_meter_is_not_retried_smaller(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """A 404 is not "too much at once": no smaller span is tried, none is remembered."""
    start, end = AUTUMN
    channel = next(c for c in inventory.channels if c.history and c.source_id)
    gone = Channel(
        **{
            **{f: getattr(channel, f) for f in channel.__dataclass_fields__},
            "ref": (*channel.ref[:2], "000000000000000000000000", channel.ref[3]),
        }
    )
    simulator.clear_log()
    with pytest.raises(RequestRejected) as caught:
        await collect(climkit, gone, start, end)
    assert caught.value.status == 404
    assert len(simulator.log_for("climkit")) == 1
    assert climkit._span is None
