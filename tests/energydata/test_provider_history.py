"""Energydata.dk history against the simulator's ground truth, to the last decimal.

What the values mean is the user's word: a register's history is the difference
between consecutive readings, labelled by the EARLIER reading (a decrease is a
reset: skipped); an amount stamped at its interval's end belongs to the instant
1 ms before its timestamp, one stamped at the start to its timestamp. Hourly sums
of what the provider yields must equal the truth computed here from the raw
readings (`cloud.readings`) by other means: a register's hour telescopes to the
first reading of the next hour minus the first reading of the hour.
"""

from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiohttp import web
import pytest

from custom_components.cloud_energy_meters.providers import energydata as module
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.errors import InvalidResponse
from custom_components.cloud_energy_meters.providers.model import Channel, Interval
from tests.provider_factory import MakeProvider, collect
from tests.simulator import Simulator
from tests.simulator.clock import epoch_ms
from tests.simulator.energydata import (
    GAS_METER_ID,
    HEATING_VOLUME_ID,
    MAIN_METER_ID,
    PV_YIELD_ID,
)
from tests.stub import StubServer

HOUR = timedelta(hours=1)
MS = timedelta(milliseconds=1)
type Readings = list[tuple[int, float | int | str]]


def floor_hour(moment: datetime) -> datetime:
    """Return the UTC hour a moment lies in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def at(ms: int) -> datetime:
    """Return the aware UTC instant of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def dec(value: float | str) -> Decimal:
    """Return a reading or interval value as the decimal it was written as."""
    return Decimal(repr(value))


def hourly(intervals: Iterable[Interval]) -> dict[datetime, Decimal]:
    """Sum what the provider yielded per UTC hour of each interval's start, exactly."""
    sums: dict[datetime, Decimal] = {}
    for interval in intervals:
        hour = floor_hour(interval.start)
        sums[hour] = sums.get(hour, Decimal(0)) + dec(interval.value)
    return sums


def register_truth(readings: Readings) -> dict[datetime, Decimal]:
    """Return a register's hourly consumption from its raw readings.

    The intervals starting in an hour telescope: their sum is the first reading
    at or after the next hour (or the last reading, which starts nothing) minus
    the first reading of the hour. Simulated registers never go down.
    """
    values = [dec(value) for _, value in readings]
    assert values == sorted(values)
    stamps = [ts for ts, _ in readings]
    truth: dict[datetime, Decimal] = {}
    for ts, _ in readings[:-1]:
        hour = floor_hour(at(ts))
        if hour in truth:
            continue
        first = bisect_left(stamps, epoch_ms(hour))
        following = min(bisect_left(stamps, epoch_ms(hour + HOUR)), len(stamps) - 1)
        truth[hour] = values[following] - values[first]
    return truth


def amount_truth(
    readings: Readings, start: datetime, end: datetime, *, at_end: bool
) -> dict[datetime, Decimal]:
    """Return an amount's hourly sums: each value in the hour its interval lies in."""
    truth: dict[datetime, Decimal] = {}
    for ts, value in readings:
        moment = at(ts) - MS if at_end else at(ts)
        if start <= moment < end:
            hour = floor_hour(moment)
            truth[hour] = truth.get(hour, Decimal(0)) + dec(value)
    return truth


def assert_well_formed(
    batches: list[list[Interval]], start: datetime, end: datetime
) -> None:
    """Each batch sorted and unique; batches chronological, never overlapping."""
    flat = [interval for batch in batches for interval in batch]
    starts = [interval.start for interval in flat]
    assert starts == sorted(set(starts))
    for batch in batches:
        assert batch
    for interval in flat:
        assert interval.start.tzinfo is UTC
        assert start <= interval.start < end
        assert interval.end > interval.start
        assert interval.value >= 0


async def batches_of(
    provider: EnergydataProvider, channel: Channel, start: datetime, end: datetime
) -> list[list[Interval]]:
    """Return the batches async_history yields, as they came."""
    return [batch async for batch in provider.async_history(channel, start, end)]


async def channels_of(provider: EnergydataProvider) -> dict[int, Channel]:
    """Return the provider's channels by datastream id."""
    inventory = await provider.async_discover([])
    return {int(c.ref[0]): c for c in inventory.channels}


