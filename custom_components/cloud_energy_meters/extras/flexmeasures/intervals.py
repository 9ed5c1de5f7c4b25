"""One value per interval from a Home Assistant entity's state changes.

What is sent to a FlexMeasures sensor, one value per step of its resolution:
- `mean`: power and measurements (temperature, state of charge …). The state holds
  from one change to the next; unknown time (None: unknown, unavailable) weighs
  nothing.
- `difference`: a register (energy, gas, water; state class total or
  total_increasing). What it counted in the interval; a decrease is a reset, after
  which the new value counts from 0.

Plain data in, plain data out: `changes` are (time, value) pairs, oldest first (they
are sorted here anyway), value None where the state was no number. Intervals are
[start, end): a change at `end` belongs to the next one.
"""

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

type Change = tuple[datetime, float | None]
type Rule = Literal["mean", "difference"]


def _ordered(changes: Sequence[Change]) -> list[Change]:
    return sorted(changes, key=lambda change: change[0])


def mean(
    initial: float | None,
    changes: Sequence[Change],
    start: datetime,
    end: datetime,
) -> float | None:
    """Return the time-weighted mean over [start, end); None when nothing is known.

    `initial` is the state in effect at `start` (None: unknown). Changes before
    `start` only replace it; those at or after `end` are left out. Time without a
    known value is left out of the mean (a half-known interval gives the mean of
    its known half).
    """
    if end <= start:
        return None
    value = initial
    moment = start
    total = 0.0
    known = timedelta(0)
    for at, new in _ordered(changes):
        if at >= end:
            break
        if at > moment:
            if value is not None:
                total += value * (at - moment).total_seconds()
                known += at - moment
            moment = at
        value = new
    if value is not None:
        total += value * (end - moment).total_seconds()
        known += end - moment
    if not known:
        return None
    return total / known.total_seconds()


def difference(
    initial: float | None,
    changes: Sequence[Change],
    start: datetime,
    end: datetime,
) -> float | None:
    """Return what a register counted in [start, end); None when nothing is known.

    `initial` is the register's last known value at `start` (None: none known;
    then its first known value in the interval is where counting begins, as Home
    Assistant's statistics do for a new meter). Unknown states are bridged: the
    register kept counting meanwhile. Each rise counts; a fall is a reset and the
    new value counts in full (it was counted from 0). Changes before `start` only
    set the value counting begins from.
    """
    if end <= start:
        return None
    last = initial
    counted: float | None = None if initial is None else 0.0
    for at, new in _ordered(changes):
        if at >= end:
            break
        if new is None:
            continue
        if at < start or last is None:
            last = new  # the value counting begins from
            counted = 0.0 if counted is None else counted
            continue
        counted = (counted or 0.0) + (new - last if new >= last else new)
        last = new
    return counted


def per_interval(
    rule: Rule,
    initial: float | None,
    changes: Sequence[Change],
    start: datetime,
    step: timedelta,
    count: int,
) -> list[float | None]:
    """Return `count` values, one per `step` from `start`, by `rule`.

    `initial` as for `mean` or `difference` at `start`; each following interval
    starts from what the changes before it leave (the state in effect for a mean,
    the last known value for a register).
    """
    ordered = _ordered(changes)
    times = [at for at, _ in ordered]
    in_effect, last_known = initial, initial
    first = bisect_left(times, start)
    for _, value in ordered[:first]:
        in_effect = value
        last_known = value if value is not None else last_known
    values: list[float | None] = []
    for index in range(count):
        begin = start + index * step
        until = begin + step
        stop = bisect_left(times, until, lo=first)
        inside = ordered[first:stop]
        if rule == "mean":
            values.append(mean(in_effect, inside, begin, until))
        else:
            values.append(difference(last_known, inside, begin, until))
        for _, value in inside:
            in_effect = value
            last_known = value if value is not None else last_known
        first = stop
    return values
