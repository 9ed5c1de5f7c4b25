"""The request plan's arithmetic (providers/plan.py), on Copper Labs' budgets."""

from datetime import timedelta

import pytest

from custom_components.cloud_energy_meters.providers.copper import CopperProvider
from custom_components.cloud_energy_meters.providers.plan import (
    LONGEST_CADENCE,
    Demand,
    backfill_time,
    plan,
)

BUDGETS = CopperProvider.policy.budgets
FRESH = CopperProvider.shortest_refresh
HOME = Demand(refresh=1, listing=1, series=3, shortest_refresh=FRESH)
"""A home: one premise (one instant request a refresh), three meters."""
ENTERPRISE = Demand(refresh=2, listing=3, series=200, shortest_refresh=FRESH)
"""200 meters: two bulk pages a refresh; premise, meter and gateway listings."""


@pytest.mark.parametrize(
    ("demand", "share"),
    [(HOME, 0.6), (HOME, 0.3), (HOME, 1.0), (ENTERPRISE, 0.6), (ENTERPRISE, 1.0)],
)
def test_the_plan_keeps_each_budget(demand: Demand, share: float) -> None:
    """Refreshes and listings are reserved; history gets the rest, never more.

    In every window of every budget: the refreshes that fit in it (one more than
    whole intervals) and the listings are reserved; the history rounds of a day fit
    the daily share; a round larger than an hour's room is spread over hours by the
    limiter (background requests stop at the reserve).
    """
    made = plan(demand, BUDGETS, share)
    assert made.feasible
    assert made.refresh >= FRESH
    for budget, reserve, left in zip(
        BUDGETS, made.reserve, made.history_per_window, strict=True
    ):
        refreshes = budget.period // made.refresh.total_seconds() + 1
        assert reserve >= demand.refresh * refreshes + demand.listing
        assert reserve + left <= budget.count * share
    assert made.requests_per_day(demand) <= 1000 * share


def test_a_home_refreshes_every_quarter_and_imports_hourly() -> None:
    """A home is far within budget: as fresh as the cloud's data, history hourly."""
    made = plan(HOME, BUDGETS, 0.6)
    assert made.refresh == timedelta(minutes=15)
    assert made.history == timedelta(hours=1)
    # 96 instant reads, 72 history reads, 2 listings.
    assert made.requests_per_day(HOME) == 96 + 72 + 2


def test_an_enterprise_of_200_meters() -> None:
    """200 meters: refreshes every 15 minutes; each meter's history twice a day."""
    made = plan(ENTERPRISE, BUDGETS, 0.6)
    assert made.refresh == timedelta(minutes=15)
    assert made.history == timedelta(hours=12)
    assert made.requests_per_day(ENTERPRISE) <= 600
    # History leaves 10 refreshes of 2 and 3 listing requests to each hour.
    assert made.reserve == (3 + 2 * 5, 6 + 2 * 97)
    # The 30-day backfill asks once per meter (92-day windows): 200 requests, 47 an
    # hour at most beside the refreshes → the last ones go in the fifth hour.
    assert made.history_per_window == (47, 400)
    assert backfill_time(made, BUDGETS, 200) == timedelta(hours=4)


def test_an_account_too_large_is_not_feasible() -> None:
    """2,000 meters cannot each be read daily within 600 requests a day."""
    made = plan(
        Demand(refresh=20, listing=6, series=2000, shortest_refresh=FRESH),
        BUDGETS,
        0.6,
    )
    assert not made.feasible
    assert made.history > LONGEST_CADENCE


def test_a_share_too_small_for_anything() -> None:
    """A share that leaves nothing after listings: refreshes daily, not feasible."""
    made = plan(Demand(refresh=1, listing=5, series=1), BUDGETS, 0.01)
    assert not made.feasible
    assert backfill_time(made, BUDGETS, 1) == timedelta.max


def test_nothing_to_refresh() -> None:
    """Only history (say every value is disabled): the floor is the refresh."""
    made = plan(
        Demand(refresh=0, listing=1, series=3, shortest_refresh=FRESH), BUDGETS, 0.6
    )
    assert made.refresh == FRESH
    assert made.feasible
