"""Config flow: pick a cloud, sign in, choose sites; reauth, reconfigure, options.

The flow's shape is a contract scripts rely on: step `user` is a menu of provider keys;
each provider step is a form with the cloud's credential fields and a collapsed section
`advanced` holding `api_url`; a step `sites` follows when the account has several sites.
"""

from collections.abc import Mapping
from dataclasses import dataclass
import ipaddress
import logging
from typing import Any

import probatio
from yarl import URL

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import (
    CONF_API_TOKEN,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_PASSWORD,
    CONF_USERNAME,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .accounts import acquire_account, release_account
from .claims import sites_taken
from .const import (
    CONF_ACCOUNT_ID,
    CONF_ADVANCED,
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_DATASTREAMS,
    CONF_KNOWN_SITES,
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_PARTNER_ID,
    CONF_PROVIDER,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    MAX_BACKFILL_DAYS,
)
from .coordinator import CloudEnergyConfigEntry, provider_settings
from .datastreams import (
    CONF_ID,
    REFUSED as DATASTREAMS_REFUSED,
    SUBENTRY_TYPE,
    DatastreamSubentryFlow,
    datastream_schema,
    datastreams_taken,
    describe,
)
from .forms import whole_number
from .migration import VERSION as MIGRATED_VERSION
from .providers import PROVIDERS, Provider
from .providers.energydata import MQTT_HOST, MQTT_PORT, EnergydataProvider
from .providers.errors import AuthError, ProviderError, RequestRejected
from .providers.model import Account, Site

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Field:
    """One credential field of a cloud's form.

    `secret` fields (shown as passwords) are the ones asked again on reauthentication;
    `number` fields hold an integer id (typed as text: an id has no sensible default,
    and a number box would show its minimum as one).
    """

    key: str
    secret: bool = False
    required: bool = True
    number: bool = False


# Each cloud's credential fields, with Home Assistant's standard keys where they exist.
CREDENTIAL_FIELDS: dict[str, tuple[Field, ...]] = {
    "climkit": (Field(CONF_USERNAME), Field(CONF_PASSWORD, secret=True)),
    "energydata": (Field(CONF_API_TOKEN, secret=True),),
    "locus": (
        Field(CONF_CLIENT_ID),
        Field(CONF_CLIENT_SECRET, secret=True),
        Field(CONF_USERNAME, required=False),
        Field(CONF_PASSWORD, secret=True, required=False),
        Field(CONF_PARTNER_ID, number=True),
    ),
}
# Fields given together or not at all (Locus: the password grant needs both; a
# client-credentials API client needs neither).
PAIRED_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "locus": ((CONF_USERNAME, CONF_PASSWORD),),
}

# Settings beside the API URL in the collapsed section: (key, default, number?).
ADVANCED_FIELDS: dict[str, tuple[tuple[str, Any, bool], ...]] = {
    "energydata": (
        (CONF_MQTT_HOST, MQTT_HOST, False),
        (CONF_MQTT_PORT, MQTT_PORT, True),
    ),
}

_AUTOCOMPLETE = {CONF_USERNAME: "username", CONF_PASSWORD: "current-password"}

# What a refusal (403, 404) of a sign-in means, where it means more than "not permitted".
REFUSED: dict[str, Mapping[int, str]] = {EnergydataProvider.key: DATASTREAMS_REFUSED}


def url_error(url: str) -> str | None:
    """Return why an API URL is refused: HTTPS only, except on a loopback host."""
    try:
        parsed = URL(url.strip())
    except ValueError:
        return "invalid_url"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "invalid_url"
    if parsed.scheme == "https":
        return None
    if parsed.host == "localhost":
        return None
    try:
        loopback = ipaddress.ip_address(parsed.host).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else "insecure_url"


def _text(kind: TextSelectorType, key: str) -> TextSelector:
    config = TextSelectorConfig(type=kind)
    if key in _AUTOCOMPLETE:
        config["autocomplete"] = _AUTOCOMPLETE[key]
    return TextSelector(config)


def _selector(field: Field) -> Any:
    kind = TextSelectorType.PASSWORD if field.secret else TextSelectorType.TEXT
    return _text(kind, field.key)


def _marker(field: Field) -> Any:
    if field.required:
        return probatio.Required(field.key)
    return probatio.Optional(field.key, default="")


