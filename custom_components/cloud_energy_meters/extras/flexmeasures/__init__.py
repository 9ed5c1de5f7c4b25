"""FlexMeasures' additions: measurements sent from Home Assistant, actions, schedules."""

from custom_components.cloud_energy_meters.extras.base import Extras

from .actions import async_setup_actions
from .forward import SUBENTRY_TYPE, async_remove_entry, async_start_entry
from .measurement import MeasurementSubentryFlow

EXTRAS = Extras(
    key="flexmeasures",
    subentries={SUBENTRY_TYPE: MeasurementSubentryFlow},
    async_setup_actions=async_setup_actions,
    async_start_entry=async_start_entry,
    async_remove_entry=async_remove_entry,
)
