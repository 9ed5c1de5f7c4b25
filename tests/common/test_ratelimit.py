"""RateLimiter and RatePolicy: spacing, concurrency, rolling budgets, pauses, max_wait.

Most tests run on a fake monotonic clock whose `sleep` advances it, so they
prove exact timings without waiting; one test runs on the real clock.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
import time
from types import SimpleNamespace

import pytest

from custom_components.cloud_energy_meters.providers import ratelimit
from custom_components.cloud_energy_meters.providers.errors import RateLimited
from custom_components.cloud_energy_meters.providers.ratelimit import (
    SPACING_MARGIN,
    Budget,
    RateLimiter,
    RatePolicy,
)

REAL_SLEEP = asyncio.sleep


class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        """Start at 0 with no sleep seen."""
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance the clock by `seconds` and let other tasks run."""
        self.sleeps.append(seconds)
        self.now += seconds
        await REAL_SLEEP(0)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """Make the rate limiter sleep on a fake clock (only inside ratelimit.py)."""
    fake = FakeTime()
    monkeypatch.setattr(
        ratelimit,
        "asyncio",
        SimpleNamespace(
            sleep=fake.sleep, Lock=asyncio.Lock, Semaphore=asyncio.Semaphore
        ),
    )
    return fake


async def starts_of(
    limiter: RateLimiter,
    count: int,
    clock: Callable[[], float],
    hold: Callable[[], Awaitable[None]] | None = None,
) -> list[float]:
    """Run `count` concurrent requests through the limiter; return their start times."""
    starts: list[float] = []

    async def request() -> None:
        async with limiter.turn():
            starts.append(clock())
            if hold is not None:
                await hold()

    await asyncio.gather(*(request() for _ in range(count)))
    return starts


async def test_spacing(fake_time: FakeTime) -> None:
    """No two requests start closer than min_interval (plus the arrival margin)."""
    limiter = RateLimiter(RatePolicy(min_interval=1.0), clock=fake_time)
    starts = await starts_of(limiter, 5, fake_time)
    assert starts[0] == 0.0
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 1.0 + SPACING_MARGIN - 1e-9 for gap in gaps), gaps
    assert starts[-1] == pytest.approx(4 * (1.0 + SPACING_MARGIN))
    assert limiter.requests == 5
    assert limiter.throttled == 0


async def test_spacing_counts_from_the_last_start(fake_time: FakeTime) -> None:
    """A request long after the previous one starts at once."""
    limiter = RateLimiter(RatePolicy(min_interval=1.0), clock=fake_time)
    await starts_of(limiter, 1, fake_time)
    fake_time.now += 5.0
    assert await starts_of(limiter, 1, fake_time) == [5.0]
    assert fake_time.sleeps == []


async def test_spacing_on_the_real_clock() -> None:
    """With the real monotonic clock, starts are also spaced by min_interval."""
    limiter = RateLimiter(RatePolicy(min_interval=0.1))
    starts = await starts_of(limiter, 4, time.monotonic)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.1 for gap in gaps), gaps


async def test_max_concurrency() -> None:
    """At most max_concurrency requests hold a turn at once, and that many do."""
    limiter = RateLimiter(RatePolicy(max_concurrency=2))
    active = 0
    peak = 0

    async def hold() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await REAL_SLEEP(0.01)
        active -= 1

    await starts_of(limiter, 6, time.monotonic, hold)
    assert peak == 2
    assert limiter.requests == 6


async def test_without_limits_requests_do_not_wait(fake_time: FakeTime) -> None:
    """A policy without spacing, budgets or concurrency never sleeps."""
    limiter = RateLimiter(RatePolicy(), clock=fake_time)
    assert await starts_of(limiter, 10, fake_time) == [0.0] * 10
    assert fake_time.sleeps == []


async def test_rolling_budget(fake_time: FakeTime) -> None:
    """At most `count` requests start in any rolling window of `period` seconds."""
    policy = RatePolicy(budgets=(Budget(count=3, period=10.0),))
    limiter = RateLimiter(policy, clock=fake_time)
    starts = await starts_of(limiter, 7, fake_time)
    assert starts == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]
    for first, fourth in zip(starts, starts[3:], strict=False):
        assert fourth - first >= 10.0
    assert starts[-1] == policy.seconds_for(7)


async def test_two_budgets_combine(fake_time: FakeTime) -> None:
    """A short and a long budget both hold; the window slides, old starts expire."""
    policy = RatePolicy(budgets=(Budget(2, 1.0), Budget(4, 100.0)))
    limiter = RateLimiter(policy, clock=fake_time)
    starts = await starts_of(limiter, 6, fake_time)
    assert starts == [0.0, 0.0, 1.0, 1.0, 100.0, 100.0]
    fake_time.now = 250.0
    assert await starts_of(limiter, 1, fake_time) == [250.0]


