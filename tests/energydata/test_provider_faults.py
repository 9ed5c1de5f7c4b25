"""Energydata.dk under the simulator's faults on the values endpoint.

A 500 is CannotConnect (try later), a surprise 401 is AuthError (reauth), and a
broken body is never a crash: an HTML page sent as CSV is unreadable rows,
counted and warned about; rows missing a field are no values.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import logging
from typing import Any

import pytest

from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    CannotConnect,
    RateLimited,
)
from custom_components.cloud_energy_meters.providers.model import Channel
from custom_components.cloud_energy_meters.providers.transport import RATE_LIMIT_RETRIES
from tests.provider_factory import collect
from tests.simulator import Simulator
from tests.simulator.energydata import MAIN_METER_ID, PV_YIELD_ID

START = datetime(2026, 3, 9, 10, tzinfo=UTC)
VALUES = r"^/datastreams/values$"
LOGGER = "custom_components.cloud_energy_meters.providers.energydata"

type Call = Callable[[EnergydataProvider, dict[int, Channel]], Awaitable[Any]]


async def login(provider: EnergydataProvider, _: dict[int, Channel]) -> Any:
    """Sign in (a latest read)."""
    return await provider.async_login()


async def latest(provider: EnergydataProvider, channels: dict[int, Channel]) -> Any:
    """Read the latest value of every datastream."""
    return await provider.async_latest(list(channels.values()))


async def history(provider: EnergydataProvider, channels: dict[int, Channel]) -> Any:
    """Read an hour of the main meter."""
    return await collect(
        provider, channels[MAIN_METER_ID], START, START + timedelta(hours=1)
    )


CALLS: dict[str, Call] = {"login": login, "latest": latest, "history": history}


@pytest.fixture
async def channels(energydata: EnergydataProvider) -> dict[int, Channel]:
    """Return the demo channels by datastream id (no request)."""
    inventory = await energydata.async_discover([])
    return {int(c.ref[0]): c for c in inventory.channels}


@pytest.mark.parametrize(
    ("kind", "error"), [("http_500", CannotConnect), ("http_401", AuthError)]
)
@pytest.mark.parametrize("call", list(CALLS))
async def test_error_statuses(
    simulator: Simulator,
    energydata: EnergydataProvider,
    channels: dict[int, Channel],
    kind: str,
    error: type[Exception],
    call: str,
) -> None:
    """500 → CannotConnect, 401 → AuthError, on every use of the values endpoint."""
    simulator.faults.add(kind, cloud="energydata", path=VALUES)
    with pytest.raises(error):
        await CALLS[call](energydata, channels)
    assert simulator.faults.pending == []
    assert [r.status for r in simulator.log_for("energydata")] == [
        500 if kind == "http_500" else 401
    ]
    await CALLS[call](energydata, channels)  # the next request is fine again


@pytest.mark.parametrize("call", ["latest", "history"])
async def test_html_page_sent_as_csv(
    simulator: Simulator,
    energydata: EnergydataProvider,
    channels: dict[int, Channel],
    caplog: pytest.LogCaptureFixture,
    call: str,
) -> None:
    """200, CSV headers, an HTML body: every line skipped and counted, no data, no crash."""
    simulator.faults.add("malformed_json", cloud="energydata", path=VALUES)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = await CALLS[call](energydata, channels)
    if call == "history":
        assert result == []
    else:
        assert result.readings == {}
    assert simulator.faults.pending == []
    assert energydata.skipped_rows == 1  # the page is one line
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Energydata.dk sent 1 row(s) on /datastreams/values that were skipped: "
        "1 not id,timestamp,value"
    ]


async def test_rows_missing_fields(
    simulator: Simulator, energydata: EnergydataProvider, channels: dict[int, Channel]
) -> None:
    """Rows without a timestamp are unreadable; rows without a value give no value.

    The simulator strips the timestamp of even lines and the value of odd ones:
    of six latest lines, three are skipped and three are empty numbers, so no
    reading at all; an hour of PV yield (13 lines) keeps no interval either.
    """
    simulator.faults.add("missing_fields", cloud="energydata", path=VALUES)
    result = await latest(energydata, channels)
    assert result.readings == {}
    assert energydata.skipped_rows == 3
    simulator.faults.add("missing_fields", cloud="energydata", path=VALUES)
    intervals = await collect(
        energydata, channels[PV_YIELD_ID], START, START + timedelta(hours=1)
    )
    assert intervals == []
    lines = len(
        simulator.energydata.readings(PV_YIELD_ID, START, START + timedelta(hours=1))
    )
    assert lines == 13
    assert energydata.skipped_rows == 3 + 7  # lines 0, 2, … 12 have no timestamp


@pytest.mark.parametrize("call", list(CALLS))
async def test_a_429_waits_and_is_retried(
    simulator: Simulator,
    energydata: EnergydataProvider,
    channels: dict[int, Channel],
    call: str,
) -> None:
    """No limit is documented, yet a 429 may come: wait Retry-After, ask again, done."""
    simulator.faults.add("http_429", cloud="energydata", path=VALUES)
    await CALLS[call](energydata, channels)
    assert [r.status for r in simulator.log_for("energydata")] == [429, 200]
    assert energydata.state.limiter.throttled == 1


async def test_a_429_that_persists_is_rate_limited(
    simulator: Simulator, energydata: EnergydataProvider, channels: dict[int, Channel]
) -> None:
    """After the transport's retries a cloud still answering 429 is RateLimited."""
    simulator.faults.add("http_429", RATE_LIMIT_RETRIES + 1, cloud="energydata")
    with pytest.raises(RateLimited):
        await latest(energydata, channels)
    assert [r.status for r in simulator.log_for("energydata")] == [429] * (
        RATE_LIMIT_RETRIES + 1
    )


@pytest.mark.parametrize("call", list(CALLS))
async def test_a_hanging_answer_is_cannot_connect(
    simulator: Simulator,
    energydata: EnergydataProvider,
    channels: dict[int, Channel],
    call: str,
) -> None:
    """A values request that gets no answer fails within the timeout, then recovers."""
    simulator.faults.timeout_seconds = 3
    simulator.faults.add("timeout", cloud="energydata", path=VALUES)
    energydata._transport.timeout = 0.3
    with pytest.raises(CannotConnect):
        await CALLS[call](energydata, channels)
    await CALLS[call](energydata, channels)
