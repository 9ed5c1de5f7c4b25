"""Config flow: pick a cloud, sign in, choose sites; reauth, reconfigure, options.

Built from what each cloud declares (its form, in providers/form.py) and adds (its
extras: steps of its own, subentries, what its refusals mean); no cloud is named here.
The flow's shape is a contract scripts rely on: step `user` is a menu of provider keys;
each provider step is a form with the cloud's credential fields and a collapsed section
`advanced` holding `api_url`; a step `sites` follows when the account has several sites.
"""

from collections.abc import Mapping
from functools import partial
import logging
from typing import Any, override

import probatio

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

from .accounts import acquire_account, release_account, save_to_account
from .claims import sites_taken
from .const import (
    CONF_ADVANCED,
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_BUDGET_SHARE,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_BUDGET_SHARE,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    MAX_BACKFILL_DAYS,
)
from .coordinator import CloudEnergyConfigEntry, provider_settings
from .extras import Step, extra_step, extras_of
from .forms import (
    advanced_fields,
    field_selector,
    pairing_error,
    read_advanced,
    read_sign_in,
    section_errors,
    settings_errors,
    sign_in_schema,
    sites_schema,
)
from .migration import VERSION as MIGRATED_VERSION
from .providers import PROVIDERS, Provider
from .providers.errors import (
    AuthError,
    ProviderError,
    RequestRejected,
    UnsupportedServer,
)
from .providers.form import Field
from .providers.model import Account, Site

_LOGGER = logging.getLogger(__name__)

PRESELECT_SITES = 10
"""A new entry's sites step chooses every site up to this many, none beyond: an
enterprise's sixty premises, all chosen, would spend a request budget meant for few."""


class CloudEnergyMetersConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add one account of one cloud."""

    VERSION = MIGRATED_VERSION

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._provider_key = ""
        self._data: dict[str, Any] = {}
        self._account: Account | None = None
        self._sites: tuple[Site, ...] = ()
        self._offered: tuple[Site, ...] = ()
        self._provider: Provider | None = None
        self.extra: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        """Route a step to its cloud: a sign-in step per provider, or a cloud's own."""
        step_id = name.removeprefix("async_step_")
        if step_id == name:
            raise AttributeError(name)
        if (step := extra_step(step_id)) is not None:
            return self._bind(step)
        if step_id in PROVIDERS:
            return lambda user_input=None: self._async_step_sign_in(step_id, user_input)
        raise AttributeError(name)

    def _bind(self, step: Step) -> Any:
        async def run(user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
            return await step(self, user_input)

        return run

    @staticmethod
    @callback
    @override
    def async_get_options_flow(
        config_entry: CloudEnergyConfigEntry,
    ) -> OptionsFlowHandler:
        """Return the options flow (polling interval, backfill days)."""
        return OptionsFlowHandler()

    @classmethod
    @callback
    @override
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return what users add one by one to an entry of this cloud, if anything."""
        return dict(extras_of(config_entry.data.get(CONF_PROVIDER, "")).subentries)

    @callback
    @override
    def async_remove(self) -> None:
        """Let go of the account state this flow used (finished, aborted or closed)."""
        release_account(self.hass, self.flow_id)

    # What the clouds' own steps use (extras.SignInFlow) --------------------------------

    async def async_sign_in(
        self,
        provider_key: str,
        data: Mapping[str, Any],
        settings: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """Sign in and list the sites; keep the account; return form errors.

        `settings` (datastreams, say) are proved readable too; an account already
        added ends the flow.
        """
        if errors := await self._async_validate(provider_key, data, settings):
            return errors
        assert self._account is not None
        await self.async_set_unique_id(f"{provider_key}_{self._account.id}")
        self._abort_if_unique_id_configured()
        self._provider_key = provider_key
        self._data = {CONF_PROVIDER: provider_key, **data, **self._learned}
        return {}

    def async_show_sign_in(
        self,
        provider_key: str,
        user_input: Mapping[str, Any] | None,
        errors: dict[str, str],
        extra_fields: Mapping[Any, Any] | None = None,
    ) -> ConfigFlowResult:
        """Show a cloud's sign-in form, what the user typed kept.

        An error of a field in the advanced section is shown on it, opened.
        """
        provider = PROVIDERS[provider_key]
        values = user_input or {}
        errors = section_errors(provider, errors)
        schema = sign_in_schema(
            provider,
            values if provider.self_hosted else values.get(CONF_ADVANCED) or {},
            extra_fields,
            errors,
        )
        return self.async_show_form(
            step_id=provider_key,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    def async_create_account(
        self, sites: list[str], subentries: list[dict[str, Any]] | None = None
    ) -> ConfigFlowResult:
        """Create the entry of the signed-in account with these sites."""
        assert self._account is not None
        name = PROVIDERS[self._provider_key].name
        title = " ".join(
            dict.fromkeys(part for part in (name, self._account.name) if part)
        )
        return self.async_create_entry(
            title=title,
            data={
                **self._data,
                CONF_SITES: sites,
                CONF_KNOWN_SITES: [site.id for site in self._sites],
            },
            subentries=[
                {
                    "subentry_type": subentry["subentry_type"],
                    "data": subentry["data"],
                    "title": subentry["title"],
                    "unique_id": subentry.get("unique_id"),
                }
                for subentry in subentries or ()
            ],
        )

    @property
    def _learned(self) -> dict[str, Any]:
        """Return credentials the cloud changed while validating (a rotated token)."""
        return dict(self._provider.learned) if self._provider else {}

    @property
    def signed_in_sites(self) -> tuple[Site, ...]:
        """Return the sites the account listed at sign-in."""
        return self._sites

    @property
    def reauth_entry(self) -> ConfigEntry:
        """Return the entry being reauthenticated."""
        return self._get_reauth_entry()

    async def async_reauth_sign_in(self, changes: Mapping[str, Any]) -> dict[str, str]:
        """Sign in to the reauthenticated entry's account, `changes` applied.

        Return form errors; credentials of another account abort (`wrong_account`).
        """
        entry = self.reauth_entry
        provider_key = entry.data[CONF_PROVIDER]
        data = {**entry.data, **changes}
        errors = await self._async_validate(
            provider_key, data, _entry_settings(entry, data)
        )
        if not errors:
            assert self._account is not None
            await self.async_set_unique_id(f"{provider_key}_{self._account.id}")
            self._abort_if_unique_id_mismatch(reason="wrong_account")
        # The entry's addresses are not on this form: one refused is the form's error.
        return {"base": error for error in errors.values()}

    def async_update_reauth_entry(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        """Save `changes`, and what the cloud changed meanwhile; reload the entry."""
        return self.async_update_reload_and_abort(
            self.reauth_entry, data_updates={**changes, **self._learned}
        )

    async def _async_validate(
        self,
        provider_key: str,
        data: Mapping[str, Any],
        settings: Mapping[str, Any] | None = None,
        entry: ConfigEntry | None = None,
    ) -> dict[str, str]:
        """Sign in and list the sites; return form errors (empty on success).

        A refused address is an error of the field it is typed in (its form key).

        With the `entry` whose own credentials are checked, what the cloud changes in
        them (a rotated refresh token) is saved at once, as its coordinator would:
        the one they replace is dead, even if the flow ends here.
        """
        provider_class = PROVIDERS[provider_key]
        if errors := settings_errors(provider_class, data):
            return errors
        if error := pairing_error(provider_class.form, data):
            return {"base": error}
        credentials = {key: data[key] for key in provider_class.form.keys}
        provider = self._provider = provider_class(
            async_get_clientsession(self.hass),
            api_url=data[CONF_API_URL],
            credentials=credentials,
            state=acquire_account(
                self.hass, self.flow_id, provider_class, data[CONF_API_URL], credentials
            ),
            settings=settings,
        )
        if entry is not None:
            provider.on_credentials = partial(
                save_to_account, self.hass, entry, provider
            )
        try:
            self._account = await provider.async_login()
            self._sites = await provider.async_list_sites()
        except AuthError:
            return {"base": "invalid_auth"}
        except UnsupportedServer as err:
            _LOGGER.debug("%s: %s", provider_class.name, err)
            return {"base": "unsupported_server"}
        except RequestRejected as err:
            _LOGGER.debug("%s refused the account: %s", provider_class.name, err)
            if err.status in (403, 404):
                refused = extras_of(provider_key).refused
                return {"base": refused.get(err.status, "not_permitted")}
            return {"base": "cannot_connect"}
        except ProviderError as err:
            _LOGGER.debug("Validating %s failed: %s", provider_class.name, err)
            return {"base": "cannot_connect"}
        except Exception:
            _LOGGER.exception("Unexpected error validating %s", provider_class.name)
            return {"base": "unknown"}
        if not self._sites:
            return {"base": "no_sites"}
        return {}

    # Adding an account -----------------------------------------------------------------

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which cloud to connect."""
        return self.async_show_menu(step_id="user", menu_options=list(PROVIDERS))

    async def _async_step_sign_in(
        self, provider_key: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Ask for a cloud's credentials and check them by signing in."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = read_sign_in(PROVIDERS[provider_key], user_input)
            if not errors:
                errors = await self.async_sign_in(provider_key, data)
            if not errors:
                return await self.async_offer_sites()
        return self.async_show_sign_in(provider_key, user_input, errors)

    async def async_offer_sites(self) -> ConfigFlowResult:
        """Offer the account's sites no other entry holds; ask only if several."""
        taken = sites_taken(
            self.hass,
            self._provider_key,
            self._data.get(CONF_API_URL) or self._entry_data[CONF_API_URL],
            self._entry_id,
        )
        self._offered = tuple(site for site in self._sites if site.id not in taken)
        if not self._offered:
            return self.async_abort(reason="already_configured")
        if len(self._offered) == 1:
            return await self.async_step_sites({CONF_SITES: [self._offered[0].id]})
        return await self.async_step_sites()

    @property
    def _entry_id(self) -> str | None:
        """Return the entry being reconfigured, if any."""
        if self.source == SOURCE_RECONFIGURE:
            return self._get_reconfigure_entry().entry_id
        return None

    @property
    def _entry_data(self) -> Mapping[str, Any]:
        if self.source == SOURCE_RECONFIGURE:
            return self._get_reconfigure_entry().data
        return {}

    async def async_step_sites(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Let the user choose which of the account's sites to add."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if chosen := list(user_input[CONF_SITES]):
                if self.source == SOURCE_RECONFIGURE:
                    return self.async_update_reload_and_abort(
                        self._get_reconfigure_entry(),
                        data_updates={
                            **self._data,
                            CONF_SITES: chosen,
                            CONF_KNOWN_SITES: [site.id for site in self._sites],
                        },
                    )
                return self.async_create_account(chosen)
            errors["base"] = "no_sites_selected"
        current = list(self._entry_data.get(CONF_SITES, ()))
        available = [site.id for site in self._offered]
        default = [site for site in current if site in available]
        if not default and len(available) <= PRESELECT_SITES:
            default = available
        return self.async_show_form(
            step_id="sites",
            data_schema=sites_schema(self._offered, default),
            errors=errors,
        )

    # Reauthentication ------------------------------------------------------------------

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start reauthentication after the cloud refused the credentials.

        A cloud may sign in again its own way (a link to open, not a secret to type).
        """
        reauth = extras_of(entry_data[CONF_PROVIDER]).reauth
        if reauth is not None and (step := reauth(entry_data)) is not None:
            return await step(self, None)
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the secrets again and check them."""
        entry = self.reauth_entry
        provider_key = entry.data[CONF_PROVIDER]
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await self.async_reauth_sign_in(user_input)
            if not errors:
                return self.async_update_reauth_entry(user_input)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=probatio.Schema(
                {
                    probatio.Required(field.key): field_selector(field)
                    for field in _secrets(entry)
                }
            ),
            description_placeholders={
                "account": entry.title,
                "cloud": PROVIDERS[provider_key].name,
            },
            errors=errors,
        )

    # Reconfiguration -------------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the API URL, the secrets (left empty: kept) and the chosen sites."""
        entry = self._get_reconfigure_entry()
        provider_key = entry.data[CONF_PROVIDER]
        provider = PROVIDERS[provider_key]
        secrets = _secrets(entry)
        errors: dict[str, str] = {}
        if user_input is not None:
            changes = read_advanced(provider, user_input)
            changes.update(
                {
                    field.key: user_input[field.key]
                    for field in secrets
                    if user_input.get(field.key)
                }
            )
            data = {**entry.data, **changes}
            errors = await self._async_validate(
                provider_key, data, _entry_settings(entry, data), entry
            )
            if not errors:
                assert self._account is not None
                await self.async_set_unique_id(f"{provider_key}_{self._account.id}")
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                self._provider_key = provider_key
                self._data = {**changes, **self._learned}
                return await self.async_offer_sites()
        fields = advanced_fields(provider, user_input or entry.data)
        fields.update(
            {probatio.Optional(field.key): field_selector(field) for field in secrets}
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=probatio.Schema(fields),
            description_placeholders={"cloud": provider.name},
            errors=errors,
        )


def _secrets(entry: ConfigEntry) -> list[Field]:
    """Return the secrets an entry's account uses: required ones, optional ones it has."""
    return [
        field
        for field in PROVIDERS[entry.data[CONF_PROVIDER]].form.secrets
        if field.required or entry.data.get(field.key)
    ]


def _entry_settings(entry: ConfigEntry, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the provider of an entry is configured with, `data` applied."""
    keys = PROVIDERS[entry.data[CONF_PROVIDER]].form.keys
    return provider_settings(entry, dict.fromkeys(keys), data)


class OptionsFlowHandler(OptionsFlowWithReload):
    """Polling interval (within the cloud's rate budget) and backfill depth."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and check the options."""
        entry = self.config_entry
        budgeted = bool(PROVIDERS[entry.data[CONF_PROVIDER]].policy.budgets)
        minimum = 1
        if entry.state is ConfigEntryState.LOADED:
            minimum = int(entry.runtime_data.minimum_interval.total_seconds() // 60)
        errors: dict[str, str] = {}
        if user_input is not None:
            options = {
                CONF_UPDATE_INTERVAL: int(user_input[CONF_UPDATE_INTERVAL]),
                CONF_BACKFILL_DAYS: int(user_input[CONF_BACKFILL_DAYS]),
            }
            if budgeted:
                options[CONF_BUDGET_SHARE] = int(user_input[CONF_BUDGET_SHARE])
            if options[CONF_UPDATE_INTERVAL] < minimum:
                errors[CONF_UPDATE_INTERVAL] = "interval_too_short"
            else:
                return self.async_create_entry(data=options)
        current = {
            CONF_UPDATE_INTERVAL: entry.options.get(
                CONF_UPDATE_INTERVAL, max(DEFAULT_UPDATE_INTERVAL, minimum)
            ),
            CONF_BACKFILL_DAYS: entry.options.get(
                CONF_BACKFILL_DAYS, DEFAULT_BACKFILL_DAYS
            ),
            CONF_BUDGET_SHARE: entry.options.get(
                CONF_BUDGET_SHARE, DEFAULT_BUDGET_SHARE
            ),
            **(user_input or {}),
        }
        share: dict[Any, Any] = {}
        if budgeted:
            # The cloud counts requests per account: the rest is left to the
            # account's other clients (the cloud's own phone app).
            share[probatio.Required(CONF_BUDGET_SHARE)] = NumberSelector(
                NumberSelectorConfig(
                    min=10,
                    max=100,
                    step=5,
                    mode=NumberSelectorMode.SLIDER,
                    unit_of_measurement="%",
                )
            )
        schema = probatio.Schema(
            {
                probatio.Required(CONF_UPDATE_INTERVAL): NumberSelector(
                    NumberSelectorConfig(
                        min=1,
                        max=1440,
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="min",
                    )
                ),
                probatio.Required(CONF_BACKFILL_DAYS): NumberSelector(
                    NumberSelectorConfig(
                        min=1,
                        max=MAX_BACKFILL_DAYS,
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="d",
                    )
                ),
                **share,
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, current),
            description_placeholders={"minimum": str(minimum)},
            errors=errors,
        )