@pytest.mark.parametrize(
    ("stream_id", "start", "days"),
    [
        (MAIN_METER_ID, datetime(2026, 3, 7, 0, 0, 30, tzinfo=UTC), 2),
        (HEATING_VOLUME_ID, datetime(2026, 1, 10, tzinfo=UTC), 7),
        (GAS_METER_ID, datetime(2025, 12, 20, 6, tzinfo=UTC), 14),
    ],
    ids=["main-meter-minutes", "heating-15min", "gas-integer-litres"],
)
async def test_register_history_equals_truth(
    simulator: Simulator,
    energydata: EnergydataProvider,
    stream_id: int,
    start: datetime,
    days: int,
) -> None:
    """A register's hourly sums equal the telescoped truth, exactly, in one request.

    65603: kWh with three decimals, a reading a minute with up to 2.5 s jitter;
    70001: m³ every 15 minutes; 70003: whole litres (integers) every hour.
    """
    cloud = simulator.energydata
    channel = (await channels_of(energydata))[stream_id]
    end = start + timedelta(days=days)
    batches = await batches_of(energydata, channel, start, end)
    assert_well_formed(batches, start, end)
    flat = [interval for batch in batches for interval in batch]
    readings = cloud.readings(stream_id, start, end)
    truth = register_truth(readings)
    assert hourly(flat) == truth
    assert len(truth) == days * 24
    assert len(flat) == len(readings) - 1
    # Each difference is labelled by the earlier reading and ends at the next one.
    assert [(i.start, i.end) for i in flat] == [
        (at(a), at(b)) for (a, _), (b, _) in zip(readings, readings[1:], strict=False)
    ]
    assert [r.query for r in simulator.log_for("energydata")] == [
        {
            "ids": str(stream_id),
            "from": start.strftime("%Y-%m-%dT%H:%M:%S"),
            "to": end.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    ]


@pytest.mark.parametrize("meaning", ["amount_end", "amount_start"])
async def test_amount_history_equals_truth(
    simulator: Simulator, make_provider: MakeProvider, meaning: str
) -> None:
    """PV yield per 5 minutes: each value in the hour its interval lies in.

    Stamped at the end (what 65607 is), the value at 12:00:00 belongs to 11:59:59.999
    (hour 11) and the one at the span's start to the hour before it; read as
    stamped at the start, it belongs to 12:00.
    """
    cloud = simulator.energydata
    provider = make_provider(
        "energydata",
        settings={
            "datastreams": [
                {"id": PV_YIELD_ID, "quantity": "energy", "meaning": meaning}
            ]
        },
    )
    channel = (await channels_of(provider))[PV_YIELD_ID]
    start, end = datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    batches = await batches_of(provider, channel, start, end)
    assert_well_formed(batches, start, end)
    flat = [interval for batch in batches for interval in batch]
    readings = cloud.readings(PV_YIELD_ID, start, end)
    at_end = meaning == "amount_end"
    truth = amount_truth(readings, start, end, at_end=at_end)
    assert hourly(flat) == truth
    assert sum(truth.values()) > 0  # the sun did shine
    noon = datetime(2026, 3, 7, 12, tzinfo=UTC)
    value = dict(readings)[epoch_ms(noon)]
    owner = noon - MS if at_end else noon
    assert Interval(owner, owner + MS, value) in flat
    # 00:00 of the first day closes the day before: only read as a start it counts.
    assert flat[0].start == (start + timedelta(minutes=5) - MS if at_end else start)
    assert len(flat) == len(readings) - 1


async def test_late_register_readings_and_release(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """While readings are late the gap is one long difference; released, the truth.

    The late hours' consumption is not lost: it sits in the one interval that
    bridges the gap (labelled by the last reading before it), so the span's
    total stays right; after release_late every hour equals the truth again.
    """
    cloud = simulator.energydata
    channel = (await channels_of(energydata))[MAIN_METER_ID]
    start, end = datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 8, 6, tzinfo=UTC)
    gap = (
        datetime(2026, 3, 8, 2, 10, tzinfo=UTC),
        datetime(2026, 3, 8, 3, 40, tzinfo=UTC),
    )
    cloud.late(MAIN_METER_ID, *gap)
    withheld = await collect(energydata, channel, start, end)
    readings = cloud.readings(MAIN_METER_ID, start, end)
    truth = register_truth(readings)
    bridge = [i for i in withheld if i.start < gap[0] and i.end >= gap[1]]
    assert len(bridge) == 1
    assert not [i for i in withheld if gap[0] <= i.start < gap[1]]
    hidden = [(ts, v) for ts, v in readings if gap[0] <= at(ts) < gap[1]]
    assert len(hidden) == 90
    before = next((ts, v) for ts, v in reversed(readings) if at(ts) < gap[0])
    after = next((ts, v) for ts, v in readings if at(ts) >= gap[1])
    assert bridge[0] == Interval(
        at(before[0]), at(after[0]), float(dec(after[1]) - dec(before[1]))
    )
    sums = hourly(withheld)
    assert sum(sums.values()) == sum(truth.values())
    for hour in (0, 1, 4, 5):
        moment = start + hour * HOUR
        assert sums[moment] == truth[moment]
    assert sums[start + 2 * HOUR] > truth[start + 2 * HOUR]
    assert sums[start + 3 * HOUR] < truth[start + 3 * HOUR]  # from 03:40 on only
    cloud.release_late()
    released = await collect(energydata, channel, start, end)
    assert hourly(released) == truth


async def test_late_amounts_and_release(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """Late PV values are simply missing until released; then every hour is right."""
    cloud = simulator.energydata
    channel = (await channels_of(energydata))[PV_YIELD_ID]
    start, end = (
        datetime(2026, 3, 8, 9, tzinfo=UTC),
        datetime(2026, 3, 8, 15, tzinfo=UTC),
    )
    cloud.late(PV_YIELD_ID, start + 2 * HOUR, start + 3 * HOUR)
    readings = cloud.readings(PV_YIELD_ID, start, end)
    truth = amount_truth(readings, start, end, at_end=True)
    withheld = hourly(await collect(energydata, channel, start, end))
    # Stamped 11:00 … 11:55 are late: 11:00 closes hour 10, the others are hour
    # 11's, which keeps only the value stamped 12:00.
    value = dict(readings)
    assert value[epoch_ms(start + 2 * HOUR)] > 0
    assert withheld[start + HOUR] == truth[start + HOUR] - dec(
        value[epoch_ms(start + 2 * HOUR)]
    )
    assert withheld[start + 2 * HOUR] == dec(value[epoch_ms(start + 3 * HOUR)])
    for hour in (0, 3, 4, 5):
        assert withheld[start + hour * HOUR] == truth[start + hour * HOUR]
    cloud.release_late()
    assert hourly(await collect(energydata, channel, start, end)) == truth


async def test_batches_are_chronological_and_unique(
    simulator: Simulator,
    energydata: EnergydataProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many batches of a long span: each sorted and unique, together the whole truth.

    BATCH_ROWS is lowered to 500 so that five days of minute data (7,200
    readings, 7,199 differences) come in 15 batches of at most 500, and the
    history still equals the truth once they are joined.
    """
    monkeypatch.setattr(module, "BATCH_ROWS", 500)
    channel = (await channels_of(energydata))[MAIN_METER_ID]
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 6, tzinfo=UTC)
    batches = await batches_of(energydata, channel, start, end)
    assert len(batches) == 15
    assert all(len(batch) <= 500 for batch in batches)
    assert sum(len(batch) for batch in batches) == 7199
    assert_well_formed(batches, start, end)
    for earlier, later in zip(batches, batches[1:], strict=False):
        assert earlier[-1].end == later[0].start
    readings = simulator.energydata.readings(MAIN_METER_ID, start, end)
    assert hourly(i for batch in batches for i in batch) == register_truth(readings)


async def test_register_resets_and_duplicates_across_batches(
    stub: StubServer,
    make_provider: MakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decrease is a reset; a repeat, however late it comes, replaces its reading.

    The rows are put in time order before any difference is taken: the repeat of
    m[3] and the late repeat of m[1] (999) replace the readings first sent, so the
    steps are 100 → 999 (899), 999 → 103 (a reset), 103 → 107 (4), 107 → 2 (a
    reset) and 2 → 2.25 (0.25), in batches of at most BATCH_ROWS.
    """
    monkeypatch.setattr(module, "BATCH_ROWS", 2)
    provider = make_provider("energydata", api_url=f"{stub.url}/api/v1")
    channel = (await channels_of(provider))[MAIN_METER_ID]
    t0 = datetime(2026, 3, 9, 10, tzinfo=UTC)
    m = [epoch_ms(t0 + timedelta(minutes=k)) for k in range(6)]
    body = (
        f"65603,{m[0]},100\n65603,{m[1]},101\n65603,{m[2]},103\n"
        f"65603,{m[3]},106\n65603,{m[3]},107\n"  # repeated: the later one wins
        f"65603,{m[4]},2\n"  # a reset
        f"65603,{m[1]},999\n"  # a late repeat: it wins too
        f"65603,{m[5]},2.25\n"
    )

    async def values(_: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/csv")

    stub.on("GET", "/api/v1/datastreams/values", values)
    batches = await batches_of(provider, channel, t0, t0 + HOUR)
    assert all(0 < len(batch) <= 2 for batch in batches)
    assert [(i.start, i.value) for batch in batches for i in batch] == [
        (at(m[0]), 899.0),
        (at(m[2]), 4.0),
        (at(m[4]), 0.25),
    ]


async def test_negative_amount_is_invalid(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """An amount below zero is no amount of energy: the span is refused, not stored."""
    noon = datetime(2026, 3, 7, 12, tzinfo=UTC)
    simulator.energydata.overwrite(PV_YIELD_ID, epoch_ms(noon), -5.0)
    channel = (await channels_of(energydata))[PV_YIELD_ID]
    with pytest.raises(InvalidResponse):
        await collect(energydata, channel, noon - HOUR, noon + HOUR)


async def test_strings_and_other_datastreams_are_ignored(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """Rows of another datastream or with a string value make no interval."""
    provider = make_provider("energydata", api_url=f"{stub.url}/api/v1")
    channel = (await channels_of(provider))[PV_YIELD_ID]
    t0 = datetime(2026, 3, 9, 10, tzinfo=UTC)
    m = [epoch_ms(t0 + timedelta(minutes=k)) for k in range(1, 4)]

    async def values(_: web.Request) -> web.Response:
        return web.Response(
            text=f"65607,{m[0]},1\n65603,{m[1]},5\n65607,{m[1]},offline\n65607,{m[2]},3\n",
            content_type="text/csv",
        )

    stub.on("GET", "/api/v1/datastreams/values", values)
    intervals = await collect(provider, channel, t0, t0 + HOUR)
    assert [(i.end, i.value) for i in intervals] == [(at(m[0]), 1.0), (at(m[2]), 3.0)]
    assert provider.skipped_rows == 0


def test_truth_helpers_on_a_tiny_series() -> None:
    """The truth helpers themselves, on readings worked out by hand."""
    h = datetime(2026, 1, 1, tzinfo=UTC)
    readings: Readings = [
        (epoch_ms(h + timedelta(minutes=10)), 1.5),
        (epoch_ms(h + timedelta(minutes=50)), 2.25),
        (epoch_ms(h + timedelta(minutes=70)), 3.0),
        (epoch_ms(h + timedelta(minutes=130)), 4.125),
    ]
    assert register_truth(readings) == {
        h: Decimal("1.5"),  # 2.25 - 1.5 and 3.0 - 2.25
        h + HOUR: Decimal("1.125"),  # 4.125 - 3.0
    }
    assert amount_truth(readings, h, h + 3 * HOUR, at_end=True) == {
        h: Decimal("3.75"),
        h + HOUR: Decimal("3.0"),
        h + 2 * HOUR: Decimal("4.125"),
    }


# --------------------------------------------------------------------------- order


@pytest.mark.parametrize(
    ("stream_id", "meaning", "hold"),
    [
        (MAIN_METER_ID, "register", None),
        (MAIN_METER_ID, "register", 700),
        (PV_YIELD_ID, "amount_end", None),
        (PV_YIELD_ID, "amount_start", 100),
    ],
    ids=["register", "register-pieces", "amount-end", "amount-start-pieces"],
)
async def test_unsorted_answers_give_the_sorted_history(
    simulator: Simulator,
    make_provider: MakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    stream_id: int,
    meaning: str,
    hold: int | None,
) -> None:
    """Rows served in a random order give the very batches of the sorted answer.

    The simulator shuffles each whole answer (across its write chunks and our
    batches). With HOLD_ROWS lowered, two days do not fit one answer: the span
    is cut into several (a shuffled answer that overflows is cut at its median
    and asked again), and the history is still the same, joined batch to batch.
    """
    monkeypatch.setattr(module, "BATCH_ROWS", 250)
    if hold is not None:
        monkeypatch.setattr(module, "HOLD_ROWS", hold)
    provider = make_provider(
        "energydata",
        settings={
            "datastreams": [{"id": stream_id, "quantity": "energy", "meaning": meaning}]
        },
    )
    channel = (await channels_of(provider))[stream_id]
    start = datetime(2026, 3, 6, 0, 0, 30, tzinfo=UTC)
    end = start + timedelta(days=2)
    in_order = await batches_of(provider, channel, start, end)
    requests = len(simulator.log_for("energydata"))
    simulator.energydata.shuffle(11)
    shuffled = await batches_of(provider, channel, start, end)
    assert_well_formed(shuffled, start, end)
    for earlier, later in zip(shuffled, shuffled[1:], strict=False):
        assert earlier[-1].start < later[0].start
    flat = [i for batch in shuffled for i in batch]
    assert flat == [i for batch in in_order for i in batch]
    assert all(len(batch) <= 250 for batch in shuffled)
    readings = simulator.energydata.readings(stream_id, start, end)
    if meaning == "register":
        assert hourly(flat) == register_truth(readings)
        assert len(flat) == len(readings) - 1
    else:
        truth = amount_truth(readings, start, end, at_end=meaning == "amount_end")
        assert hourly(flat) == truth
    asked = len(simulator.log_for("energydata")) - requests
    assert (asked == 1) is (hold is None)
    assert provider.skipped_rows == 0


async def test_a_reading_arriving_late_is_put_in_its_place(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A register's reading served last but oldest splits the difference it lies in.

    Sorted, 10 → 11 → 13 → 16 are three steps; served with 11 last, the same three
    steps come, not 10 → 13 (a lost reading) and 13 → 11 (a false reset).
    """
    provider = make_provider("energydata", api_url=f"{stub.url}/api/v1")
    channel = (await channels_of(provider))[MAIN_METER_ID]
    t0 = datetime(2026, 3, 9, 10, tzinfo=UTC)
    m = [epoch_ms(t0 + timedelta(minutes=k)) for k in range(4)]
    body = f"65603,{m[0]},10\n65603,{m[2]},13\n65603,{m[3]},16\n65603,{m[1]},11\n"

    async def values(_: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/csv")

    stub.on("GET", "/api/v1/datastreams/values", values)
    intervals = await collect(provider, channel, t0, t0 + HOUR)
    assert [(i.start, i.end, i.value) for i in intervals] == [
        (at(m[0]), at(m[1]), 1.0),
        (at(m[1]), at(m[2]), 2.0),
        (at(m[2]), at(m[3]), 3.0),
    ]


async def test_more_rows_in_one_second_than_can_be_held(
    stub: StubServer, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second holding more than HOLD_ROWS rows cannot be ordered: InvalidResponse.

    The span is cut down to that second first (each answer asked again shorter),
    never past it: the requests stay few and end.
    """
    monkeypatch.setattr(module, "HOLD_ROWS", 3)
    provider = make_provider("energydata", api_url=f"{stub.url}/api/v1")
    channel = (await channels_of(provider))[PV_YIELD_ID]
    t0 = datetime(2026, 3, 9, 10, tzinfo=UTC)
    second = epoch_ms(t0 + timedelta(minutes=5))
    body = "".join(f"65607,{second + k},{k}\n" for k in range(5))
    asked: list[dict[str, str]] = []

    async def values(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        return web.Response(text=body, content_type="text/csv")

    stub.on("GET", "/api/v1/datastreams/values", values)
    with pytest.raises(InvalidResponse, match="within one second"):
        await collect(provider, channel, t0, t0 + HOUR)
    assert asked[-1]["from"] == "2026-03-09T10:05:00"
    assert asked[-1]["to"] == "2026-03-09T10:05:01"
    assert len(asked) < 10
