"""A recorded sensor's history, one value per interval: a mean, or a register's growth.

Pure arithmetic on state changes (time, number or None for unknown), so the rules
are tested without Home Assistant:
- **mean** (power, temperature, any measurement): the time-weighted mean of the
  values the sensor held during the interval; time it was unknown does not count;
  None when it was unknown throughout.
- **growth** (an energy, gas or water register): its value at the end minus its
  value at the start, counting a decrease as a reset (the value after it counts from
  0); None when either end is unknown.
The first change is the state valid at the window's start (the recorder gives it).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

type Changes = Sequence[tuple[datetime, float | None]]


def _held(
    changes: Changes, start: datetime, end: datetime
) -> list[tuple[float, float]]:
    """Return (value, seconds held) for each known value during [start, end)."""
    held: list[tuple[float, float]] = []
    for index, (moment, value) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        begin, finish = max(moment, start), min(until, end)
        if value is not None and finish > begin:
            held.append((value, (finish - begin).total_seconds()))
    return held


def mean(changes: Changes, start: datetime, end: datetime) -> float | None:
    """Return the time-weighted mean over [start, end) of the known values."""
    held = _held(changes, start, end)
    seconds = sum(duration for _, duration in held)
    if not seconds:
        return None
    return sum(value * duration for value, duration in held) / seconds


def _at(changes: Changes, moment: datetime) -> tuple[int, float | None]:
    """Return the index and value of the change valid at `moment`."""
    found: tuple[int, float | None] = (-1, None)
    for index, (when, value) in enumerate(changes):
        if when > moment:
            break
        found = (index, value)
    return found


def growth(changes: Changes, start: datetime, end: datetime) -> float | None:
    """Return how much a register grew over [start, end) (resets counted from 0)."""
    first, value = _at(changes, start)
    if value is None:
        return None
    total, previous = 0.0, value
    for when, current in changes[first + 1 :]:
        if when >= end:
            break
        if current is None:
            continue
        total += current - previous if current >= previous else current
        previous = current
    if _at(changes, end - timedelta(microseconds=1))[1] is None:
        return None
    return total


def interval_values(
    changes: Changes,
    start: datetime,
    step: timedelta,
    count: int,
    *,
    register: bool,
) -> list[float | None]:
    """Return one value per interval of `step` from `start`: growth or mean."""
    worked = growth if register else mean
    return [
        worked(changes, start + i * step, start + (i + 1) * step) for i in range(count)
    ]
