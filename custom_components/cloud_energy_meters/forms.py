"""Forms drawn from what a cloud declares (providers/form.py), and read back.

The config flow and the clouds' own steps share these, so every cloud's sign-in
form looks and checks alike.
"""

from collections.abc import Mapping
import ipaddress
from typing import Any

import probatio
from yarl import URL

from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.data_entry_flow import section
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

from .const import CONF_ADVANCED, CONF_API_URL, CONF_SITES
from .providers import Provider
from .providers.form import Field, Form
from .providers.model import Site

_AUTOCOMPLETE = {
    CONF_USERNAME: "username",
    "email": "email",
    CONF_PASSWORD: "current-password",
}


def url_key(provider: type[Provider]) -> str:
    """Return the form key of the API URL: `url` where users run their own servers."""
    return CONF_URL if provider.self_hosted else CONF_API_URL


def whole_number(value: Any) -> int | None:
    """Return a positive whole number typed in a text field; None if it is not one."""
    text = str(value).strip()
    return int(text) if text.isdecimal() and int(text) > 0 else None


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


def _text(kind: TextSelectorType, key: str = "") -> TextSelector:
    config = TextSelectorConfig(type=kind)
    if key in _AUTOCOMPLETE:
        config["autocomplete"] = _AUTOCOMPLETE[key]
    return TextSelector(config)


def field_selector(field: Field) -> TextSelector:
    """Return the selector of a credential field (a password box for secrets)."""
    kind = TextSelectorType.PASSWORD if field.secret else TextSelectorType.TEXT
    return _text(kind, field.key)


def advanced_fields(
    provider: type[Provider], values: Mapping[str, Any]
) -> dict[Any, Any]:
    """Return the API URL and the cloud's other settings, with their defaults."""
    key = url_key(provider)
    url = values.get(key) or values.get(CONF_API_URL) or provider.default_url
    fields: dict[Any, Any] = {
        probatio.Required(key, default=url): _text(TextSelectorType.URL)
    }
    for setting in provider.form.advanced:
        marker = probatio.Required(
            setting.key, default=values.get(setting.key) or setting.default
        )
        if setting.port:
            fields[marker] = NumberSelector(
                NumberSelectorConfig(
                    min=1, max=65535, step=1, mode=NumberSelectorMode.BOX
                )
            )
        else:
            fields[marker] = (
                _text(TextSelectorType.URL) if setting.url else TextSelector()
            )
    return fields


def advanced_section(
    provider: type[Provider],
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
) -> dict[Any, Any]:
    """Return a sign-in form's section `advanced` (API URL, settings).

    Collapsed, unless `errors` has one of its fields' (see `section_errors`).
    """
    # Optional for scripts driving the flow over REST: left out, it means the default.
    return {
        probatio.Optional(CONF_ADVANCED): section(
            probatio.Schema(advanced_fields(provider, values)),
            {"collapsed": CONF_ADVANCED not in (errors or {})},
        )
    }


def settings_errors(
    provider: type[Provider], data: Mapping[str, Any]
) -> dict[str, str]:
    """Return why the API URL, or another address credentials go to, is refused.

    Keyed by the form field the address is typed in.
    """
    urls = {url_key(provider): data[CONF_API_URL]}
    urls |= {
        s.key: data[s.key] for s in provider.form.advanced if s.url and s.key in data
    }
    return {key: error for key, url in urls.items() if (error := url_error(str(url)))}


def section_errors(
    provider: type[Provider], errors: Mapping[str, str]
) -> dict[str, str]:
    """Return a sign-in form's errors, those of the advanced section's fields on it.

    Home Assistant's frontend shows no error on a field inside a section (its
    expandable form passes none down): the error is shown on the section instead,
    right above it, and `advanced_section` opens the section.
    """
    if provider.self_hosted:  # its address and settings are fields of the form
        return dict(errors)
    inside = {url_key(provider), *(setting.key for setting in provider.form.advanced)}
    placed = {key: error for key, error in errors.items() if key not in inside}
    if moved := [error for key, error in errors.items() if key in inside]:
        placed[CONF_ADVANCED] = moved[0]
    return placed


def read_advanced(
    provider: type[Provider], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the advanced section's settings (defaults for what is left out)."""
    data: dict[str, Any] = {
        CONF_API_URL: str(values.get(url_key(provider)) or provider.default_url).strip()
    }
    for setting in provider.form.advanced:
        value = values.get(setting.key) or setting.default
        data[setting.key] = int(value) if setting.port else str(value).strip()
    return data


def sign_in_schema(
    provider: type[Provider],
    advanced: Mapping[str, Any],
    extra: Mapping[Any, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> probatio.Schema:
    """Return a cloud's sign-in form: its fields, `extra` ones, the advanced section.

    A self-hosted cloud's form starts with the server's address instead. The
    section opens when `errors` (from `section_errors`) has one on it.
    """
    fields: dict[Any, Any] = (
        advanced_fields(provider, advanced) if provider.self_hosted else {}
    )
    fields |= {
        (
            probatio.Required(field.key)
            if field.required
            else probatio.Optional(field.key, default="")
        ): field_selector(field)
        for field in provider.form.fields
        if field.asked
    }
    fields.update(extra or {})
    if not provider.self_hosted:
        fields.update(advanced_section(provider, advanced, errors))
    return probatio.Schema(fields)


def read_sign_in(
    provider: type[Provider], user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return a sign-in form's credentials and advanced settings, and its errors."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in provider.form.fields:
        value = user_input.get(field.key, "")
        if field.number:
            value = whole_number(value)
            if value is None:
                errors[field.key] = "invalid_number"
        elif not field.secret:
            value = str(value).strip()
        data[field.key] = value
    advanced = user_input if provider.self_hosted else user_input.get(CONF_ADVANCED)
    data.update(read_advanced(provider, advanced or {}))
    return data, errors


def pairing_error(form: Form, credentials: Mapping[str, Any]) -> str | None:
    """Return an error when one field of a pair is given without the other."""
    for first, second in form.paired:
        if bool(credentials.get(first)) != bool(credentials.get(second)):
            return "credentials_incomplete"
    return None


def sites_schema(sites: tuple[Site, ...], chosen: list[str]) -> probatio.Schema:
    """Return the form choosing an account's sites."""
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
