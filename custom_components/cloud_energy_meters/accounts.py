"""One shared AccountState (rate limiter and token) per cloud account, while it is used.

Entries of one account, and config flows validating it, must pace their requests
together: a cloud counts requests per account, not per Home Assistant entry. Each
entry and each flow holds its account's state (`acquire_account`, by its entry or
flow id); when the last one lets go (`release_account`) the state and its token are
dropped. Only a limiter that still holds requests back (a spacing or a pause the
cloud asked for) is kept, for whoever uses the account next, until it has settled.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .providers import AccountState, Provider
from .providers.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class _Accounts:
    """The states in use, who holds them, and limiters not yet settled."""

    states: dict[str, AccountState] = field(default_factory=dict)
    holders: dict[str, set[str]] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    """Holder (an entry or flow id) → the account key it holds."""
    resting: dict[str, RateLimiter] = field(default_factory=dict)

    def forget_settled(self) -> None:
        """Drop the kept limiters that no longer hold anything back."""
        for key in [key for key, limiter in self.resting.items() if limiter.settled]:
            del self.resting[key]


_ACCOUNTS: HassKey[_Accounts] = HassKey(f"{DOMAIN}_accounts")


@callback
def acquire_account(
    hass: HomeAssistant,
    holder: str,
    provider: type[Provider],
    api_url: str,
    credentials: Mapping[str, Any],
) -> AccountState:
    """Return the state of this account, held by `holder` until it releases it.

    A holder holds one account: acquiring another (a flow given other credentials)
    lets go of the first.
    """
    accounts = hass.data.setdefault(_ACCOUNTS, _Accounts())
    key = provider.account_key(api_url, credentials)
    if accounts.held.get(holder, key) != key:
        release_account(hass, holder)
        accounts = hass.data.setdefault(_ACCOUNTS, accounts)
    if (state := accounts.states.get(key)) is None:
        limiter = accounts.resting.pop(key, None) or RateLimiter(provider.policy)
        state = accounts.states[key] = AccountState(limiter=limiter)
    accounts.holders.setdefault(key, set()).add(holder)
    accounts.held[holder] = key
    accounts.forget_settled()
    return state


@callback
def release_account(hass: HomeAssistant, holder: str) -> None:
    """Let go of what `holder` holds; the last holder of an account drops its state."""
    if (accounts := hass.data.get(_ACCOUNTS)) is None:
        return
    if (key := accounts.held.pop(holder, None)) is not None:
        holders = accounts.holders[key]
        holders.discard(holder)
        if not holders:
            del accounts.holders[key]
            limiter = accounts.states.pop(key).limiter
            if not limiter.settled:
                accounts.resting[key] = limiter
    accounts.forget_settled()
    if not accounts.states and not accounts.resting:
        del hass.data[_ACCOUNTS]


@callback
def entry_account(
    hass: HomeAssistant,
    entry: ConfigEntry,
    provider: type[Provider],
    api_url: str,
    credentials: Mapping[str, Any],
) -> AccountState:
    """Return the entry's account state, held until the entry unloads or fails setup."""
    state = acquire_account(hass, entry.entry_id, provider, api_url, credentials)
    entry.async_on_unload(partial(release_account, hass, entry.entry_id))
    return state


@callback
def account_holders(hass: HomeAssistant) -> dict[str, frozenset[str]]:
    """Return the entry and flow ids holding each account in use, by account key."""
    if (accounts := hass.data.get(_ACCOUNTS)) is None:
        return {}
    return {key: frozenset(holders) for key, holders in accounts.holders.items()}


@callback
def save_to_account(
    hass: HomeAssistant,
    entry: ConfigEntry,
    provider: Provider,
    changes: Mapping[str, Any],
) -> None:
    """Save what the cloud changed in credentials (a rotated refresh token) at once.

    To the entry and every other entry of its account: they share its token, and one
    left with a rotated-out refresh token would present it at its next start, which
    the cloud takes for a stolen one (it revokes them all).
    """
    key = provider.account_key(provider.api_url, provider.credentials)
    for entry_id in {entry.entry_id, *account_holders(hass).get(key, ())}:
        other = hass.config_entries.async_get_entry(entry_id)
        if other is not None and other.domain == DOMAIN:
            hass.config_entries.async_update_entry(
                other, data={**other.data, **changes}
            )
