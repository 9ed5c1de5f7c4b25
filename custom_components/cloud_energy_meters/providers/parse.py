"""The one set of value parsers: what a cloud sends becomes a checked value or is refused.

Every provider reads numbers, times, durations, zones and ids through these, so a NaN,
an `inf`, a date in year 40000 or a list where an id belongs ends the same way for
every cloud: `ValueRefused` (an `InvalidResponse`), which the caller turns into a
refused row or a refused answer, never another exception.
"""

import asyncio
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
import logging
import math
import re
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidResponse

_LOGGER = logging.getLogger(__name__)

MAX_MAGNITUDE = 1e12
"""Larger than any value a meter produces (a register in Wh of a power plant, a flow
in l/h): beyond it a number is a glitch, not a reading."""

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""Readings outside these years are clock errors (an epoch of 0, a unit mix-up)."""

MAX_RETRY_AFTER = 3600.0
"""Longest pause a cloud's Retry-After may impose (seconds); more is capped and logged."""

MIN_LIFETIME = 10.0
MAX_LIFETIME = 366 * 86400.0
"""Bounds of a token's lifetime (seconds): shorter would sign in on every request."""

MAX_ID_LENGTH = 256
MAX_ZONE_NAME = 64


class ValueRefused(InvalidResponse):
    """One value a cloud sent cannot be used (it names the value, never a secret)."""

    def __init__(self, what: str, value: Any) -> None:
        """Say which value (`what`: "meter_data total") and show its start."""
        shown = (
            repr(value) if not isinstance(value, list | dict) else type(value).__name__
        )
        super().__init__(f"{what} is {shown[:40]}{'…' if len(shown) > 40 else ''}")
        self.what = what


def _refuse(what: str, value: Any) -> ValueRefused:
    return ValueRefused(what, value)


def number(value: Any, what: str) -> float:
    """Return a finite number within a meter's range (int, float or numeric text)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(what, value)
    try:
        result = float(value.strip() if isinstance(value, str) else value)
    except ValueError, OverflowError:
        raise _refuse(what, value) from None
    if not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise _refuse(what, value)
    return result


def optional_number(value: Any, what: str) -> float | None:
    """Return a number, or None when the cloud sent none (absent, null or empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return number(value, what)


def amount(value: Any, what: str) -> float:
    """Return an amount over an interval: a number that is not negative."""
    result = number(value, what)
    if result < 0:
        raise _refuse(what, value)
    return result


def instant(moment: datetime, what: str) -> datetime:
    """Return an aware moment in UTC, refused outside EARLIEST..LATEST."""
    if moment.tzinfo is None:
        raise _refuse(what, moment.isoformat())
    moment = moment.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise _refuse(what, moment.isoformat())
    return moment


def epoch(value: Any, what: str) -> datetime:
    """Return the moment of an epoch in seconds, milli-, micro- or nanoseconds.

    The unit is told by the magnitude: in 2000..2100 the four never overlap.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(what, value)
    try:
        raw = float(value)
    except ValueError, OverflowError:
        raise _refuse(what, value) from None
    if not math.isfinite(raw):
        raise _refuse(what, value)
    scale = 1.0
    while abs(raw) / scale >= 1e11 and scale < 1e9:
        scale *= 1000
    scaled = raw / scale
    if not EARLIEST.timestamp() <= scaled < LATEST.timestamp():
        raise _refuse(what, value)
    return datetime.fromtimestamp(scaled, UTC)


def timestamp(value: Any, what: str, zone: tzinfo | None = None) -> datetime:
    """Return aware UTC from an epoch or ISO 8601 text; text without offset is `zone`'s.

    Without a zone, text without an offset is refused: its moment is unknown.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch(value, what)
    if not isinstance(value, str) or len(value) > 64:
        raise _refuse(what, value)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _refuse(what, value) from None
    if moment.tzinfo is None:
        if zone is None:
            raise _refuse(what, value)
        moment = moment.replace(tzinfo=zone)
    try:
        return instant(moment, what)
    except OverflowError:  # an offset that moves year 9999 past the end of time
        raise _refuse(what, value) from None


def seconds(value: Any, what: str, *, least: float = 0.0, most: float) -> float:
    """Return a duration in seconds within [least, most]."""
    result = number(value, what)
    if not least <= result <= most:
        raise _refuse(what, value)
    return result


_DURATION = re.compile(
    r"P(?:(?P<days>\d{1,5})D)?"
    r"(?:T(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,8})M)?(?:(?P<seconds>\d{1,9})S)?)?"
)
MAX_DURATION = timedelta(days=3660)


def duration(value: Any, what: str) -> timedelta:
    """Return an ISO 8601 duration of days, hours, minutes and seconds ("PT15M").

    Months and years have no fixed length: refused, like anything beyond ten years.
    """
    if not isinstance(value, str) or len(value) > 40:
        raise _refuse(what, value)
    found = _DURATION.fullmatch(value.strip().upper())
    if found is None or value.strip().upper() in ("P", "PT") or value.endswith("T"):
        raise _refuse(what, value)
    result = timedelta(
        **{unit: int(amount) for unit, amount in found.groupdict(default="0").items()}
    )
    if result > MAX_DURATION:
        raise _refuse(what, value)
    return result


def lifetime(value: Any, what: str) -> timedelta:
    """Return a token's lifetime (seconds as a number or numeric text)."""
    return timedelta(
        seconds=seconds(value, what, least=MIN_LIFETIME, most=MAX_LIFETIME)
    )


def retry_after(value: str | None, cloud: str) -> float | None:
    """Return a Retry-After header in seconds (a number or an HTTP date), capped.

    None when absent or unreadable: the cloud's default pause applies then.
    """
    if not value:
        return None
    try:
        wait = float(value)
    except ValueError:
        try:
            wait = parsedate_to_datetime(value).timestamp() - time.time()
        except TypeError, ValueError, IndexError, OverflowError:
            return None
    if math.isnan(wait):
        return None
    if wait > MAX_RETRY_AFTER:
        _LOGGER.warning(
            "%s asked to wait %s; waiting %.0f s at most",
            cloud,
            value[:40],
            MAX_RETRY_AFTER,
        )
        return MAX_RETRY_AFTER
    return max(0.0, wait)


MAX_TOKEN_LENGTH = 16384


def token(value: Any, what: str) -> str:
    """Return a token a cloud issued: text that can go into a header as it is.

    Never shown in the error: a token is a secret, even a broken one.
    """
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_TOKEN_LENGTH
        or not value.isascii()
        or not value.isprintable()
        or " " in value
    ):
        raise ValueRefused(what, "…")
    return value


