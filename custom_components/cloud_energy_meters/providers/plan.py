"""The request plan of a cloud with request budgets: how often to ask for what.

One pure function: given what one refresh, one listing and one round of history cost,
the cloud's budgets and the share of them we may spend, it returns how often to read
the latest values, how often to import each statistic's history, and how many
requests of each budget's window history must leave to the refreshes.
"""

from dataclasses import dataclass
from datetime import timedelta
import math

from .ratelimit import Budget

LISTING_INTERVAL = timedelta(hours=12)
"""How often sites and channels are listed again."""
REFRESH_PART = 0.5
"""The most of a budget (after listings) the latest values may take; the rest is
for history, so a backfill always advances."""
SHORTEST_CADENCE = timedelta(hours=1)
"""History is published by the hour: asking more often brings nothing new."""
LONGEST_CADENCE = timedelta(hours=24)
"""The longest useful history cadence: each import re-reads 48 hours, so a day
between two imports still overlaps and catches late data."""
LONGEST_REFRESH = timedelta(hours=1)
"""Latest values older than an hour are of no use to anyone watching them."""


@dataclass(frozen=True, slots=True)
class Demand:
    """What an entry asks of its cloud."""

    refresh: int
    """Requests one refresh of the latest values sends."""
    listing: int
    """Requests one listing of sites and channels sends."""
    series: int
    """Statistics imported: one request each per round of history."""
    shortest_refresh: timedelta = timedelta(minutes=1)
    """No refresh sooner (the cloud's answers stay fresh this long)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How often to ask for what, within the budgets."""

    refresh: timedelta
    """Between two reads of the latest values."""
    history: timedelta
    """Between two imports of one statistic's history."""
    reserve: tuple[int, ...]
    """Per budget: requests of its window a history import leaves to refreshes and
    listings."""
    history_per_window: tuple[int, ...]
    """Per budget: requests of its window left to history (what paces a backfill)."""
    feasible: bool
    """Whether the entry fits its share at a useful cadence (refreshes at least
    hourly, every statistic at least daily)."""

    def requests_per_day(self, demand: Demand) -> float:
        """Return how many requests a day the plan sends in its steady state."""
        day = timedelta(days=1)
        return (
            demand.refresh * (day / self.refresh)
            + demand.listing * (day / LISTING_INTERVAL)
            + demand.series * (day / self.history)
        )


def _whole(seconds: float, unit: timedelta) -> timedelta:
    """Round a duration up to whole units."""
    return unit * max(1, math.ceil(seconds / unit.total_seconds() - 1e-9))


def plan(demand: Demand, budgets: tuple[Budget, ...], share: float) -> Plan:
    """Return the plan of an entry whose cloud allows `budgets`, of which `share`."""
    refresh_seconds = demand.shortest_refresh.total_seconds()
    caps = [math.floor(budget.count * share + 1e-9) for budget in budgets]
    listings = [
        demand.listing
        * max(1, math.ceil(budget.period / LISTING_INTERVAL.total_seconds()))
        for budget in budgets
    ]
    for budget, cap, listing in zip(budgets, caps, listings, strict=True):
        room = (cap - listing) * REFRESH_PART
        if demand.refresh and room > 0:
            refresh_seconds = max(
                refresh_seconds, budget.period * demand.refresh / room
            )
        elif demand.refresh:
            refresh_seconds = math.inf
    if math.isinf(refresh_seconds):
        refresh = LONGEST_REFRESH * 24
    else:
        refresh = _whole(refresh_seconds, timedelta(minutes=1))
    reserve: list[int] = []
    left: list[int] = []
    cadence_seconds = SHORTEST_CADENCE.total_seconds()
    for budget, cap, listing in zip(budgets, caps, listings, strict=True):
        # A rolling window of length P holds at most floor(P / interval) + 1 refreshes.
        refreshes = math.floor(budget.period / refresh.total_seconds()) + 1
        kept = listing + demand.refresh * refreshes
        reserve.append(kept)
        left.append(max(0, cap - kept))
        if demand.series:
            cadence_seconds = max(
                cadence_seconds,
                budget.period * demand.series / left[-1] if left[-1] else math.inf,
            )
    history = (
        LONGEST_CADENCE * 7
        if math.isinf(cadence_seconds)
        else _whole(cadence_seconds, SHORTEST_CADENCE)
    )
    return Plan(
        refresh=refresh,
        history=history,
        reserve=tuple(reserve),
        history_per_window=tuple(left),
        feasible=refresh <= LONGEST_REFRESH and history <= LONGEST_CADENCE,
    )


def backfill_time(plan: Plan, budgets: tuple[Budget, ...], requests: int) -> timedelta:
    """Return how long `requests` history requests take at the plan's pace.

    Each budget lets `history_per_window` of them go per window; the slowest wins.
    """
    slowest = 0.0
    for budget, per_window in zip(budgets, plan.history_per_window, strict=True):
        if per_window <= 0:
            return timedelta.max
        # The first window's worth go at once; each further one waits a period.
        slowest = max(slowest, (math.ceil(requests / per_window) - 1) * budget.period)
    return timedelta(seconds=slowest)
