"""Copper Labs' additions: a menu of two sign-ins, and the app's sign-in link again."""

from custom_components.cloud_energy_meters.extras.base import Extras

from .flow import (
    APP_STEP,
    ENTERPRISE_STEP,
    KEY,
    REAUTH_STEP,
    async_step_app,
    async_step_enterprise,
    async_step_menu,
    async_step_reauth,
    reauth_step,
)

EXTRAS = Extras(
    key=KEY,
    steps={
        KEY: async_step_menu,
        APP_STEP: async_step_app,
        ENTERPRISE_STEP: async_step_enterprise,
        REAUTH_STEP: async_step_reauth,
    },
    reauth=reauth_step,
)
