"""Energydata.dk's streamed CSV: edge cases of the answer, and memory on a year of data.

The values answer is headerless `id,epoch_ms,value` CSV streamed in chunks. It is
parsed line by line as it arrives: an empty answer, a missing final newline, CR LF,
rows that do not parse (counted, one warning per answer), duplicate timestamps
(the last one wins), quoted values with commas or line breaks and overlong lines
must all be handled without holding the answer. A year of minute data (about
525,600 rows, 16 MB) is parsed with a small, bounded footprint.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
import logging
from pathlib import Path
import time
import tracemalloc

from aiohttp import ClientSession, web
import pytest

from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.errors import (
    CannotConnect,
    InvalidResponse,
)
from custom_components.cloud_energy_meters.providers.model import Interval, Reading
from tests.provider_factory import (
    EDK_DATASTREAMS,
    MakeProvider,
    build_provider,
    collect,
    stub_channels,
)
from tests.simulator import Simulator
from tests.simulator.clock import epoch_ms
from tests.simulator.energydata import (
    BATTERY_STATE_ID,
    GARBAGE_KINDS,
    GAS_METER_ID,
    MAIN_METER_ID,
    PREFIX,
    PV_YIELD_ID,
)
from tests.simulator.process import simulator_process
from tests.stub import StubServer

ROOT = Path(__file__).resolve().parents[2]
VALUES = "/api/v1/datastreams/values"
T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
MS0 = epoch_ms(T0)
MINUTE_MS = 60_000
LOGGER = "custom_components.cloud_energy_meters.providers.energydata"


def at(ms: int) -> datetime:
    """Return the aware UTC instant of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def serve_csv(stub: StubServer, body: bytes, content_type: str = "text/csv") -> None:
    """Answer every values request with this body, in one piece."""

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body, headers={"Content-Type": f"{content_type}; charset=UTF-8"}
        )

    stub.on("GET", VALUES, handler)


