"""Copper Labs' own config flow steps: a Copper app user or an enterprise API client.

A Copper app user signs in at Copper's Auth0 in the browser: the form shows a link
made from a fresh PKCE verifier (kept in the flow, in no form, link or log), the user
signs in with the e-mailed code and pastes the address the browser ends on; the code
in it is exchanged once, and the refresh token it becomes signs in as any credential
would. Each code presented (accepted or not) is spent: the next form has a new link.
Reauthentication of an app entry repeats the link. An enterprise types its API
client's id and secret and its enterprise id.
"""

from collections.abc import Mapping
import logging
from typing import Any, Final

import probatio

from custom_components.cloud_energy_meters.const import CONF_ADVANCED, CONF_API_URL
from custom_components.cloud_energy_meters.extras.base import SignInFlow, Step
from custom_components.cloud_energy_meters.forms import (
    advanced_section,
    field_selector,
    read_advanced,
    read_sign_in,
    section_errors,
    settings_errors,
)
from custom_components.cloud_energy_meters.providers import AccountState
from custom_components.cloud_energy_meters.providers.copper import (
    APP_FIELD,
    AUTH_URL,
    CONF_AUTH_URL,
    CONF_ENTERPRISE_ID,
    CONF_REFRESH_TOKEN,
    CONF_USER,
    ENTERPRISE_KEYS,
    FORM,
    CopperProvider,
    code_from,
    sign_in_link,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    ProviderError,
)
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import TextSelector

_LOGGER = logging.getLogger(__name__)

KEY: Final = CopperProvider.key
APP_STEP: Final = "copper_app"
ENTERPRISE_STEP: Final = "copper_enterprise"
REAUTH_STEP: Final = "copper_reauth"
_LINK: Final = "link"
"""flow.extra: (auth URL, sign-in link, its PKCE verifier) of the form shown."""


async def async_step_menu(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Ask which kind of Copper account to add."""
    return flow.async_show_menu(step_id=KEY, menu_options=[APP_STEP, ENTERPRISE_STEP])


def _link(flow: SignInFlow, auth_url: str) -> tuple[str, str]:
    """Return the sign-in link (and verifier) for this Auth0 tenant, made once."""
    kept: tuple[str, str, str] | None = flow.extra.get(_LINK)
    if kept is None or kept[0] != auth_url:
        kept = (auth_url, *sign_in_link(auth_url))
        flow.extra[_LINK] = kept
    return kept[1], kept[2]


def _code_field() -> dict[Any, Any]:
    return {probatio.Required(APP_FIELD): TextSelector()}


async def _async_exchange(
    flow: SignInFlow, settings: Mapping[str, Any], pasted: Any
) -> tuple[str | None, dict[str, str]]:
    """Exchange the code pasted on the form shown; return (refresh token, errors).

    The code is spent (the link with it), whatever Auth0 answers.
    """
    code = code_from(str(pasted or ""))
    if code is None:
        return None, {APP_FIELD: "invalid_code"}
    if errors := settings_errors(CopperProvider, settings):
        return None, errors
    _, verifier = _link(flow, settings[CONF_AUTH_URL])
    del flow.extra[_LINK]
    # A state of its own: the code is single use, and no account is known yet.
    provider = CopperProvider(
        async_get_clientsession(flow.hass),
        api_url=settings[CONF_API_URL],
        credentials=dict.fromkeys(FORM.keys, ""),
        state=AccountState.for_policy(CopperProvider.policy),
        settings={CONF_AUTH_URL: settings[CONF_AUTH_URL]},
    )
    try:
        return await provider.async_exchange(code, verifier), {}
    except AuthError:
        return None, {"base": "invalid_auth"}
    except ProviderError as err:
        _LOGGER.debug("Exchanging the Copper Labs sign-in code failed: %s", err)
        return None, {"base": "cannot_connect"}
    except Exception:
        _LOGGER.exception("Unexpected error exchanging the Copper Labs sign-in code")
        return None, {"base": "unknown"}


async def async_step_app(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Show the sign-in link; exchange the pasted code and sign in with it."""
    advanced = (user_input or {}).get(CONF_ADVANCED) or {}
    errors: dict[str, str] = {}
    if user_input is not None:
        data, _ = read_sign_in(CopperProvider, {CONF_ADVANCED: advanced})
        refresh, errors = await _async_exchange(flow, data, user_input.get(APP_FIELD))
        if refresh is not None:
            # `user` empty: the first login names the account, and it is learnt.
            data |= {CONF_REFRESH_TOKEN: refresh, CONF_USER: ""}
            errors = await flow.async_sign_in(
                KEY, data, {CONF_AUTH_URL: data[CONF_AUTH_URL]}
            )
            if not errors:
                return await flow.async_offer_sites()
    settings = read_advanced(CopperProvider, advanced)
    link, _ = _link(flow, settings[CONF_AUTH_URL])
    errors = section_errors(CopperProvider, errors)
    return flow.async_show_form(
        step_id=APP_STEP,
        data_schema=probatio.Schema(
            _code_field() | advanced_section(CopperProvider, advanced, errors)
        ),
        errors=errors,
        description_placeholders={"link": link},
    )


async def async_step_enterprise(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Ask for the enterprise's API client and check it by signing in."""
    errors: dict[str, str] = {}
    if user_input is not None:
        data, errors = read_sign_in(CopperProvider, user_input)
        if not errors:
            errors = await flow.async_sign_in(
                KEY, data, {CONF_AUTH_URL: data[CONF_AUTH_URL]}
            )
        if not errors:
            return await flow.async_offer_sites()
    fields = {
        probatio.Required(field.key): field_selector(field)
        for field in FORM.fields
        if field.key in ENTERPRISE_KEYS
    }
    advanced = (user_input or {}).get(CONF_ADVANCED) or {}
    errors = section_errors(CopperProvider, errors)
    schema = probatio.Schema(
        fields | advanced_section(CopperProvider, advanced, errors)
    )
    return flow.async_show_form(
        step_id=ENTERPRISE_STEP,
        data_schema=flow.add_suggested_values_to_schema(schema, user_input),
        errors=errors,
    )


async def async_step_reauth(
    flow: SignInFlow, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """Sign a Copper app entry in again: the link, the pasted code, the same user."""
    entry = flow.reauth_entry
    settings = {
        CONF_API_URL: entry.data[CONF_API_URL],
        CONF_AUTH_URL: entry.data.get(CONF_AUTH_URL) or AUTH_URL,
    }
    errors: dict[str, str] = {}
    if user_input is not None:
        refresh, errors = await _async_exchange(
            flow, settings, user_input.get(APP_FIELD)
        )
        if refresh is not None:
            # `user` empty: the login names the account anew, so the flow can tell
            # another Copper user (wrong_account) from the entry's.
            changes = {CONF_REFRESH_TOKEN: refresh, CONF_USER: ""}
            errors = await flow.async_reauth_sign_in(changes)
            if not errors:
                return flow.async_update_reauth_entry(changes)
    link, _ = _link(flow, settings[CONF_AUTH_URL])
    return flow.async_show_form(
        step_id=REAUTH_STEP,
        data_schema=probatio.Schema(_code_field()),
        errors=errors,
        description_placeholders={"link": link, "account": entry.title},
    )


def reauth_step(entry_data: Mapping[str, Any]) -> Step | None:
    """Return the reauthentication step of a Copper app entry (None: enterprise)."""
    return None if entry_data.get(CONF_ENTERPRISE_ID) else async_step_reauth
