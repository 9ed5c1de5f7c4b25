"""Request pacing for one cloud account: spacing, concurrency, rolling budgets, 429 pauses.

One RateLimiter exists per account and every request of that account passes through it,
whichever config entry makes it, so two entries of one account cannot add up to more
than the cloud allows. Times are the event loop's monotonic clock.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass
import time

from .errors import RateLimited

# Our requests leave a little after the limiter lets them go and arrive a little later;
# a server measuring arrival times must never see them closer than the documented spacing.
SPACING_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `count` requests in any rolling window of `period` seconds."""

    count: int
    period: float


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """What a cloud allows one account."""

    min_interval: float = 0.0
    max_concurrency: int | None = None
    budgets: tuple[Budget, ...] = ()
    default_retry_after: float = 1.0
    max_wait: float = 120.0
    """The longest a request waits for its turn: a longer wait (a spent daily budget,
    a long Retry-After) raises RateLimited, so the caller reschedules, never hangs."""
    request_seconds: float = 0.0
    """How long one request typically takes: what paces a one-at-a-time cloud."""

    def seconds_for(self, requests: int) -> float:
        """Return the least time `requests` requests take under this policy."""
        seconds = requests * self.request_seconds
        if self.min_interval:  # the limiter spaces requests only when asked to
            seconds += max(0, requests - 1) * (self.min_interval + SPACING_MARGIN)
        for budget in self.budgets:
            if requests > budget.count:
                # Request number n (from 0) waits for n // count whole periods.
                seconds = max(seconds, ((requests - 1) // budget.count) * budget.period)
        return seconds


class RateLimiter:
    """Hand out turns to send a request, never faster than the policy allows."""

    def __init__(
        self,
        policy: RatePolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with no request sent and no pause."""
        self.policy = policy
        self._clock = clock
        self._lock = asyncio.Lock()
        # Spacing is counted from the end of the previous request, not its start: a
        # slow answer must not let the next request arrive early at the cloud, which
        # counts arrivals. So a spaced cloud gets one request at a time.
        concurrency = policy.max_concurrency or (1 if policy.min_interval else None)
        self._concurrency = asyncio.Semaphore(concurrency) if concurrency else None
        self._last_start: float | None = None
        self._last_end: float | None = None
        self._paused_until = 0.0
        self._history: deque[float] = deque()
        self._users = 0
        self.requests = 0
        self.throttled = 0

    @property
    def paused_for(self) -> float:
        """Seconds left of a pause asked by the cloud (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    @property
    def settled(self) -> bool:
        """Tell whether a new limiter would pace the account's next request the same.

        Not while a request waits or runs, a pause or the spacing is not over, or a
        budget's window still holds a request: forgetting the limiter then would let
        requests go sooner than the cloud allows.
        """
        now = self._clock()
        if self._users or self._wait_needed(now) > 0:
            return False
        return not any(
            start > now - budget.period
            for budget in self.policy.budgets
            for start in self._history
        )

    def pause(self, seconds: float | None) -> None:
        """Hold every request of the account for `seconds` (a 429's Retry-After)."""
        self.throttled += 1
        wait = self.policy.default_retry_after if seconds is None else seconds
        self._paused_until = max(self._paused_until, self._clock() + wait)

    def _wait_needed(self, now: float) -> float:
        """Return how long the next request must wait from `now`."""
        wait = self._paused_until - now
        if self._last_start is not None and self.policy.min_interval:
            spacing = self.policy.min_interval + SPACING_MARGIN
            previous = max(self._last_start, self._last_end or self._last_start)
            wait = max(wait, previous + spacing - now)
        for budget in self.policy.budgets:
            window = [t for t in self._history if t > now - budget.period]
            if len(window) >= budget.count:
                wait = max(wait, window[-budget.count] + budget.period - now)
        return max(0.0, wait)

    async def _take_turn(
        self,
        held: ExitStack,
        hold: Callable[[], AbstractContextManager[object]] | None,
    ) -> None:
        """Wait for this request's turn, enter `hold` into `held`, record the start."""
        async with self._lock:
            while (wait := self._wait_needed(self._clock())) > 0:
                if wait > self.policy.max_wait:
                    raise RateLimited(
                        f"request budget exhausted for {wait:.0f} s", retry_after=wait
                    )
                await asyncio.sleep(wait)
            if hold is not None:
                # Raising here gives the turn up before it counts: a request that can
                # no longer be sent as prepared costs the account no spacing.
                held.enter_context(hold())
            now = self._clock()
            self._last_start = now
            self.requests += 1
            if self.policy.budgets:
                longest = max(budget.period for budget in self.policy.budgets)
                self._history.append(now)
                while self._history and self._history[0] <= now - longest:
                    self._history.popleft()

    @asynccontextmanager
    async def turn(
        self, hold: Callable[[], AbstractContextManager[object]] | None = None
    ) -> AsyncIterator[None]:
        """Hold a turn for the duration of one request (its body included).

        `hold`, when given, is entered as the turn comes, before it counts, and left
        when the turn ends; what it raises gives the turn up unused.
        """
        self._users += 1
        try:
            with ExitStack() as held:
                if self._concurrency is None:
                    await self._take_turn(held, hold)
                    yield
                    return
                async with self._concurrency:
                    await self._take_turn(held, hold)
                    try:
                        yield
                    finally:
                        self._last_end = self._clock()
        finally:
            self._users -= 1
