"""Energydata.dk's streamed CSV, record by record: blank, overlong and unclosed lines.

The values answer is read line by line as it arrives (never whole). A line may be
blank, longer than aiohttp's reader buffer (512 KiB by default), or open a quoted
value that is never closed; each must cost at most one counted row, never the rows
after it and never the whole answer. A stub serves the exact bytes.
"""

from datetime import UTC, datetime, timedelta

from aiohttp import web
import pytest

from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.energydata_csv import (
    MAX_RECORD,
    parse_line,
)
from custom_components.cloud_energy_meters.providers.model import Channel, Reading
from tests.provider_factory import MakeProvider, collect, stub_channels
from tests.simulator.clock import epoch_ms
from tests.simulator.energydata import BATTERY_STATE_ID, PV_YIELD_ID
from tests.stub import StubServer

VALUES = "/api/v1/datastreams/values"
T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
MINUTE_MS = 60_000
M = [epoch_ms(T0) + k * MINUTE_MS for k in range(1, 6)]
OVERLONG = 3 * 2**20
"""A line far longer than aiohttp's reader holds (twice its 256 KiB read size)."""


def at(ms: int) -> datetime:
    """Return the aware UTC instant of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def serve(stub: StubServer, body: bytes) -> None:
    """Answer every values request with this CSV body."""

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body, headers={"Content-Type": "text/csv; charset=UTF-8"}
        )

    stub.on("GET", VALUES, handler)


async def pv_amounts(
    provider: EnergydataProvider, channels: dict[int, Channel]
) -> list[tuple[datetime, float]]:
    """Return (end, value) of every PV interval of the hour after T0."""
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    return [(i.end, i.value) for i in intervals]


# --------------------------------------------------------------------------- blank


@pytest.mark.parametrize("line", ["", " ", "   \t ", "\t"])
def test_a_blank_line_is_no_row(line: str) -> None:
    """Nothing but whitespace is no `id,epoch_ms,value` row, and no crash."""
    assert parse_line(line) is None


async def test_whitespace_lines_between_rows(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """Lines of spaces or tabs are blank, like empty ones: no row, nothing skipped.

    The warning about skipped rows is for data that was lost; padding is not.
    """
    provider, channels = await stub_channels(make_provider, stub)
    serve(
        stub,
        (f"65607,{M[0]},1\n   \n65607,{M[1]},2\n\t\r\n\n65607,{M[2]},3\n").encode(),
    )
    assert await pv_amounts(provider, channels) == [
        (at(M[0]), 1.0),
        (at(M[1]), 2.0),
        (at(M[2]), 3.0),
    ]
    assert provider.skipped_rows == 0


# --------------------------------------------------------------------------- overlong


async def test_a_line_longer_than_the_reader_buffer_is_one_skipped_row(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A 3 MiB line is skipped to its end as one row; the rows after it are read.

    aiohttp refuses a line longer than its buffer (LineTooLong), several times
    over for a line this long; the answer must go on at the next line, not
    end there (losing the rest of the span) nor fail as a whole.
    """
    provider, channels = await stub_channels(make_provider, stub)
    serve(
        stub,
        (
            f"65607,{M[0]},1\n"
            f"65607,{M[1]},{'9' * OVERLONG}\n"
            f"65607,{M[2]},3\n"
            f"65607,{M[3]},4\n"
        ).encode(),
    )
    assert await pv_amounts(provider, channels) == [
        (at(M[0]), 1.0),
        (at(M[2]), 3.0),
        (at(M[3]), 4.0),
    ]
    assert provider.skipped_rows == 1


async def test_an_overlong_last_line_without_a_line_break(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """An answer ending inside an overlong line: the rows before it, one skipped.

    The tail of the line arrives without a line break (the answer ends): it is
    still the same unreadable record, counted once, and the latest reading is
    the last readable one.
    """
    provider, channels = await stub_channels(make_provider, stub)
    serve(
        stub,
        f"65607,{M[0]},1\n65607,{M[1]},2\n65607,{M[2]},{'x' * OVERLONG}".encode(),
    )
    latest = await provider.async_latest([channels[PV_YIELD_ID]])
    assert latest.readings == {channels[PV_YIELD_ID].key: Reading(2.0, at(M[1]))}
    assert provider.skipped_rows == 1


# --------------------------------------------------------------------------- quotes


async def test_a_quote_open_at_the_end_of_the_answer(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A value opening a quote on the last line, with no line break: one skipped row.

    The rows before it are kept; the open quote must not swallow them or be
    read as a value.
    """
    provider, channels = await stub_channels(make_provider, stub)
    serve(
        stub,
        f'65607,{M[0]},1\n65607,{M[1]},2\n65607,{M[2]},"never closed'.encode(),
    )
    assert await pv_amounts(provider, channels) == [
        (at(M[0]), 1.0),
        (at(M[1]), 2.0),
    ]
    assert provider.skipped_rows == 1


async def test_a_quoted_value_longer_than_max_record(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """An open quote is followed at most MAX_RECORD characters, then given up.

    A multi-line text value below the limit is read whole; one whose quote is
    still open past the limit is one skipped row, and the rows after it are
    read again instead of being swallowed into an endless value.
    """
    provider, channels = await stub_channels(make_provider, stub)
    state = channels[BATTERY_STATE_ID]
    third = MAX_RECORD // 3
    fits = "\n".join(["a" * third, "b" * third, "c" * 100])
    serve(stub, f'70002,{M[0]},"{fits}"\n'.encode())
    latest = await provider.async_latest([state])
    assert latest.readings == {state.key: Reading(fits, at(M[0]))}
    assert provider.skipped_rows == 0

    too_long = "\n".join(["a" * third, "b" * third, "c" * (third + 1000)])
    serve(
        stub,
        f'70002,{M[0]},"{too_long}\n70002,{M[1]},idle\n70002,{M[2]},charging\n'.encode(),
    )
    latest = await provider.async_latest([state])
    assert latest.readings == {state.key: Reading("charging", at(M[2]))}
    assert provider.skipped_rows == 1
