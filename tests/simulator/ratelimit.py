"""Per-account request spacing, the way "N requests per second" clouds enforce it.

Rate limits are part of the contract the integration must respect, so the
simulator answers 429 when they are exceeded instead of silently serving.
"""


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
