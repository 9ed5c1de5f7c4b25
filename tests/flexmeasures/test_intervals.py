"""One value per interval from state changes: time-weighted means, register differences.

Worked by hand: each expected number is written out from the states and times.
"""

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.extras.flexmeasures.intervals import (
    difference,
    mean,
    per_interval,
)
from custom_components.cloud_energy_meters.extras.flexmeasures.recorded import converted

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def at(minutes: float) -> datetime:
    """Return T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


# --------------------------------------------------------------------------- mean


def test_mean_weighs_each_state_by_how_long_it_held() -> None:
    """2 kW for 5 minutes, then 5 kW for 10: (2·5 + 5·10) / 15 = 4 kW, not (2+5)/2."""
    assert mean(2.0, [(at(5), 5.0)], T0, at(15)) == pytest.approx(4.0)


def test_mean_of_a_state_that_never_changed_is_that_state() -> None:
    """A state set long before holds through the whole interval."""
    assert mean(1.5, [], T0, at(15)) == 1.5


def test_mean_leaves_unknown_time_out() -> None:
    """Unavailable for 5 minutes: the mean of the 10 known ones (3·5 + 6·5) / 10."""
    changes = [(at(5), None), (at(10), 6.0)]
    assert mean(3.0, changes, T0, at(15)) == pytest.approx(4.5)


def test_mean_is_none_when_nothing_is_known() -> None:
    """Unknown all through: a gap (None), never 0."""
    assert mean(None, [], T0, at(15)) is None
    assert mean(None, [(at(3), None)], T0, at(15)) is None
    assert mean(1.0, [], T0, T0) is None


def test_mean_takes_changes_before_the_start_as_the_state_then() -> None:
    """A change before the interval sets the state at its start; one at its end is the next one's."""
    changes = [(at(-10), 8.0), (at(-2), 4.0), (at(15), 100.0)]
    assert mean(None, changes, T0, at(15)) == 4.0


def test_mean_sorts_the_changes() -> None:
    """Changes given out of order count as if ordered by time."""
    changes = [(at(10), 1.0), (at(5), 7.0)]
    # 0 for 5 min, 7 for 5, 1 for 5
    assert mean(0.0, changes, T0, at(15)) == pytest.approx(8 / 3)


# --------------------------------------------------------------------------- difference


def test_difference_of_a_register_is_its_rise() -> None:
    """100.0 at the start, 100.4 then 100.9: 0.9 counted."""
    changes = [(at(3), 100.4), (at(12), 100.9)]
    assert difference(100.0, changes, T0, at(15)) == pytest.approx(0.9)


def test_difference_counts_a_reset_from_zero() -> None:
    """100 → 101 (+1), reset to 0.5 (+0.5, counted from 0), → 2 (+1.5): 3 in all."""
    changes = [(at(2), 101.0), (at(6), 0.5), (at(9), 2.0)]
    assert difference(100.0, changes, T0, at(15)) == pytest.approx(3.0)


def test_difference_bridges_unknown_states() -> None:
    """The register kept counting while unavailable: 10 → (unknown) → 12 is 2."""
    changes = [(at(4), None), (at(11), 12.0)]
    assert difference(10.0, changes, T0, at(15)) == pytest.approx(2.0)


def test_difference_without_a_change_is_zero() -> None:
    """A known register that did not move counted nothing: 0, not a gap."""
    assert difference(42.0, [], T0, at(15)) == 0.0


def test_difference_without_a_start_value_counts_from_the_first() -> None:
    """Unknown at the start: counting begins at the first value (5 → 7 is 2)."""
    assert difference(None, [(at(3), 5.0), (at(8), 7.0)], T0, at(15)) == 2.0
    assert difference(None, [(at(3), 5.0)], T0, at(15)) == 0.0
    assert difference(None, [(at(3), None)], T0, at(15)) is None
    assert difference(None, [], T0, at(15)) is None
    assert difference(1.0, [], T0, T0) is None


def test_difference_takes_changes_before_the_start_as_its_value_then() -> None:
    """A reading before the interval is where counting begins; one at the end is not in it."""
    changes = [(at(-5), 20.0), (at(7), 21.0), (at(15), 30.0)]
    assert difference(None, changes, T0, at(15)) == 1.0
    assert difference(10.0, changes, T0, at(15)) == 1.0


# --------------------------------------------------------------------------- per interval


def test_per_interval_means_carry_the_state_across_intervals() -> None:
    """2 kW from before; 6 kW from 10:20; unavailable 10:35-10:40; 0 from 10:40."""
    changes = [(at(-30), 2.0), (at(20), 6.0), (at(35), None), (at(40), 0.0)]
    values = per_interval("mean", None, changes, T0, QUARTER, 4)
    assert values == pytest.approx(
        [
            2.0,  # 10:00-10:15
            (2.0 * 5 + 6.0 * 10) / 15,  # 10:15-10:30
            (6.0 * 5 + 0.0 * 5) / 10,  # 10:30-10:45, 5 minutes unknown
            0.0,  # 10:45-11:00
        ]
    )


def test_per_interval_differences_carry_the_last_known_value() -> None:
    """A register 5.0 → 5.6 → unknown across a boundary → 6.1 → reset to 0.2."""
    changes = [
        (at(-1), 5.0),
        (at(10), 5.6),
        (at(14), None),
        (at(20), 6.1),
        (at(50), 0.2),
    ]
    values = per_interval("difference", None, changes, T0, QUARTER, 4)
    assert values == pytest.approx([0.6, 0.5, 0.0, 0.2])
    # Sum of the intervals = what the register counted in the hour.
    assert sum(v for v in values if v is not None) == pytest.approx(1.3)


def test_per_interval_gives_gaps_where_nothing_is_known() -> None:
    """No state until 10:20: the first interval is a gap, for a mean and a register."""
    changes = [(at(20), 3.0), (at(25), 4.0)]
    assert per_interval("mean", None, changes, T0, QUARTER, 2) == [
        None,
        pytest.approx((3.0 * 5 + 4.0 * 5) / 10),
    ]
    assert per_interval("difference", None, changes, T0, QUARTER, 2) == [None, 1.0]


# --------------------------------------------------------------------------- units


def test_units_converted_where_home_assistant_knows_both() -> None:
    """A mean power into an energy sensor is kW × hours; °F into °C; unknown units stay."""
    assert converted([2000.0, None], "mean", "W", "kWh", QUARTER) == (
        [pytest.approx(0.5), None],
        "kWh",
    )
    assert converted([1.0], "difference", "kWh", "kW", QUARTER) == ([4.0], "kW")
    assert converted([212.0], "mean", "°F", "°C", QUARTER) == (
        [pytest.approx(100.0)],
        "°C",
    )
    # FlexMeasures converts (or refuses with its reason) what Home Assistant cannot.
    assert converted([0.2], "mean", "EUR/kWh", "EUR/MWh", QUARTER) == ([0.2], "EUR/kWh")
    assert converted([3.0], "mean", None, "kW", QUARTER) == ([3.0], "kW")