def _advanced_fields(provider_key: str, values: Mapping[str, Any]) -> dict[Any, Any]:
    """Return the API URL and the cloud's other settings, with their defaults."""
    fields: dict[Any, Any] = {
        probatio.Required(
            CONF_API_URL,
            default=values.get(CONF_API_URL) or PROVIDERS[provider_key].default_url,
        ): _text(TextSelectorType.URL, "")
    }
    for key, default, number in ADVANCED_FIELDS.get(provider_key, ()):
        fields[probatio.Required(key, default=values.get(key) or default)] = (
            NumberSelector(
                NumberSelectorConfig(
                    min=1, max=65535, step=1, mode=NumberSelectorMode.BOX
                )
            )
            if number
            else TextSelector()
        )
    return fields


def _advanced(provider_key: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings of the advanced section (defaults for what is left out)."""
    data: dict[str, Any] = {
        CONF_API_URL: str(
            values.get(CONF_API_URL) or PROVIDERS[provider_key].default_url
        ).strip()
    }
    for key, default, number in ADVANCED_FIELDS.get(provider_key, ()):
        value = values.get(key) or default
        data[key] = int(value) if number else str(value).strip()
    return data


def _credentials_schema(
    provider_key: str,
    advanced: Mapping[str, Any],
    extra: Mapping[Any, Any] | None = None,
) -> probatio.Schema:
    fields: dict[Any, Any] = {
        _marker(field): _selector(field) for field in CREDENTIAL_FIELDS[provider_key]
    }
    fields.update(extra or {})
    # Optional for scripts driving the flow over REST: left out, it means the default.
    fields[probatio.Optional(CONF_ADVANCED)] = section(
        probatio.Schema(_advanced_fields(provider_key, advanced)), {"collapsed": True}
    )
    return probatio.Schema(fields)


def _credentials(
    provider_key: str, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the cloud's credentials from a form (trimmed ids, integer numbers).

    Also the form errors of fields that do not hold what they must.
    """
    credentials: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in CREDENTIAL_FIELDS[provider_key]:
        value = user_input.get(field.key, "")
        if field.number:
            value = whole_number(value)
            if value is None:
                errors[field.key] = "invalid_number"
        elif not field.secret:
            value = str(value).strip()
        credentials[field.key] = value
    return credentials, errors


def _pairing_error(provider_key: str, credentials: Mapping[str, Any]) -> str | None:
    for first, second in PAIRED_FIELDS.get(provider_key, ()):
        if bool(credentials.get(first)) != bool(credentials.get(second)):
            return "credentials_incomplete"
    return None


def _datastream_ids(text: str) -> list[int] | None:
    """Read "65603, 65607" into ids; None when it is not such a list."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        return None
    return list(dict.fromkeys(int(part) for part in parts))


def _sites_schema(sites: tuple[Site, ...], chosen: list[str]) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(CONF_SITES, default=chosen): SelectSelector(
                SelectSelectorConfig(
                    options=[
                        SelectOptionDict(value=site.id, label=site.name)
                        for site in sites
                    ],
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                )
            )
        }
    )


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
        self._pending: list[int] = []
        self._described: list[dict[str, Any]] = []

    @staticmethod
    @callback
    def async_get_options_flow(
        config_entry: CloudEnergyConfigEntry,
    ) -> OptionsFlowHandler:
        """Return the options flow (polling interval, backfill days)."""
        return OptionsFlowHandler()

    @callback
    def async_remove(self) -> None:
        """Let go of the account state this flow used (finished, aborted or closed)."""
        release_account(self.hass, self.flow_id)

    async def _async_validate(
        self,
        provider_key: str,
        data: Mapping[str, Any],
        settings: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """Sign in and list the sites; return form errors (empty on success).

        `settings` are what the user configured beyond credentials (an entry's
        datastreams, say): signing in proves the credentials may read them.
        """
        if error := url_error(data[CONF_API_URL]) or _pairing_error(provider_key, data):
            return {"base": error}
        provider_class = PROVIDERS[provider_key]
        credentials = {key: data[key] for key in provider_class.credential_keys}
        provider = self._provider = provider_class(
            async_get_clientsession(self.hass),
            api_url=data[CONF_API_URL],
            credentials=credentials,
            state=acquire_account(
                self.hass, self.flow_id, provider_class, data[CONF_API_URL], credentials
            ),
            settings=settings,
        )
        try:
            self._account = await provider.async_login()
            self._sites = await provider.async_list_sites()
        except AuthError:
            return {"base": "invalid_auth"}
        except RequestRejected as err:
            _LOGGER.debug("%s refused the account: %s", provider_class.name, err)
            if err.status in (403, 404):
                return {
                    "base": REFUSED.get(provider_key, {}).get(
                        err.status, "not_permitted"
                    )
                }
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

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which cloud to connect."""
        return self.async_show_menu(step_id="user", menu_options=list(PROVIDERS))

    async def async_step_climkit(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for Climkit API credentials."""
        return await self._async_step_credentials("climkit", user_input)

    async def async_step_locus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for Locus Energy API credentials and the partner id."""
        return await self._async_step_credentials("locus", user_input)

    async def async_step_energydata(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for an Energydata.dk token and the datastreams to read with it."""
        key = EnergydataProvider.key
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = _credentials(key, user_input)
            data.update(_advanced(key, user_input.get(CONF_ADVANCED) or {}))
            ids = _datastream_ids(str(user_input.get(CONF_DATASTREAMS, "")))
            if ids is None:
                errors[CONF_DATASTREAMS] = "invalid_datastreams"
            elif set(ids) & datastreams_taken(self.hass, data[CONF_API_URL]):
                errors[CONF_DATASTREAMS] = "already_configured"
            account_id = EnergydataProvider.new_account_id()
            if not errors and ids is not None:
                errors = await self._async_validate(
                    key,
                    data,
                    {
                        CONF_ACCOUNT_ID: account_id,
                        CONF_DATASTREAMS: [{CONF_ID: i} for i in ids],
                    },
                )
            if not errors and ids is not None:
                await self.async_set_unique_id(f"{key}_{account_id}")
                self._provider_key = key
                self._data = {CONF_PROVIDER: key, **data, CONF_ACCOUNT_ID: account_id}
                self._pending = ids
                return await self.async_step_datastream()
        schema = _credentials_schema(
            key,
            (user_input or {}).get(CONF_ADVANCED) or {},
            {probatio.Required(CONF_DATASTREAMS): TextSelector()},
        )
        return self.async_show_form(
            step_id=key,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_datastream(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Describe each datastream named in the first step, one after the other."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, error = describe(self._pending[0], user_input)
            if error is None:
                self._described.append(data)
                self._pending.pop(0)
                user_input = None  # the next datastream starts from a blank form
            else:
                errors["base"] = error
        if not self._pending:
            site = self._sites[0]
            return self.async_create_entry(
                title=EnergydataProvider.name,
                data={**self._data, CONF_SITES: [site.id], CONF_KNOWN_SITES: [site.id]},
                subentries=[
                    {
                        "subentry_type": SUBENTRY_TYPE,
                        "data": described,
                        "title": described["name"],
                        "unique_id": str(described[CONF_ID]),
                    }
                    for described in self._described
                ],
            )
        done = len(self._described)
        return self.async_show_form(
            step_id="datastream",
            data_schema=self.add_suggested_values_to_schema(
                datastream_schema(with_id=False),
                user_input or {"name": f"Datastream {self._pending[0]}"},
            ),
            description_placeholders={
                "id": str(self._pending[0]),
                "number": str(done + 1),
                "count": str(done + len(self._pending)),
            },
            errors=errors,
        )

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Datastreams are added one by one, for Energydata.dk accounts."""
        if config_entry.data.get(CONF_PROVIDER) == EnergydataProvider.key:
            return {SUBENTRY_TYPE: DatastreamSubentryFlow}
        return {}

    async def _async_step_credentials(
        self, provider_key: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Ask for a cloud's credentials and check them by signing in."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = _credentials(provider_key, user_input)
            data.update(_advanced(provider_key, user_input.get(CONF_ADVANCED) or {}))
            if not errors:
                errors = await self._async_validate(provider_key, data)
            if not errors:
                assert self._account is not None
                await self.async_set_unique_id(f"{provider_key}_{self._account.id}")
                self._abort_if_unique_id_configured()
                self._provider_key = provider_key
                self._data = {CONF_PROVIDER: provider_key, **data}
                return await self._async_step_offer_sites()
        schema = _credentials_schema(
            provider_key, (user_input or {}).get(CONF_ADVANCED) or {}
        )
        return self.async_show_form(
            step_id=provider_key,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def _async_step_offer_sites(self) -> ConfigFlowResult:
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
                return self._async_create(chosen)
            errors["base"] = "no_sites_selected"
        current = list(self._entry_data.get(CONF_SITES, ()))
        available = [site.id for site in self._offered]
        default = [site for site in current if site in available] or available
        return self.async_show_form(
            step_id="sites",
            data_schema=_sites_schema(self._offered, default),
            errors=errors,
        )

    def _async_create(self, sites: list[str]) -> ConfigFlowResult:
        assert self._account is not None
        provider_class = PROVIDERS[self._provider_key]
        return self.async_create_entry(
            title=f"{provider_class.name} {self._account.name}",
            data={
                **self._data,
                CONF_SITES: sites,
                CONF_KNOWN_SITES: [site.id for site in self._sites],
            },
        )

    # Reauthentication ------------------------------------------------------------------

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start reauthentication after the cloud refused the credentials."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the secrets again and check them."""
        entry = self._get_reauth_entry()
        provider_key = entry.data[CONF_PROVIDER]
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**entry.data, **user_input}
            errors = await self._async_validate(
                provider_key, data, _entry_settings(entry, data)
            )
            if not errors:
                assert self._account is not None
                await self.async_set_unique_id(f"{provider_key}_{self._account.id}")
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self.async_update_reload_and_abort(
                    entry, data_updates=user_input
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=probatio.Schema(
                {
                    probatio.Required(field.key): _selector(field)
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
        """Change the API URL, the secrets and the chosen sites of an account.

        A secret left empty stays as it is.
        """
        entry = self._get_reconfigure_entry()
        provider_key = entry.data[CONF_PROVIDER]
        secrets = _secrets(entry)
        errors: dict[str, str] = {}
        if user_input is not None:
            changes = _advanced(provider_key, user_input)
            changes.update(
                {
                    field.key: user_input[field.key]
                    for field in secrets
                    if user_input.get(field.key)
                }
            )
            data = {**entry.data, **changes}
            errors = await self._async_validate(
                provider_key, data, _entry_settings(entry, data)
            )
            if not errors:
                assert self._account is not None
                await self.async_set_unique_id(f"{provider_key}_{self._account.id}")
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                self._provider_key = provider_key
                self._data = changes
                return await self._async_step_offer_sites()
        fields = _advanced_fields(provider_key, user_input or entry.data)
        fields.update(
            {probatio.Optional(field.key): _selector(field) for field in secrets}
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=probatio.Schema(fields),
            description_placeholders={"cloud": PROVIDERS[provider_key].name},
            errors=errors,
        )


def _secrets(entry: ConfigEntry) -> list[Field]:
    """Return the secrets an entry's account uses: required ones, optional ones it has."""
    return [
        field
        for field in CREDENTIAL_FIELDS[entry.data[CONF_PROVIDER]]
        if field.secret and (field.required or entry.data.get(field.key))
    ]


def _entry_settings(entry: ConfigEntry, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the provider of an entry is configured with, `data` applied."""
    keys = PROVIDERS[entry.data[CONF_PROVIDER]].credential_keys
    return provider_settings(entry, dict.fromkeys(keys), data)


class OptionsFlowHandler(OptionsFlowWithReload):
    """Polling interval (within the cloud's rate budget) and backfill depth."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and check the options."""
        entry = self.config_entry
        minimum = 1
        if entry.state is ConfigEntryState.LOADED:
            minimum = int(entry.runtime_data.minimum_interval.total_seconds() // 60)
        errors: dict[str, str] = {}
        if user_input is not None:
            options = {
                CONF_UPDATE_INTERVAL: int(user_input[CONF_UPDATE_INTERVAL]),
                CONF_BACKFILL_DAYS: int(user_input[CONF_BACKFILL_DAYS]),
            }
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
            **(user_input or {}),
        }
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
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, current),
            description_placeholders={"minimum": str(minimum)},
            errors=errors,
        )