def serve_chunks(stub: StubServer, chunks: Sequence[bytes], pause: float) -> None:
    """Answer values requests with a chunked body, pausing before each chunk."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/csv"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in chunks:
            await asyncio.sleep(pause)
            await response.write(chunk)
        await response.write_eof()
        return response

    stub.on("GET", VALUES, handler)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Return the warnings the Energydata.dk provider logged."""
    return [
        r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


# --------------------------------------------------------------------------- the simulator


async def test_empty_answers(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """A span without data yields nothing (no batch at all), and nothing is skipped."""
    channels = {
        int(c.ref[0]): c for c in (await energydata.async_discover([])).channels
    }
    start = datetime(2024, 6, 1, tzinfo=UTC)  # before the simulator's data
    batches = [
        batch
        async for batch in energydata.async_history(
            channels[MAIN_METER_ID], start, start + timedelta(days=1)
        )
    ]
    assert batches == []
    record = simulator.log_for("energydata")[-1]
    assert (record.status, record.query) == (
        200,
        {"ids": "65603", "from": "2024-06-01T00:00:00", "to": "2024-06-02T00:00:00"},
    )
    assert energydata.skipped_rows == 0


async def test_garbage_rows_are_skipped_counted_and_warned_once(
    simulator: Simulator,
    energydata: EnergydataProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seven garbage lines among 61 rows: the same intervals as a clean answer.

    The simulator cycles through GARBAGE_KINDS; the blank line among them is no
    row and is not counted, the six others are, in one warning for the answer.
    Garbage in a latest answer is counted the same way.
    """
    cloud = simulator.energydata
    channels = {
        int(c.ref[0]): c for c in (await energydata.async_discover([])).channels
    }
    main = channels[MAIN_METER_ID]
    clean = await collect(energydata, main, T0, T0 + timedelta(hours=1))
    assert energydata.skipped_rows == 0
    cloud.garbage(MAIN_METER_ID, 7)
    with caplog.at_level(logging.WARNING):
        dirty = await collect(energydata, main, T0, T0 + timedelta(hours=1))
    assert dirty == clean
    readings = cloud.readings(MAIN_METER_ID, T0, T0 + timedelta(hours=1))
    assert len(clean) == len(readings) - 1 == 59
    served = [GARBAGE_KINDS[i % len(GARBAGE_KINDS)] for i in range(7)]
    assert energydata.skipped_rows == len([kind for kind in served if kind]) == 6
    assert [r.getMessage() for r in warnings_of(caplog)] == [
        "Energydata.dk sent 6 row(s) on /datastreams/values that were skipped: "
        "6 not id,timestamp,value"
    ]

    caplog.clear()
    cloud.garbage(GAS_METER_ID, 2)
    with caplog.at_level(logging.WARNING):
        latest = await energydata.async_latest([channels[GAS_METER_ID]])
    ts, value = cloud.latest(GAS_METER_ID)
    assert latest.readings == {
        channels[GAS_METER_ID].key: Reading(value=float(value), time=at(ts))
    }
    assert energydata.skipped_rows == 8
    assert [r.args[1] for r in warnings_of(caplog)] == [2]


async def test_overwritten_reading_wins(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """A reading the cloud overwrote (same timestamp) is served and used, not the old."""
    cloud = simulator.energydata
    channels = {
        int(c.ref[0]): c for c in (await energydata.async_discover([])).channels
    }
    pv = channels[PV_YIELD_ID]
    noon = datetime(2026, 3, 9, 12, tzinfo=UTC)
    cloud.overwrite(PV_YIELD_ID, epoch_ms(noon), 4321.5)
    intervals = await collect(
        energydata, pv, noon - timedelta(minutes=10), noon + timedelta(minutes=10)
    )
    assert Interval(noon - timedelta(milliseconds=1), noon, 4321.5) in intervals
    assert len([i for i in intervals if i.end == noon]) == 1


# --------------------------------------------------------------------------- a stub


@pytest.mark.parametrize(
    "ending",
    [b"\n", b"", b"\r\n", b"\n\n\n"],
    ids=["lf", "none", "crlf", "blank-lines"],
)
async def test_answer_endings(
    stub: StubServer, make_provider: MakeProvider, ending: bytes
) -> None:
    """The last row counts whether or not a line break follows it; CR LF is fine too."""
    provider, channels = await stub_channels(make_provider, stub)
    separator = b"\r\n" if ending == b"\r\n" else b"\n"
    rows = [
        f"{PV_YIELD_ID},{MS0 + k * 300_000},{10 * k}.5".encode() for k in range(1, 4)
    ]
    serve_csv(stub, separator.join(rows) + ending)
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.end, i.value) for i in intervals] == [
        (at(MS0 + k * 300_000), 10 * k + 0.5) for k in range(1, 4)
    ]
    serve_csv(stub, rows[-1] + ending)
    latest = await provider.async_latest([channels[PV_YIELD_ID]])
    assert latest.readings[channels[PV_YIELD_ID].key].value == 30.5
    assert provider.skipped_rows == 0


async def test_empty_body_from_a_stub(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A 200 with no body at all is no data, for latest and history alike."""
    provider, channels = await stub_channels(make_provider, stub)
    serve_csv(stub, b"")
    assert (await provider.async_latest(list(channels.values()))).readings == {}
    assert (
        await collect(provider, channels[MAIN_METER_ID], T0, T0 + timedelta(hours=1))
        == []
    )
    assert provider.skipped_rows == 0


async def test_duplicate_timestamps_last_one_wins(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """An answer repeating a timestamp: the later line wins, for every meaning.

    Register 65603: the repeated reading replaces the earlier one, and so does
    the difference ending there (13 − 10, not 12 − 10). Amount 65607: one
    interval with the later value. Latest: the later line.
    """
    provider, channels = await stub_channels(make_provider, stub)
    m = [MS0 + k * MINUTE_MS for k in range(1, 5)]
    serve_csv(
        stub,
        (
            f"65603,{m[0]},10\n65603,{m[1]},12\n65603,{m[1]},13\n"
            f"65603,{m[2]},15\n65603,{m[2]},14.5\n65603,{m[3]},16\n"
        ).encode(),
    )
    register = await collect(
        provider, channels[MAIN_METER_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.start, i.end, i.value) for i in register] == [
        (at(m[0]), at(m[1]), 3.0),
        (at(m[1]), at(m[2]), 1.5),
        (at(m[2]), at(m[3]), 1.5),
    ]
    serve_csv(stub, f"65607,{m[1]},5\n65607,{m[1]},7.5\n65607,{m[2]},1\n".encode())
    amounts = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.end, i.value) for i in amounts] == [(at(m[1]), 7.5), (at(m[2]), 1.0)]
    serve_csv(stub, f"65607,{m[1]},5\n65607,{m[1]},7.5\n".encode())
    latest = await provider.async_latest([channels[PV_YIELD_ID]])
    assert latest.readings[channels[PV_YIELD_ID].key] == Reading(7.5, at(m[1]))


async def test_register_duplicate_that_turns_into_a_reset(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A repeated reading below its predecessor makes that step a reset: no interval."""
    provider, channels = await stub_channels(make_provider, stub)
    m = [MS0 + k * MINUTE_MS for k in range(3)]
    serve_csv(
        stub,
        f"65603,{m[0]},10\n65603,{m[1]},12\n65603,{m[1]},1\n65603,{m[2]},2\n".encode(),
    )
    register = await collect(
        provider, channels[MAIN_METER_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.start, i.value) for i in register] == [(at(m[1]), 1.0)]


async def test_quoted_values(
    stub: StubServer,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Quotes are undone: commas, doubled quotes and line breaks inside a value.

    A quoted number is a number; a string in a numeric datastream's history is
    no interval (and no unreadable row); rows around a multi-line value are kept.
    """
    provider, channels = await stub_channels(make_provider, stub)
    m = [MS0 + k * MINUTE_MS for k in range(1, 5)]
    serve_csv(
        stub,
        (
            f'70002,{m[0]},"balancing cells 3,4"\n'
            f'70002,{m[1]},"fault ""E42"", see log"\n'
            f'70002,{m[2]},"line one\nline two,\r\nline three"\n'
            f'65607,{m[0]},"12.5"\n'
            f'65607,{m[1]},"n/a, offline"\n'
            f"65607,{m[2]},2\n"
        ).encode(),
    )
    wanted = [channels[BATTERY_STATE_ID], channels[PV_YIELD_ID]]
    # Latest answers hold one line per datastream; here the stub repeats them, so
    # the last line of each datastream is its value.
    latest = await provider.async_latest(wanted)
    assert latest.readings == {
        channels[BATTERY_STATE_ID].key: Reading(
            "line one\nline two,\r\nline three", at(m[2])
        ),
        channels[PV_YIELD_ID].key: Reading(2.0, at(m[2])),
    }
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.end, i.value) for i in intervals] == [(at(m[0]), 12.5), (at(m[2]), 2.0)]
    serve_csv(stub, f'70002,{m[0]},"balancing cells 3,4"\n'.encode())
    assert (await provider.async_latest(wanted)).readings == {
        channels[BATTERY_STATE_ID].key: Reading("balancing cells 3,4", at(m[0]))
    }
    serve_csv(stub, f'70002,{m[1]},"fault ""E42"", see log"\n'.encode())
    assert (await provider.async_latest(wanted)).readings == {
        channels[BATTERY_STATE_ID].key: Reading('fault "E42", see log', at(m[1]))
    }
    assert provider.skipped_rows == 0
    assert warnings_of(caplog) == []


async def test_unterminated_quote_and_overlong_lines_are_skipped(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A quote never closed, or a line longer than the reader holds, is one bad row.

    Neither costs the rows around it, and neither escapes as anything but a count.
    """
    provider, channels = await stub_channels(make_provider, stub)
    m = [MS0 + k * MINUTE_MS for k in range(1, 5)]
    serve_csv(
        stub,
        (
            f"65607,{m[0]},1\n"
            f"65607,{m[1]},{'9' * 300_000}\n"
            f"65607,{m[2]},3\n"
            f'65607,{m[3]},"never closed\n'
        ).encode(),
    )
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.end, i.value) for i in intervals] == [(at(m[0]), 1.0), (at(m[2]), 3.0)]
    assert provider.skipped_rows == 2
    serve_csv(stub, f"65607,{m[0]},{'x' * 300_000}".encode())
    assert (await provider.async_latest([channels[PV_YIELD_ID]])).readings == {}
    assert provider.skipped_rows == 3


@pytest.mark.parametrize(
    "line",
    [
        "65607,99999999999999999999,1",
        "65607,-99999999999999999999,1",
        "65607,1e12,1",
        "65607,,1",
        "x,1,1",
    ],
)
async def test_timestamps_out_of_range_are_unreadable_rows(
    stub: StubServer, make_provider: MakeProvider, line: str
) -> None:
    """A timestamp no datetime can hold is a bad row, not a crash of the whole span."""
    provider, channels = await stub_channels(make_provider, stub)
    serve_csv(stub, f"{line}\n65607,{MS0 + MINUTE_MS},2\n".encode())
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.end, i.value) for i in intervals] == [(at(MS0 + MINUTE_MS), 2.0)]
    assert provider.skipped_rows == 1


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
async def test_json_or_html_instead_of_csv(
    stub: StubServer, make_provider: MakeProvider, content_type: str
) -> None:
    """A success answered as JSON or HTML is not the documented CSV: InvalidResponse."""
    provider, channels = await stub_channels(make_provider, stub)
    serve_csv(stub, b'{"data": []}', content_type)
    with pytest.raises(InvalidResponse):
        await provider.async_latest(list(channels.values()))


async def test_slow_stream_is_read_to_its_end(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A long answer may take longer than the request timeout, if it keeps flowing.

    Scaled down: a 0.3 s timeout, rows arriving every 0.1 s for about a second
    are all read; a stream that stalls longer than the timeout is CannotConnect.
    """
    provider, channels = await stub_channels(make_provider, stub)
    provider._transport.timeout = 0.3
    rows = [f"65607,{MS0 + k * MINUTE_MS},{k}\n".encode() for k in range(1, 11)]
    serve_chunks(stub, rows, pause=0.1)
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [i.value for i in intervals] == [float(k) for k in range(1, 11)]
    serve_chunks(stub, rows[:2], pause=0.6)
    with pytest.raises(CannotConnect):
        await collect(provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1))


# --------------------------------------------------------------------------- a year


@pytest.fixture
async def simulator_url(loopback: None) -> AsyncIterator[str]:
    """Run the simulator in its own process (as scripts/bench does); yield its URL."""
    async with simulator_process() as root:
        yield f"{root}{PREFIX}"


async def _history_peak(
    provider: EnergydataProvider, start: datetime, days: int
) -> tuple[int, int, int, float]:
    """Return intervals, batches, this process's peak bytes and seconds of a span.

    Each batch is dropped once counted, as a store-as-you-go consumer does.
    Batches are chronological and join up: each starts where the last one ended.
    """
    channel = (await provider.async_discover([])).channels[0]
    count = batches = 0
    previous_end: datetime | None = None
    tracemalloc.start()
    began = time.monotonic()
    try:
        async for batch in provider.async_history(
            channel, start, start + timedelta(days=days)
        ):
            batches += 1
            count += len(batch)
            assert batch[0].start == previous_end or previous_end is None
            assert all(a.end == b.start for a, b in zip(batch, batch[1:], strict=False))
            previous_end = batch[-1].end
            del batch
        seconds = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, batches, peak, seconds


async def test_a_year_of_minute_data_in_bounded_memory(
    simulator_url: str, session: ClientSession
) -> None:
    """525,599 differences of 65603 over 2025, in the memory a month takes.

    The simulator runs in another process, so tracemalloc sees the provider
    alone (and aiohttp's receive buffers). An answer is held (compactly) until
    it is in time order, so the peak is that of one answer of at most HOLD_ROWS
    rows and one batch: under a sixth of the year's 16 MB answer, and flat, no
    more than a 30-day span (one answer) takes.
    """
    provider = build_provider(
        "energydata",
        session,
        api_url=simulator_url,
        settings={"datastreams": [EDK_DATASTREAMS[0]]},
    )
    start = datetime(2025, 1, 1, tzinfo=UTC)
    _, _, month_peak, _ = await _history_peak(provider, start, 30)
    count, batches, peak, seconds = await _history_peak(provider, start, 365)
    # One reading a minute from 2025-01-01T00:00 on, up to 2026-01-01T00:00:00.000
    # inclusive (a reading exactly then, without jitter, would be one more); the
    # first reading is a baseline only.
    end = start + timedelta(days=365)
    edge = Simulator().energydata.readings(MAIN_METER_ID, end, end)
    assert count == 525_600 + len(edge) - 1
    assert batches > 100
    assert provider.skipped_rows == 0
    answer_bytes = 16_000_000
    report = (
        f"peak {peak / 1e6:.2f} MB in {seconds:.1f} s, 30 days {month_peak / 1e6:.2f}"
    )
    assert peak < answer_bytes / 6, report
    # Flat: a year holds no more than twice a month's peak (what varies is how much
    # aiohttp buffers ahead while a busy machine converts the previous answer).
    assert peak < 2 * month_peak, report
