"""FlexMeasures' additions: measurements sent from Home Assistant, actions, schedules."""

from custom_components.cloud_energy_meters.extras.base import Extras

from .actions import async_setup_actions

EXTRAS = Extras(key="flexmeasures", async_setup_actions=async_setup_actions)
