"""Energydata.dk rows are checked: finite, in range, a known time; differences exact.

A pandas-backed cloud writes `nan`, a register swapped out writes `inf`; neither
may reach an interval or a reading. A refused row is counted and said once per
call, with the cloud, the endpoint and why. Register differences are exact to
the decimals the readings were written with, without Decimal for every row.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
import logging
import math
import random

from aiohttp import web
import pytest

from custom_components.cloud_energy_meters.providers import energydata as module
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.energydata_csv import (
    MAX_VALUE,
    Piece,
    check,
    difference,
    parse_line,
)
from custom_components.cloud_energy_meters.providers.errors import InvalidResponse
from custom_components.cloud_energy_meters.providers.model import Channel, Reading
from tests.provider_factory import MakeProvider, collect, stub_channels
from tests.simulator import Simulator
from tests.simulator.clock import epoch_ms
from tests.simulator.energydata import BATTERY_STATE_ID, MAIN_METER_ID, PV_YIELD_ID
from tests.stub import StubServer

VALUES = "/api/v1/datastreams/values"
LOGGER = "custom_components.cloud_energy_meters.providers.energydata"
T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
M = [epoch_ms(T0) + k * 60_000 for k in range(8)]
HOSTILE = ["nan", "NaN", "inf", "-Infinity", "1e999", "1e12", "-1e12", "2.5e15"]


def at(ms: int) -> datetime:
    """Return the aware UTC instant of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def serve(stub: StubServer, body: str) -> None:
    """Answer every values request with this CSV body."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/csv")

    stub.on("GET", VALUES, handler)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the warnings the Energydata.dk provider logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_value_no_meter_produces_is_refused(text: str) -> None:
    """NaN, infinities and magnitudes of MAX_VALUE or more: refused, with why."""
    reason = "out of range" if math.isfinite(float(text)) else "not finite"
    assert check(["65607", str(M[0]), text]) == reason
    assert parse_line(f"65607,{M[0]},{text}") is None
    assert abs(float(text)) >= MAX_VALUE or not math.isfinite(float(text))


def test_the_largest_value_a_meter_produces_is_kept() -> None:
    """Just below MAX_VALUE is a value; text values stay text."""
    row = parse_line(f"65607,{M[0]},999999999999.5")
    assert row is not None
    assert row.value == 999_999_999_999.5
    row = parse_line(f"70002,{M[0]},charging")
    assert row is not None
    assert row.value == "charging"


async def test_hostile_values_never_reach_an_interval(
    stub: StubServer, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Every hostile value is one refused row; the others make the intervals.

    A register's difference bridges the refused reading (nothing is lost); one
    warning for the call names the endpoint and each reason with its count.
    """
    provider, channels = await stub_channels(make_provider, stub)
    rows = [f"65603,{M[0]},100.5"]
    rows += [f"65603,{M[0] + 1000 + k},{text}" for k, text in enumerate(HOSTILE)]
    rows += [f"65603,{M[1]},101", "65603,99999999999999999,102", f"65603,{M[2]},102"]
    serve(stub, "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        intervals = await collect(
            provider, channels[MAIN_METER_ID], T0, T0 + timedelta(hours=1)
        )
    assert [(i.start, i.end, i.value) for i in intervals] == [
        (at(M[0]), at(M[1]), 0.5),
        (at(M[1]), at(M[2]), 1.0),
    ]
    assert all(math.isfinite(i.value) for i in intervals)
    assert provider.skipped_rows == len(HOSTILE) + 1
    assert warnings_of(caplog) == [
        "Energydata.dk sent 9 row(s) on /datastreams/values that were skipped: "
        "5 not finite, 4 out of range"
    ]