def mapping(value: Any, what: str) -> dict[str, Any]:
    """Return a JSON object; anything else is refused."""
    if not isinstance(value, dict):
        raise _refuse(what, value)
    return value


def identifier(value: Any, what: str) -> str:
    """Return an id as text: a non-empty string or a whole number, short."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        ident = value.strip()
        # Ids go into request paths: one that is no single path segment is refused.
        if ident not in ("", ".", "..") and ident.isprintable() and "/" not in ident:
            return ident
    raise _refuse(what, value)


def text(value: Any) -> str | None:
    """Return a cloud's JSON scalar as text; None when absent, empty or not a scalar.

    Clouds send serial numbers, models and references as numbers as often as strings;
    Home Assistant's device registry takes strings only (from 2026.12).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            value = int(value)  # 1234.0, a number the cloud's JSON wrote as a float
    return str(value).strip()[:MAX_ID_LENGTH] or None


def _zone(name: str) -> ZoneInfo | None:
    """Build a zone (blocking: it may read a tzdata file); None when unknown."""
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError, ValueError, OSError:
        return None


_ZONES: dict[str, ZoneInfo | None] = {}
"""Zones read so far, by the name a cloud gave (a handful per process)."""


async def async_zone(name: Any, default: str) -> ZoneInfo:
    """Return the zone a cloud names, or `default`'s when it names none it can have.

    Each name is read once, in an executor: Home Assistant reports file reads in its
    event loop as blocking, and ZoneInfo may read one.
    """
    for key in (name, default):
        if not isinstance(key, str) or not key or len(key) > MAX_ZONE_NAME:
            continue
        if key not in _ZONES:
            loop = asyncio.get_running_loop()
            _ZONES[key] = await loop.run_in_executor(None, _zone, key)
        if (zone := _ZONES[key]) is not None:
            return zone
    raise ValueError(f"unknown default time zone {default}")
