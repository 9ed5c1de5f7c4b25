"""A recorded sensor, one value per interval: the time-weighted mean, a register's growth."""

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.extras.flexmeasures.sampling import (
    growth,
    interval_values,
    mean,
)

T0 = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    """Return T0 plus some minutes."""
    return T0 + minutes * MINUTE


def test_mean_weighs_each_value_by_how_long_it_held() -> None:
    """1 kW for 5 minutes then 4 kW for 10: 3 kW over the quarter."""
    changes = [(at(-3), 1.0), (at(5), 4.0)]
    assert mean(changes, at(0), at(15)) == pytest.approx(3.0)


def test_unknown_time_does_not_count() -> None:
    """Unknown for 10 minutes: the mean is of the 5 known ones; all unknown: None."""
    changes = [(at(0), None), (at(10), 2.0)]
    assert mean(changes, at(0), at(15)) == pytest.approx(2.0)
    assert mean([(at(0), None)], at(0), at(15)) is None
    assert mean([], at(0), at(15)) is None


def test_growth_of_a_register_counts_a_reset_from_zero() -> None:
    """100 → 103, reset to 0, → 2: grew 3 + 2 = 5."""
    changes = [(at(-1), 100.0), (at(4), 103.0), (at(8), 0.0), (at(12), 2.0)]
    assert growth(changes, at(0), at(15)) == pytest.approx(5.0)


def test_growth_needs_both_ends() -> None:
    """Unknown at the start or at the end: no value (never a guessed 0)."""
    assert growth([(at(2), 5.0), (at(9), 7.0)], at(0), at(15)) is None
    assert growth([(at(-1), 5.0), (at(9), None)], at(0), at(15)) is None
    assert growth([(at(-1), 5.0)], at(0), at(15)) == 0.0


def test_interval_values_one_per_step() -> None:
    """Four quarters of a register and of a measurement."""
    register = [(at(-1), 10.0), (at(10), 11.0), (at(40), 13.5)]
    assert interval_values(
        register, at(0), 15 * MINUTE, 4, register=True
    ) == pytest.approx([1.0, 0.0, 2.5, 0.0])
    power = [(at(-1), 2.0), (at(30), None), (at(50), 6.0)]
    values = interval_values(power, at(0), 15 * MINUTE, 4, register=False)
    assert values[:2] == pytest.approx([2.0, 2.0])
    assert values[2] is None
    assert values[3] == pytest.approx(6.0)
