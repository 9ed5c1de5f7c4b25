"""An entity's recorded history as one value per interval, in a FlexMeasures unit."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeassistant.components.recorder import history
from homeassistant.components.sensor import SensorStateClass
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant, State
from homeassistant.util.unit_conversion import (
    BaseUnitConverter,
    EnergyConverter,
    PowerConverter,
    TemperatureConverter,
    VolumeConverter,
)

from .intervals import Change, Rule, per_interval

REGISTERS = frozenset({SensorStateClass.TOTAL, SensorStateClass.TOTAL_INCREASING})
_CONVERTERS: tuple[type[BaseUnitConverter], ...] = (
    PowerConverter,
    EnergyConverter,
    TemperatureConverter,
    VolumeConverter,
)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Recorded:
    """An entity's numeric state changes from a period's start, and what it is."""

    changes: tuple[Change, ...]
    unit: str | None
    rule: Rule


def _number(state: State) -> float | None:
    try:
        return float(state.state)
    except ValueError:
        return None  # unknown, unavailable, text: no value


def recorded(
    hass: HomeAssistant, entity_id: str, start: datetime, end: datetime
) -> Recorded:
    """Read the entity's states in [start, end], the one in effect at `start` first.

    Its unit and whether it is a register come from its current state, else from
    the newest recorded one (recorder executor only).
    """
    states = history.state_changes_during_period(
        hass, start, end, entity_id, include_start_time_state=True
    ).get(entity_id, [])
    described = hass.states.get(entity_id) or (states[-1] if states else None)
    attributes = described.attributes if described else {}
    rule: Rule = "difference" if attributes.get("state_class") in REGISTERS else "mean"
    return Recorded(
        changes=tuple((state.last_updated, _number(state)) for state in states),
        unit=attributes.get(ATTR_UNIT_OF_MEASUREMENT),
        rule=rule,
    )


def intervals(
    found: Recorded, start: datetime, step: timedelta, count: int
) -> list[float | None]:
    """Return one value per interval, in the entity's unit (see intervals.py)."""
    return per_interval(found.rule, None, found.changes, start, step, count)


def converted(
    values: Sequence[float | None],
    rule: Rule,
    unit: str | None,
    target: str,
    step: timedelta,
) -> tuple[list[float | None], str]:
    """Return the values in the sensor's unit where both units are known.

    A register's energy per interval into a power sensor is divided by the
    interval's hours; a mean power into an energy sensor multiplied by them.
    Units Home Assistant cannot convert are left as they are: the server converts
    them, or refuses with its reason.
    """
    if not unit or unit == target:
        return list(values), target
    hours = step / _HOUR
    energy, power = EnergyConverter.VALID_UNITS, PowerConverter.VALID_UNITS
    if rule == "difference" and unit in energy and target in power:
        kwh = EnergyConverter.converter_factory(unit, "kWh")
        to_target = PowerConverter.converter_factory("kW", target)
        return _each(values, lambda value: to_target(kwh(value) / hours)), target
    if rule == "mean" and unit in power and target in energy:
        kw = PowerConverter.converter_factory(unit, "kW")
        to_energy = EnergyConverter.converter_factory("kWh", target)
        return _each(values, lambda value: to_energy(kw(value) * hours)), target
    for converter in _CONVERTERS:
        if unit in converter.VALID_UNITS and target in converter.VALID_UNITS:
            return _each(values, converter.converter_factory(unit, target)), target
    return list(values), unit


def _each(
    values: Sequence[float | None], convert: Callable[[float], float]
) -> list[float | None]:
    return [None if value is None else convert(value) for value in values]


def rule_of(state: State) -> Rule:
    """Return how an entity's intervals are worked out: a register's, or a mean."""
    return "difference" if state.attributes.get("state_class") in REGISTERS else "mean"


def convertible(state: State, target: str) -> bool:
    """Tell whether an entity's values can be sent to a sensor in `target` as such.

    Its unit must be the target's, or one Home Assistant converts into it (a
    register's energy into power and a mean power into energy included).
    """
    unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT) or ""
    if unit == target:
        return True
    return (
        bool(unit)
        and converted([1.0], rule_of(state), unit, target, _HOUR)[1] == target
    )
