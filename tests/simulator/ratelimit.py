"""Per-account rate limits: request spacing ("N per second") and rolling budgets.

Rate limits are part of the contract the integration must respect, so the
simulator answers 429 when they are exceeded instead of silently serving.
"""

from collections import deque
from datetime import datetime, timedelta
import math


class SpacingLimiter:
    """Refuse a request that arrives less than ``min_interval`` s after the last one.

    Only admitted requests move the reference point: a client that backs off
    for Retry-After after a 429 is then served, as it would be by a real
    token-bucket server, instead of being punished for the rejected attempt.
    """

    def __init__(self) -> None:
        """Start with no request seen for any account."""
        self._last: dict[str, float] = {}

    def admit(self, account: str, at: float, min_interval: float) -> bool:
        """Record and admit the request arriving at monotonic time ``at``, or refuse it."""
        if min_interval > 0:
            last = self._last.get(account)
            if last is not None and at - last < min_interval:
                return False
        self._last[account] = at
        return True

    def reset(self) -> None:
        """Forget every account's last request (e.g. when a test changes the limit)."""
        self._last.clear()


class RollingWindowLimiter:
    """Refuse a request once an account has used a budget of a rolling window.

    ``limits`` pairs a window with the number of requests it admits (Copper: 100
    per hour and 1,000 per day). Time is the simulator clock, so a frozen or
    stepped clock drives the windows. Refused requests do not count.
    """

    def __init__(self, limits: tuple[tuple[timedelta, int], ...]) -> None:
        """Start with no request seen; a limit of 0 or less is off."""
        self.limits = limits
        self._sent: dict[str, deque[datetime]] = {}

    def retry_after(self, account: str, now: datetime) -> int | None:
        """Return whole seconds until the account may send again, None when it may now."""
        sent = self._sent.get(account)
        if not sent:
            return None
        longest = max((window for window, _ in self.limits), default=timedelta(0))
        while sent and sent[0] <= now - longest:
            sent.popleft()
        wait = timedelta(0)
        for window, limit in self.limits:
            if limit <= 0:
                continue
            inside = [at for at in sent if at > now - window]
            if len(inside) >= limit:
                # Free once the oldest request that keeps the window full leaves it.
                wait = max(wait, inside[len(inside) - limit] + window - now)
        if wait <= timedelta(0):
            return None
        return max(1, math.ceil(wait.total_seconds()))

    def admit(self, account: str, now: datetime) -> int | None:
        """Record and admit the request, or return the Retry-After seconds of a refusal."""
        wait = self.retry_after(account, now)
        if wait is None:
            self._sent.setdefault(account, deque()).append(now)
        return wait

    def spend(self, account: str, now: datetime, count: int = 1) -> None:
        """Count ``count`` requests sent at ``now`` by another client of the account."""
        self._sent.setdefault(account, deque()).extend([now] * count)

    def used(self, account: str, now: datetime, window: timedelta) -> int:
        """Return how many requests of the account lie in the window ending now."""
        return sum(1 for at in self._sent.get(account, ()) if at > now - window)

    def reset(self) -> None:
        """Forget every account's requests."""
        self._sent.clear()


class FixedWindowLimiter:
    """Count requests per key in fixed windows that open at the key's first request.

    The flask-limiter "fixed window" FlexMeasures uses: every request counts
    (refused ones too), and the count restarts when the window has passed. Time
    is the simulator clock.
    """

    def __init__(self) -> None:
        """Start with no window open."""
        self._windows: dict[str, tuple[datetime, int]] = {}

    def peek(self, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        """Return (requests counted, window end) without counting."""
        start, used = self._windows.get(key, (now, 0))
        if now >= start + window:
            start, used = now, 0
        return used, start + window

    def hit(self, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        """Count one request and return (requests counted, window end)."""
        used, end = self.peek(key, now, window)
        self._windows[key] = (end - window, used + 1)
        return used + 1, end

    def reset(self) -> None:
        """Close every window."""
        self._windows.clear()
