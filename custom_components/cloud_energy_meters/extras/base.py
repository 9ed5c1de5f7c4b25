"""What a cloud may add to the generic Home Assistant layer, and what it may use."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import probatio

from custom_components.cloud_energy_meters.providers.model import Site
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType


class LoadedEntrySubentryFlow(ConfigSubentryFlow):
    """A subentry flow whose adding and reconfiguring share one form.

    Both need the entry loaded (they ask its cloud); a subclass draws and reads the
    form in `_async_form`.
    """

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a subentry."""
        return await self._async_step(user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a subentry."""
        return await self._async_step(user_input)

    async def _async_step(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        if self._get_entry().state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        return await self._async_form(user_input)

    async def _async_form(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Show the form, or check and save what was entered."""
        raise NotImplementedError


class SignInFlow(Protocol):
    """What a cloud's own steps use of the config flow."""

    hass: HomeAssistant
    extra: dict[str, Any]
    """The cloud's own state between its steps."""

    async def async_sign_in(
        self,
        provider_key: str,
        data: Mapping[str, Any],
        settings: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """Check the credentials (and settings); keep them; return form errors."""

    def async_show_sign_in(
        self,
        provider_key: str,
        user_input: Mapping[str, Any] | None,
        errors: dict[str, str],
        extra_fields: Mapping[Any, Any] | None = None,
    ) -> ConfigFlowResult:
        """Show the cloud's sign-in form again (with `extra_fields`)."""

    def async_create_account(
        self,
        sites: list[str],
        subentries: list[dict[str, Any]] | None = None,
    ) -> ConfigFlowResult:
        """Create the entry of the signed-in account with these sites."""

    async def async_offer_sites(self) -> ConfigFlowResult:
        """Go on to the generic sites step (skipped when the account has one site)."""

    @property
    def signed_in_sites(self) -> tuple[Site, ...]:
        """Return the sites the account listed at sign-in."""

    @property
    def reauth_entry(self) -> ConfigEntry:
        """Return the entry being reauthenticated."""

    async def async_reauth_sign_in(self, changes: Mapping[str, Any]) -> dict[str, str]:
        """Sign in to the reauthenticated entry's account, `changes` applied.

        Return form errors; credentials of another account abort the flow.
        """

    def async_update_reauth_entry(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        """Save `changes` (and what the cloud changed meanwhile); reload the entry."""

    def async_show_form(
        self,
        *,
        step_id: str | None = None,
        data_schema: probatio.Schema | None = None,
        errors: dict[str, str] | None = None,
        description_placeholders: Mapping[str, str] | None = None,
    ) -> ConfigFlowResult:
        """Show a form (Home Assistant's)."""

    def async_show_menu(
        self,
        *,
        step_id: str | None = None,
        menu_options: list[str],
    ) -> ConfigFlowResult:
        """Show a menu (Home Assistant's)."""

    def add_suggested_values_to_schema(
        self, data_schema: probatio.Schema, suggested_values: Mapping[str, Any] | None
    ) -> probatio.Schema:
        """Fill a form with values (Home Assistant's)."""


type Step = Callable[[SignInFlow, dict[str, Any] | None], Awaitable[ConfigFlowResult]]


@dataclass(frozen=True, slots=True)
class Extras:
    """What one cloud adds to the generic layer (nothing, by default)."""

    key: str
    """The cloud's provider key."""
    steps: Mapping[str, Step] = field(default_factory=dict)
    """Flow steps of its own; one named after the provider key replaces the sign-in."""
    subentries: Mapping[str, type[ConfigSubentryFlow]] = field(default_factory=dict)
    """Things users add one by one to an entry (config subentry types)."""
    refused: Mapping[int, str] = field(default_factory=dict)
    """The form error a refused sign-in (HTTP status) means, beyond "not permitted"."""
    reauth: Callable[[Mapping[str, Any]], Step | None] | None = None
    """The cloud's own reauthentication step for an entry (by its data), if it has
    one for it; otherwise the generic step asks for the secrets again."""
    async_setup_actions: Callable[[HomeAssistant, ConfigType], None] | None = None
    """Register the cloud's actions (when the integration is set up)."""
    async_start_entry: (
        Callable[[HomeAssistant, ConfigEntry], Awaitable[None]] | None
    ) = None
    """Start what the cloud runs beside an entry's coordinator once it is loaded
    (FlexMeasures: sending measurements); stop it with `entry.async_on_unload`."""
    async_remove_entry: (
        Callable[[HomeAssistant, ConfigEntry], Awaitable[None]] | None
    ) = None
    """Remove what the cloud kept for an entry that is deleted."""
    async_migrate_from: (
        Callable[[HomeAssistant, ConfigEntry, int], Awaitable[list[str]]] | None
    ) = None
    """Bring an entry of a version to the next; return the statistic ids moved to."""


NONE = Extras(key="")
"""What a cloud without extras adds."""
