"""Energydata.dk's additions: datastreams the user names, and actions sending data."""

from custom_components.cloud_energy_meters.extras.base import Extras

from .actions import async_setup_actions
from .datastreams import REFUSED, SUBENTRY_TYPE, DatastreamSubentryFlow
from .flow import (
    DATASTREAM_STEP,
    KEY,
    UNIT_STEP,
    async_step_datastream,
    async_step_datastream_unit,
    async_step_sign_in,
)
from .migration import async_migrate_from

EXTRAS = Extras(
    key=KEY,
    steps={
        KEY: async_step_sign_in,
        DATASTREAM_STEP: async_step_datastream,
        UNIT_STEP: async_step_datastream_unit,
    },
    subentries={SUBENTRY_TYPE: DatastreamSubentryFlow},
    refused=REFUSED,
    async_setup_actions=async_setup_actions,
    async_migrate_from=async_migrate_from,
)
