"""Locus Energy allows one request at a time per account, token requests included.

Two providers of one account (two config entries) share an AccountState; whatever
they do at once, the cloud must never see two requests of the account overlap
(it would answer 429). Spans are measured on the client (aiohttp tracing) and
the cloud's own refusals are read from its log.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
import time
from types import SimpleNamespace

from aiohttp import ClientSession, TraceConfig, TraceRequestEndParams
import pytest

from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from custom_components.cloud_energy_meters.providers.model import Inventory
from custom_components.cloud_energy_meters.providers.provider import AccountState
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.locus import (
    DEMO_CLIENT_ID,
    DEMO_USERNAME,
    HARBOR_SITE_ID,
    MAPLE_SITE_ID,
)

DEMO_ACCOUNT = f"{DEMO_CLIENT_ID}:{DEMO_USERNAME}"
SITE_IDS = [str(MAPLE_SITE_ID), str(HARBOR_SITE_ID)]


@dataclass
class Spans:
    """When each request left (start) and its answer's headers came back (end)."""

    open: dict[int, float] = field(default_factory=dict)
    done: list[tuple[float, float]] = field(default_factory=list)

    def assert_one_at_a_time(self) -> None:
        """Assert no request started before the previous one was answered."""
        assert not self.open
        spans = sorted(self.done)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, "two requests of the account overlapped"


@pytest.fixture
async def traced() -> AsyncIterator[tuple[ClientSession, Spans]]:
    """Return a session that records the span of every request it sends."""
    spans = Spans()
    trace = TraceConfig()

    async def started(_: ClientSession, context: SimpleNamespace, __: object) -> None:
        spans.open[id(context)] = time.monotonic()

    async def ended(
        _: ClientSession, context: SimpleNamespace, __: TraceRequestEndParams
    ) -> None:
        spans.done.append((spans.open.pop(id(context)), time.monotonic()))

    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    async with ClientSession(trace_configs=[trace]) as session:
        yield session, spans


def provider(
    session: ClientSession, simulator: Simulator, state: AccountState
) -> LocusProvider:
    """Return a demo-user provider on `session` with the shared `state`."""
    return build_provider("locus", session, api_url=simulator.url("locus"), state=state)


@pytest.fixture
async def inventory(simulator: Simulator, session: ClientSession) -> Inventory:
    """Discover the two small sites once, on a state of its own, then clear the log."""
    state = AccountState.for_policy(LocusProvider.policy)
    found = await provider(session, simulator, state).async_discover(SITE_IDS)
    simulator.clear_log()
    return found


def assert_no_429(simulator: Simulator) -> None:
    """Assert the cloud refused nothing for being busy."""
    assert [r for r in simulator.log_for("locus") if r.status == 429] == []


async def test_two_entries_of_one_account_take_turns(
    simulator: Simulator,
    traced: tuple[ClientSession, Spans],
    inventory: Inventory,
) -> None:
    """Discovery and a refresh of one account at once: one request at a time.

    Both start without a token: one login serves both (single flight), and it
    takes its turn like any other request. The limiter counted exactly the
    requests the cloud saw.
    """
    session, spans = traced
    simulator.locus.processing_delay = 0.02
    state = AccountState.for_policy(LocusProvider.policy)
    first = provider(session, simulator, state)
    second = provider(session, simulator, state)
    found, latest = await asyncio.gather(
        first.async_discover(SITE_IDS),
        second.async_latest(inventory.channels, SITE_IDS),
    )
    assert found == inventory
    assert latest.readings
    log = simulator.log_for("locus")
    assert_no_429(simulator)
    assert {r.account for r in log} == {DEMO_ACCOUNT}
    assert [r.path for r in log].count("/oauth/token") == 1
    assert log[0].path == "/oauth/token"
    # Discovery: 1 + 4 per site + 1 per monitored component; the refresh its cost.
    monitored = [
        c
        for site in SITE_IDS
        for c in simulator.locus.components_of(int(site))
        if not c.is_conceptual
    ]
    discovery = 1 + 4 * len(SITE_IDS) + len(monitored)
    cost = second.refresh_cost(inventory.channels, SITE_IDS)
    assert len(log) == 1 + discovery + cost
    assert state.limiter.requests == len(log) == len(spans.done)
    spans.assert_one_at_a_time()


async def test_renewal_during_concurrent_calls_takes_its_turn(
    simulator: Simulator,
    sim_clock: FakeClock,
    traced: tuple[ClientSession, Spans],
    inventory: Inventory,
) -> None:
    """A token the cloud expired under two busy entries is renewed once, in turn.

    The refresh grant is a request of the account like the others: it waits for
    the current call to finish, and none of the calls queued behind it gets 429.
    """
    session, spans = traced
    simulator.locus.processing_delay = 0.02
    state = AccountState.for_policy(LocusProvider.policy)
    first = provider(session, simulator, state)
    second = provider(session, simulator, state)
    await first.async_login()
    sim_clock.advance(timedelta(hours=1))  # the cloud expires the token, we do not
    await asyncio.gather(
        first.async_discover(SITE_IDS),
        second.async_latest(inventory.channels, SITE_IDS),
    )
    log = simulator.log_for("locus")
    assert_no_429(simulator)
    tokens = [r for r in log if r.path == "/oauth/token"]
    assert [(r.body["grant_type"], r.status) for r in tokens] == [
        ("password", 200),
        ("refresh_token", 200),
    ]
    refused = [r for r in log if r.status == 401]
    assert 1 <= len(refused) <= 2  # at most one call per entry held the old token
    assert state.limiter.requests == len(log) == len(spans.done)
    spans.assert_one_at_a_time()