async def test_pause_is_honoured(fake_time: FakeTime) -> None:
    """After pause(s) no request starts before s seconds have passed."""
    limiter = RateLimiter(RatePolicy(default_retry_after=3.0), clock=fake_time)
    limiter.pause(5.0)
    assert limiter.paused_for == 5.0
    limiter.pause(1.0)  # a shorter pause does not shorten the current one
    assert limiter.paused_for == 5.0
    assert await starts_of(limiter, 1, fake_time) == [5.0]
    assert limiter.paused_for == 0.0
    limiter.pause(None)
    assert limiter.paused_for == 3.0
    assert await starts_of(limiter, 1, fake_time) == [8.0]
    assert limiter.throttled == 3


async def test_wait_longer_than_max_wait_raises(fake_time: FakeTime) -> None:
    """A turn that would wait longer than max_wait is refused, not awaited."""
    limiter = RateLimiter(RatePolicy(max_wait=10.0), clock=fake_time)
    limiter.pause(30.0)
    with pytest.raises(RateLimited) as caught:
        await starts_of(limiter, 1, fake_time)
    assert caught.value.retry_after == pytest.approx(30.0)
    assert limiter.requests == 0
    assert fake_time.sleeps == []


async def test_spent_budget_raises(fake_time: FakeTime) -> None:
    """A spent daily budget surfaces as RateLimited until its oldest request ages out."""
    policy = RatePolicy(budgets=(Budget(2, 86400.0),), max_wait=60.0)
    limiter = RateLimiter(policy, clock=fake_time)
    await starts_of(limiter, 2, fake_time)
    fake_time.now = 100.0
    with pytest.raises(RateLimited) as caught:
        await starts_of(limiter, 1, fake_time)
    assert caught.value.retry_after == pytest.approx(86300.0)
    fake_time.now = 86400.0
    assert await starts_of(limiter, 1, fake_time) == [86400.0]


def test_seconds_for() -> None:
    """seconds_for is the least time N requests take under spacing and budgets."""
    spaced = RatePolicy(min_interval=1.0)
    assert spaced.seconds_for(0) == 0
    assert spaced.seconds_for(1) == 0
    assert spaced.seconds_for(5) == pytest.approx(4 * (1.0 + SPACING_MARGIN))
    hourly = RatePolicy(budgets=(Budget(100, 3600.0),))
    assert hourly.seconds_for(100) == 0
    assert hourly.seconds_for(101) == 3600.0
    assert hourly.seconds_for(200) == 3600.0
    assert hourly.seconds_for(201) == 7200.0
    both = RatePolicy(
        min_interval=1.0, budgets=(Budget(100, 3600.0), Budget(1000, 86400.0))
    )
    assert both.seconds_for(50) == pytest.approx(49 * (1.0 + SPACING_MARGIN))
    assert both.seconds_for(1001) == 86400.0
    assert RatePolicy().seconds_for(1000) == 0


async def test_a_turn_given_up_costs_no_spacing(fake_time: FakeTime) -> None:
    """A request refused by its hold as its turn comes is not counted nor spaced.

    (A token that fell due while the request waited: the request goes back for a
    new one, and the account's next request need not wait for it.)
    """
    limiter = RateLimiter(RatePolicy(min_interval=1.0), clock=fake_time)
    held: list[str] = []

    @contextmanager
    def refuse() -> Iterator[None]:
        raise LookupError("token replaced")
        yield  # pragma: no cover

    @contextmanager
    def record() -> Iterator[None]:
        held.append("in")
        yield
        held.append("out")

    async with limiter.turn(record):
        assert held == ["in"]
    assert held == ["in", "out"]
    fake_time.now += 1.0 + SPACING_MARGIN  # the next request may go at once
    with pytest.raises(LookupError):
        async with limiter.turn(refuse):
            pytest.fail("sent")  # pragma: no cover
    async with limiter.turn():
        pass
    assert limiter.requests == 2
    assert fake_time.sleeps == []


async def test_settled_only_once_nothing_is_held_back(fake_time: FakeTime) -> None:
    """A limiter may be forgotten only when a new one would pace the same.

    Not while a request waits or runs, nor during the spacing after one, a pause
    the cloud asked for, or while a budget's window still holds a request.
    """
    limiter = RateLimiter(
        RatePolicy(min_interval=1.0, budgets=(Budget(count=10, period=60.0),)),
        clock=fake_time,
    )
    assert limiter.settled
    async with limiter.turn():
        assert not limiter.settled
    fake_time.now += 1.0 + SPACING_MARGIN
    assert not limiter.settled  # the budget's minute still counts that request
    fake_time.now += 60.0
    assert limiter.settled
    limiter.pause(5.0)
    assert not limiter.settled
    fake_time.now += 5.0
    assert limiter.settled

    spaced = RateLimiter(RatePolicy(min_interval=1.0), clock=fake_time)
    async with spaced.turn():
        pass
    assert not spaced.settled
    fake_time.now += 1.0 + SPACING_MARGIN
    assert spaced.settled
