"""How a Home Assistant sensor's values become a FlexMeasures sensor's, unit to unit."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from homeassistant.core import State
from homeassistant.util.unit_conversion import (
    EnergyConverter,
    PowerConverter,
    TemperatureConverter,
)

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Conversion:
    """Work out each interval as growth (a register) or a mean; post it in `unit`."""

    register: bool
    unit: str
    convert: Callable[[float], float]


def _units(
    converter: type[EnergyConverter | PowerConverter | TemperatureConverter],
) -> set[str]:
    return {unit for unit in converter.VALID_UNITS if unit}


def conversion(
    state: State | None, source: str, target: str, step: timedelta
) -> Conversion | None:
    """Return how the sensor's values are sent to a sensor in `target`; None: no way.

    A register (energy) sends its growth per interval; into a power sensor, as the
    mean power of the interval. A power sends its mean; into an energy sensor, the
    energy of the interval. A temperature converts; another unit must match.
    """
    energy, power = _units(EnergyConverter), _units(PowerConverter)
    hours = step / HOUR
    if source in energy:
        if target in energy:
            return Conversion(
                True, target, lambda v: EnergyConverter.convert(v, source, target)
            )
        if target in power:
            return Conversion(
                True,
                target,
                lambda v: PowerConverter.convert(
                    EnergyConverter.convert(v, source, "kWh") / hours, "kW", target
                ),
            )
        return None
    if source in power:
        if target in power:
            return Conversion(
                False, target, lambda v: PowerConverter.convert(v, source, target)
            )
        if target in energy:
            return Conversion(
                False,
                target,
                lambda v: EnergyConverter.convert(
                    PowerConverter.convert(v, source, "kW") * hours, "kWh", target
                ),
            )
        return None
    temperatures = _units(TemperatureConverter)
    if source in temperatures and target in temperatures:
        return Conversion(
            False, target, lambda v: TemperatureConverter.convert(v, source, target)
        )
    if source == target or (state is not None and not source and not target):
        return Conversion(False, target, lambda v: v)
    return None
