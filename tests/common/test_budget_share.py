"""The limiter's share of the budgets, the reserve for refreshes, 429s, restarts."""

import pytest

from custom_components.cloud_energy_meters.providers.errors import RateLimited
from custom_components.cloud_energy_meters.providers.ratelimit import (
    LOWERED_FOR,
    Budget,
    RateLimiter,
    RatePolicy,
    background,
)

from . import test_ratelimit
from .test_ratelimit import FakeTime, starts_of

fake_time = test_ratelimit.fake_time

COPPER = RatePolicy(budgets=(Budget(100, 3600.0), Budget(1000, 86400.0)), max_wait=60.0)


async def sent(limiter: RateLimiter, clock: FakeTime, count: int) -> int:
    """Send up to `count` requests; return how many went before one was refused."""
    for done in range(count):
        try:
            await starts_of(limiter, 1, clock)
        except RateLimited:
            return done
    return count


async def test_the_share_caps_each_budget(fake_time: FakeTime) -> None:
    """At 60 %, 60 requests in an hour; the next waits for the window."""
    limiter = RateLimiter(COPPER, clock=fake_time)
    limiter.share = 0.6
    assert await sent(limiter, fake_time, 100) == 60
    fake_time.now = 3600.0
    assert await sent(limiter, fake_time, 100) == 60
    # The day: 600 at most, whatever the hours allow.
    for hour in range(2, 24):
        fake_time.now = hour * 3600.0
        await sent(limiter, fake_time, 100)
    assert limiter.requests == 600


async def test_background_work_leaves_the_reserve(fake_time: FakeTime) -> None:
    """History requests stop short of the reserve; refreshes may still use it."""
    limiter = RateLimiter(COPPER, clock=fake_time)
    limiter.share = 0.6
    limiter.reserve = (10, 200)
    with background():
        assert await sent(limiter, fake_time, 100) == 50
    assert await sent(limiter, fake_time, 100) == 10


async def test_a_429_lowers_the_share_for_a_day(fake_time: FakeTime) -> None:
    """Someone else spends from the budgets: half our share until a day has passed."""
    limiter = RateLimiter(COPPER, clock=fake_time)
    limiter.share = 0.6
    limiter.pause(1.0)
    assert limiter.share_now() == pytest.approx(0.3)
    fake_time.now = 2.0
    assert await sent(limiter, fake_time, 100) == 30
    fake_time.now = LOWERED_FOR + 1.0
    assert limiter.share_now() == pytest.approx(0.6)
    assert await sent(limiter, fake_time, 100) == 60


async def test_a_lowered_share_stays_lowered_after_a_restart(
    fake_time: FakeTime,
) -> None:
    """A new limiter given when the old one's lowered share ends keeps it lowered."""
    fake_time.now = 1_000_000.0
    before = RateLimiter(COPPER, clock=fake_time)
    before.share = 0.6
    assert before.lowered_until() is None
    before.pause(1.0)
    until = before.lowered_until()
    assert until == pytest.approx(1_000_000.0 + LOWERED_FOR)
    fake_time.now += 3600.0
    after = RateLimiter(COPPER, clock=fake_time)
    after.share = 0.6
    for junk in (None, "junk", float("nan"), True, until + 10 * LOWERED_FOR):
        after.restore_lowered(junk)  # refused, or never longer than a day
    assert after.lowered_until() is None or after.lowered_until() <= (
        fake_time.now + LOWERED_FOR
    )
    after = RateLimiter(COPPER, clock=fake_time)
    after.share = 0.6
    after.restore_lowered(until)
    assert after.share_now() == pytest.approx(0.3)
    assert after.lowered_until() == pytest.approx(until)
    fake_time.now = until + 1.0
    assert after.share_now() == pytest.approx(0.6)
    after.restore_lowered(until)  # over: nothing lowered
    assert after.share_now() == pytest.approx(0.6)


async def test_requests_before_a_restart_still_count(fake_time: FakeTime) -> None:
    """A new limiter given the old one's request times paces as the old one would."""
    fake_time.now = 1_000_000.0
    before = RateLimiter(COPPER, clock=fake_time)
    before.share = 0.6
    assert await sent(before, fake_time, 40) == 40
    fake_time.now += 600.0
    after = RateLimiter(COPPER, clock=fake_time)
    after.share = 0.6
    after.restore([*before.sent_at(), "junk", float("nan"), True, 5.0])
    after.restore(before.sent_at())  # a second entry of the account: no double count
    assert after.sent_at() == before.sent_at()
    assert await sent(after, fake_time, 100) == 20
    # A day later none of them counts any more.
    fake_time.now += 86400.0
    fresh = RateLimiter(COPPER, clock=fake_time)
    fresh.restore(after.sent_at())
    assert fresh.sent_at() == []


def test_restore_is_nothing_without_budgets() -> None:
    """A cloud without budgets keeps no request times."""
    limiter = RateLimiter(RatePolicy())
    limiter.restore([1.0])
    assert limiter.sent_at() == []