async def test_hostile_values_never_reach_a_reading(
    stub: StubServer, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Latest values: a datastream whose only value is NaN has no reading."""
    provider, channels = await stub_channels(make_provider, stub)
    serve(stub, f"65607,{M[1]},nan\n65603,{M[1]},-inf\n70002,{M[1]},idle\n")
    wanted: list[Channel] = [
        channels[PV_YIELD_ID],
        channels[MAIN_METER_ID],
        channels[BATTERY_STATE_ID],
    ]
    with caplog.at_level(logging.WARNING):
        latest = await provider.async_latest(wanted)
    assert latest.readings == {
        channels[BATTERY_STATE_ID].key: Reading("idle", at(M[1]))
    }
    assert warnings_of(caplog) == [
        "Energydata.dk sent 2 row(s) on /datastreams/values that were skipped: "
        "2 not finite"
    ]


async def test_a_nan_in_an_mqtt_message_is_no_reading(
    energydata: EnergydataProvider,
) -> None:
    """JSON allows NaN: a pushed NaN or infinity is no reading either."""
    channel = next(
        c
        for c in (await energydata.async_discover([])).channels
        if c.ref[0] == str(PV_YIELD_ID)
    )
    by_topic = {"dtu-b101/pv/yield": PV_YIELD_ID}
    for value in ("NaN", "Infinity", "1e13"):
        payload = f'{{"timestamp": {M[0]}, "value": {value}}}'.encode()
        try:
            readings = energydata._parse_message(
                "dtu-b101/pv/yield", payload, by_topic, {PV_YIELD_ID: channel}
            )
        except InvalidResponse:  # unreadable: warned about and ignored
            readings = {}
        assert readings == {}


# --------------------------------------------------------------------------- exact


def exact(before: float, after: float) -> float:
    """Return the register difference as Decimal computes it (the former way)."""
    return float(Decimal(repr(after)) - Decimal(repr(before)))


@pytest.mark.parametrize(
    ("before", "after", "places"),
    [
        (0.1, 0.3, 1),
        (512345.678, 512345.679, 3),
        (99999999999.999, 99999999999.999 + 0.001, 3),  # too many digits: Decimal
        (1e-05, 3e-05, -1),  # written with an exponent: Decimal
        (1.5, 1.25, 2),
        (48213000.0, 48213333.0, 0),
        (0.1234567890123456, 0.2234567890123456, 16),  # beyond 14 digits: Decimal
    ],
)
def test_difference_is_exact(before: float, after: float, places: int) -> None:
    """Rounded where the float error cannot reach the decimals, Decimal elsewhere."""
    assert difference(before, after, places) == exact(before, after)
    assert exact(0.1, 0.3) != 0.3 - 0.1  # what a plain subtraction gives


def test_difference_equals_decimal_on_many_values() -> None:
    """200,000 random register pairs of 0 to 6 decimals: each equals the Decimal way."""
    draw = random.Random(20261205)
    for _ in range(200_000):
        places = draw.randint(0, 6)
        scale = 10**places
        low = draw.randint(0, 10 ** draw.randint(1, 13 - places))
        high = low + draw.randint(0, 10 ** draw.randint(0, 6))
        before, after = low / scale, high / scale
        assert float(repr(before)) == before
        assert difference(before, after, places) == exact(before, after), (
            before,
            after,
        )


def test_a_piece_counts_the_decimals_written() -> None:
    """A chunk's places are the most decimals written; an exponent makes them unknown."""
    piece = Piece()
    t = 1_764_950_400_000  # 2025-12-05, in epoch milliseconds
    rows = [
        ["1", str(t + 1), "2.5"],
        ["1", str(t + 2), "3.125"],
        ["1", str(t + 3), "4"],
    ]
    piece.add(rows, 1, t, t + 10, {})
    assert piece.places == 3
    piece.add([["1", str(t + 4), "5e-3"]], 1, t, t + 10, {})
    assert piece.places == -1
    assert list(piece.stamps) == [t + 1, t + 2, t + 3, t + 4]


# --------------------------------------------------------------------------- records


def test_a_line_csv_cannot_read_is_no_row() -> None:
    """A carriage return inside an unquoted value is no record."""
    assert parse_line("65607,1,1\r5") is None


async def test_odd_lines_among_many_cost_one_row_each(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A line csv refuses, or one past MAX_RECORD, is one skipped row each.

    The long line is short enough to be held until it ends (it is not dropped
    on the way); the rows around both are read.
    """
    provider, channels = await stub_channels(make_provider, stub)
    serve(
        stub,
        f"65607,{M[1]},1\n65607,{M[2]},2\r5\n65607,{M[3]},{'7' * 100_000}\n"
        f"65607,{M[4]},4\n",
    )
    intervals = await collect(
        provider, channels[PV_YIELD_ID], T0, T0 + timedelta(hours=1)
    )
    assert [(i.end, i.value) for i in intervals] == [(at(M[1]), 1.0), (at(M[4]), 4.0)]
    assert provider.skipped_rows == 2


async def test_register_values_in_exponent_notation_are_exact(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """Values written with an exponent are subtracted by Decimal, exactly.

    A span of a single reading has no difference at all.
    """
    provider, channels = await stub_channels(make_provider, stub)
    serve(stub, f"65603,{M[1]},1e-1\n65603,{M[2]},3E-1\n65603,{M[3]},4.5e-1\n")
    intervals = await collect(
        provider, channels[MAIN_METER_ID], T0, T0 + timedelta(hours=1)
    )
    assert [i.value for i in intervals] == [0.2, 0.15]
    serve(stub, f"65603,{M[1]},1.5\n")
    assert (
        await collect(provider, channels[MAIN_METER_ID], T0, T0 + timedelta(hours=1))
        == []
    )


async def test_a_history_left_early_closes_the_answer_read_ahead(
    simulator: Simulator,
    make_provider: MakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A consumer that stops after the first batch: the next answer is let go.

    With HOLD_ROWS lowered, the next answer is already streaming when the first
    batch is handed on; closing the history cancels it, and nothing waits.
    """
    monkeypatch.setattr(module, "HOLD_ROWS", 500)
    provider = make_provider("energydata")
    channel = next(
        c
        for c in (await provider.async_discover([])).channels
        if c.ref[0] == str(MAIN_METER_ID)
    )
    start = datetime(2026, 3, 6, tzinfo=UTC)
    history = provider.async_history(channel, start, start + timedelta(days=2))
    first = await anext(history)
    assert first
    await history.aclose()
    assert len(simulator.log_for("energydata")) >= 2
    # The account's turns are free again: a latest read goes through.
    assert (await provider.async_latest([channel])).readings
