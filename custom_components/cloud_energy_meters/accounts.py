"""One shared AccountState (rate limiter and token) per cloud account.

Entries of one account, and config flows validating it, must pace their requests
together: a cloud counts requests per account, not per Home Assistant entry.
"""

from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .providers import AccountState, Provider

_ACCOUNTS: HassKey[dict[str, AccountState]] = HassKey(f"{DOMAIN}_accounts")


def account_state(
    hass: HomeAssistant,
    provider: type[Provider],
    api_url: str,
    credentials: Mapping[str, Any],
) -> AccountState:
    """Return the state of this account, created on first use."""
    accounts = hass.data.setdefault(_ACCOUNTS, {})
    key = provider.account_key(api_url, credentials)
    if key not in accounts:
        accounts[key] = AccountState.for_policy(provider.policy)
    return accounts[key]
