"""Time helpers shared by every simulated cloud.

The simulator never reads the wall clock directly: everything goes through a
``Now`` callable, so tests can freeze or step time (freezegun or a fake clock)
and the clouds, the token expiry and the data horizon all agree on "now".
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

type Now = Callable[[], datetime]

QUARTER = timedelta(minutes=15)


def utc_now() -> datetime:
    """Return the real current time, aware UTC (the default clock)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; naive values are taken to be UTC already.

    Clouds document tz-naive UTC request parameters, and tests like to pass
    naive datetimes too, so naive means UTC everywhere in the simulator.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (``T`` or space, optional fraction) to aware UTC.

    Raises ``ValueError`` on anything else so handlers can answer 400.
    """
    return as_utc(datetime.fromisoformat(text.strip()))


def epoch_ms(value: datetime) -> int:
    """Return milliseconds since the Unix epoch (used by ``{"$date": …}`` fields)."""
    return int(as_utc(value).timestamp() * 1000)


class FakeClock:
    """A clock tests move by hand: pass it as the simulator's `now` or a TokenCache's."""

    def __init__(self, value: datetime) -> None:
        """Start at ``value``."""
        self.value = value

    def __call__(self) -> datetime:
        """Return the current fake time."""
        return self.value

    def advance(self, delta: timedelta) -> None:
        """Move time forward by ``delta``."""
        self.value += delta
