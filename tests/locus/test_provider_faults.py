"""Locus Energy under the simulator's faults: each failure becomes the right error.

Server errors are CannotConnect (try later), broken or incomplete answers are
InvalidResponse (never zeros), and 429 is absorbed by waiting and retrying.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import time
from typing import Any

from aiohttp import web
import pytest

from custom_components.cloud_energy_meters.providers.errors import (
    CannotConnect,
    InvalidResponse,
    RateLimited,
)
from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Inventory,
    Kind,
    Quantity,
)
from custom_components.cloud_energy_meters.providers.transport import RATE_LIMIT_RETRIES
from tests.provider_factory import MakeProvider, collect
from tests.simulator import Simulator
from tests.simulator.locus import MAPLE_SITE_ID
from tests.stub import StubServer

# The document's 429 answer, verbatim.
TOO_MANY = {"message": "Too many requests", "statusCode": 429}
SITE = str(MAPLE_SITE_ID)
HISTORY_START = datetime(2026, 7, 1, tzinfo=UTC)

type Call = Callable[[LocusProvider, Inventory], Awaitable[Any]]


async def list_sites(provider: LocusProvider, _: Inventory) -> Any:
    """List the partner's sites."""
    return await provider.async_list_sites()


async def discover(provider: LocusProvider, _: Inventory) -> Any:
    """Discover Maple Street."""
    return await provider.async_discover([SITE])


async def latest(provider: LocusProvider, inventory: Inventory) -> Any:
    """Read every channel of Maple Street, without alerts."""
    return await provider.async_latest(inventory.channels)


async def alerts(provider: LocusProvider, _: Inventory) -> Any:
    """Read Maple Street's alerts only."""
    return await provider.async_latest([], [SITE])


async def history(provider: LocusProvider, inventory: Inventory) -> Any:
    """Read a day of Maple Street's production."""
    channel = next(c for c in inventory.channels if c.statistic == f"{SITE}_production")
    return await collect(
        provider, channel, HISTORY_START, HISTORY_START + timedelta(days=1)
    )


CALLS: dict[str, tuple[str, Call]] = {
    "sites": (r"/partners/\d+/sites$", list_sites),
    "components": (r"/sites/\d+/components$", discover),
    "site-dataavailable": (r"/sites/\d+/dataavailable$", discover),
    "component-dataavailable": (r"/components/\d+/dataavailable$", discover),
    "latest": (r"/components/\d+/data$", latest),
    "site-data": (r"/sites/\d+/data$", latest),
    "history": (r"/data$", history),
    "alerts": (r"/alerts$", alerts),
}


@pytest.fixture
async def inventory(simulator: Simulator, locus: LocusProvider) -> Inventory:
    """Discover Maple Street (logged in, log cleared)."""
    found = await locus.async_discover([SITE])
    simulator.clear_log()
    return found


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("http_500", CannotConnect),
        ("malformed_json", InvalidResponse),
    ],
)
@pytest.mark.parametrize("call", list(CALLS))
async def test_faults(
    simulator: Simulator,
    locus: LocusProvider,
    inventory: Inventory,
    kind: str,
    error: type[Exception],
    call: str,
) -> None:
    """A 500 is CannotConnect; a body that is no JSON is InvalidResponse."""
    path, run = CALLS[call]
    simulator.faults.add(kind, cloud="locus", path=path)
    with pytest.raises(error):
        await run(locus, inventory)
    assert simulator.faults.pending == []  # the call itself met the fault
    statuses = [r.status for r in simulator.log_for("locus")]
    assert statuses.count(500) == (kind == "http_500")


@pytest.mark.parametrize("call", list(CALLS))
async def test_rows_missing_fields_are_left_out(
    simulator: Simulator,
    locus: LocusProvider,
    inventory: Inventory,
    call: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows without their ids or timestamps are left out, counted and logged once.

    missing_fields drops the ids and timestamps of some rows and the values of
    others, inside the `{statusCode, <list>}` wrapper: the call succeeds with
    what is left, and no value becomes a 0.
    """
    path, run = CALLS[call]
    simulator.faults.add("missing_fields", cloud="locus", path=path)
    await run(locus, inventory)
    assert simulator.faults.pending == []
    assert locus.refusals.total > 0
    warnings = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith("Locus Energy sent data that was left out: ")


async def test_500_on_the_token_endpoint(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """The token endpoint failing on its side is CannotConnect, not an auth problem."""
    simulator.faults.add("http_500", cloud="locus", path="/oauth/token")
    with pytest.raises(CannotConnect):
        await locus.async_login()


async def test_429_once_is_retried_after_the_default_pause(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """The document's 429 body (no Retry-After) is waited out once, then retried.

    The policy's default pause applies: the retry leaves no earlier.
    """
    stub.locus_auth()
    answers = [
        web.json_response(TOO_MANY, status=429),
        web.json_response({"statusCode": 200, "sites": []}),
    ]

    async def sites(_: web.Request) -> web.Response:
        return answers.pop(0)

    stub.on("GET", "/v3/partners/4242/sites", sites)
    provider = make_provider("locus", api_url=f"{stub.url}/v3")
    await provider.async_login()
    started = time.monotonic()
    assert await provider.async_list_sites() == ()
    assert time.monotonic() - started >= LocusProvider.policy.default_retry_after
    assert [path for _, path, _ in stub.requests] == [
        "/oauth/token",
        "/v3/partners/4242/sites",
        "/v3/partners/4242/sites",
    ]
    assert provider.state.limiter.throttled == 1


async def test_429_from_the_simulator_is_retried(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """One 429 on a data call and one on the token endpoint: both retried, no error."""
    simulator.locus.retry_after = 0
    simulator.faults.add("http_429", cloud="locus", path="/oauth/token")
    simulator.faults.add("http_429", cloud="locus", path="/sites$")
    sites = await locus.async_list_sites()
    assert len(sites) == 6
    assert [(r.path, r.status) for r in simulator.log_for("locus")] == [
        ("/oauth/token", 429),
        ("/oauth/token", 200),
        ("/partners/4242/sites", 429),
        ("/partners/4242/sites", 200),
    ]
    assert locus.state.limiter.throttled == 2


async def test_429_that_persists_is_rate_limited(
    simulator: Simulator, locus: LocusProvider, inventory: Inventory
) -> None:
    """After the transport's retries, a cloud that still answers 429 is RateLimited."""
    simulator.locus.retry_after = 0
    simulator.faults.add("http_429", RATE_LIMIT_RETRIES + 1, cloud="locus")
    with pytest.raises(RateLimited):
        await locus.async_latest(inventory.channels)
    assert [r.status for r in simulator.log_for("locus")] == [429] * (
        RATE_LIMIT_RETRIES + 1
    )


@pytest.mark.parametrize(
    "body",
    [[], {"data": {}}, {"statusCode": 200}],
    ids=["list", "data-object", "no-data"],
)
async def test_data_answer_without_a_list(
    stub: StubServer, make_provider: MakeProvider, body: object
) -> None:
    """A data answer without a list of points under `data` is InvalidResponse."""
    stub.locus_auth()
    stub.json("GET", "/v3/sites/1/data", body)
    provider = make_provider("locus", api_url=f"{stub.url}/v3")
    channel = Channel(
        key="1:site:1:W_avg",
        site_id="1",
        name="Power",
        label=None,
        quantity=Quantity.POWER,
        kind=Kind.INSTANT,
        unit="W",
        ref=("site", "1", "15min", "W_avg"),
    )
    with pytest.raises(InvalidResponse):
        await provider.async_latest([channel])
