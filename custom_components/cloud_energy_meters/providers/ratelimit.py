"""Request pacing for one cloud account: spacing, concurrency, rolling budgets, 429 pauses.

One RateLimiter exists per account and every request of that account passes through it,
whichever config entry makes it, so two entries of one account cannot add up to more
than the cloud allows. Spacing and pauses run on the monotonic clock; budgets on
Unix time, as the cloud counts them, so requests sent before a restart still count
after it (`sent_at`, `restore`).
"""

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import (
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
    contextmanager,
)
from contextvars import ContextVar
from dataclasses import dataclass
import math
import time
from typing import Any

from .errors import RateLimited

# Our requests leave a little after the limiter lets them go and arrive a little later;
# a server measuring arrival times must never see them closer than the documented spacing.
SPACING_MARGIN = 0.05
LOWERED_SHARE = 0.5
"""What a 429 leaves of our share of the budgets (someone else spends from them)."""
LOWERED_FOR = 86400.0
"""How long our share stays lowered after a 429: the rest of the day."""

_BACKGROUND: ContextVar[bool] = ContextVar("background_requests", default=False)


@contextmanager
def background() -> Iterator[None]:
    """Send the requests made within as background work (a history import).

    Background requests leave each budget's reserve (RateLimiter.reserve) to the
    refreshes users see.
    """
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


_MONOTONIC = time.monotonic
"""The monotonic clock as the module was loaded."""


def _unix_time() -> float:
    """Return Unix time, looked up at each call (a test may freeze the clock)."""
    return time.time()


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
        clock: Callable[[], float] | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """Start with no request sent and no pause.

        `clock`: monotonic seconds for spacing and pauses; `wall`: Unix time for the
        budgets (by default `clock` when one is given).
        """
        self.policy = policy
        self._clock = clock or _MONOTONIC
        self._wall: Callable[[], float] = wall or clock or _unix_time
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
        self.share = 1.0
        """The part of each budget we may spend; the rest is left to the account's
        other clients (a phone app on the same account)."""
        self.reserve: tuple[int, ...] = ()
        """Per budget, requests background work leaves to refreshes."""
        self._lowered_until = -math.inf

    def share_now(self) -> float:
        """Return the share in force: lowered for a day after a 429."""
        lowered = self._clock() < self._lowered_until
        return self.share * (LOWERED_SHARE if lowered else 1.0)

    def lowered_until(self) -> float | None:
        """Return when a share lowered by a 429 is whole again (Unix time), if lowered.

        What a restart must remember: the other client is still spending.
        """
        left = self._lowered_until - self._clock()
        return self._wall() + left if left > 0 else None

    def restore_lowered(self, until: Any) -> None:
        """Lower the share until `until` (Unix time, as `lowered_until` gave)."""
        if (
            not self.policy.budgets
            or not isinstance(until, (int, float))
            or isinstance(until, bool)
            or not math.isfinite(until)
        ):
            return
        left = min(float(until) - self._wall(), LOWERED_FOR)
        if left > 0:
            self._lowered_until = max(self._lowered_until, self._clock() + left)

    def _limit(self, index: int, budget: Budget, background: bool) -> int:
        """Return how many requests of a budget's window we may send now."""
        limit = math.floor(budget.count * self.share_now() + 1e-9)
        if background and index < len(self.reserve):
            limit -= self.reserve[index]
        return limit

    def sent_at(self) -> list[float]:
        """Return when the requests still in a budget's window left (Unix times).

        What a restart must remember: the cloud still counts them.
        """
        return list(self._history)

    def restore(self, sent: Iterable[Any]) -> None:
        """Count requests sent before a restart (Unix times, as `sent_at` gave)."""
        if not self.policy.budgets:
            return
        now = self._wall()
        longest = max(budget.period for budget in self.policy.budgets)
        # Two entries of one account keep the same times: count each once (the
        # union of multisets: requests may share a moment).
        merged = Counter(self._history) | Counter(
            float(moment)
            for moment in sent
            if isinstance(moment, (int, float))
            and not isinstance(moment, bool)
            and now - longest < moment <= now
        )
        self._history = deque(sorted(merged.elements()))

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
        if self._users or self._wait_needed(self._clock()) > 0:
            return False
        now = self._wall()
        return not any(
            start > now - budget.period
            for budget in self.policy.budgets
            for start in self._history
        )

    def pause(self, seconds: float | None) -> None:
        """Hold every request of the account for `seconds` (a 429's Retry-After).

        A cloud with budgets counted more than we sent: another client spends from
        them too, so our share is lowered for the day.
        """
        self.throttled += 1
        wait = self.policy.default_retry_after if seconds is None else seconds
        now = self._clock()
        self._paused_until = max(self._paused_until, now + wait)
        if self.policy.budgets:
            self._lowered_until = now + LOWERED_FOR

    def _wait_needed(self, now: float) -> float:
        """Return how long the next request must wait from `now`."""
        wait = self._paused_until - now
        if self._last_start is not None and self.policy.min_interval:
            spacing = self.policy.min_interval + SPACING_MARGIN
            previous = max(self._last_start, self._last_end or self._last_start)
            wait = max(wait, previous + spacing - now)
        background = _BACKGROUND.get()
        wall = self._wall()
        for index, budget in enumerate(self.policy.budgets):
            window = [t for t in self._history if t > wall - budget.period]
            limit = self._limit(index, budget, background)
            if len(window) >= limit:
                wait = max(
                    wait,
                    window[-limit] + budget.period - wall
                    if limit > 0
                    else budget.period,
                )
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
                wall = self._wall()
                self._history.append(wall)
                while self._history and self._history[0] <= wall - longest:
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
