"""The one surface every cloud module offers, and what its instances share per account."""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import ssl
from typing import Any, ClassVar, final

import aiohttp

from . import contract
from .form import Form
from .model import Account, Channel, Interval, Inventory, Latest, Reading, Site
from .ratelimit import RateLimiter, RatePolicy
from .tokens import TokenCache


@dataclass(frozen=True, slots=True)
class AccountState:
    """What all users of one cloud account share: its pacing and its token."""

    limiter: RateLimiter
    tokens: TokenCache = field(default_factory=TokenCache)

    @classmethod
    def for_policy(cls, policy: RatePolicy) -> AccountState:
        """Return a fresh state for an account of a cloud with this policy."""
        return cls(limiter=RateLimiter(policy))


class Provider(ABC):
    """A cloud, seen through one account.

    Subclasses normalise everything their cloud does differently: timestamps become
    aware UTC, intervals are labelled by their start, units are the `Unit` strings,
    a value the cloud does not give is absent, never 0.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    default_url: ClassVar[str]
    policy: ClassVar[RatePolicy]
    form: ClassVar[Form]
    """The sign-in form: its fields are the credentials the provider is given."""
    max_history_days: ClassVar[int] = 365
    push: ClassVar[bool] = False
    """Whether the cloud also pushes readings (`async_listen`)."""
    shortest_refresh: ClassVar[timedelta] = timedelta(0)
    """No sooner than this is a refresh useful (how often the cloud's values change)."""
    self_hosted: ClassVar[bool] = False
    """Whether users run their own servers: the sign-in form asks for its address
    (`url`) instead of hiding the API URL among the advanced settings."""
    named_by_user: ClassVar[bool] = False
    """Whether the user names the channels (the cloud cannot list them): discovery is
    then free, and a channel that disappears was removed by the user."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        credentials: Mapping[str, Any],
        state: AccountState,
        settings: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Bind the session, the API root, the credentials and the shared account state.

        `settings` holds what the user configured beyond credentials (datastreams, a
        broker); `ssl_context` serves connections that are not HTTP (MQTT).
        """
        self.session = session
        self.api_url = api_url
        self.credentials = credentials
        self.state = state
        self.settings: Mapping[str, Any] = settings or {}
        self.ssl_context = ssl_context
        self.refusals = contract.Refusals(self.name)
        """Rows and items refused during the current call (logged when it ends)."""
        self.learned: dict[str, Any] = {}
        """Credentials the cloud changed or told since this provider was made (a
        rotated refresh token, the account's user id): to be saved with the rest."""
        self.on_credentials: Callable[[Mapping[str, Any]], None] | None = None
        """Called with each change the moment it is learnt: the layer above saves it
        at once (a rotated-out refresh token is dead from then on)."""

    def _learn(self, changes: Mapping[str, Any]) -> None:
        """Note credentials the cloud changed; tell the layer above at once."""
        changes = {
            key: value
            for key, value in changes.items()
            if self.learned.get(key, self.credentials.get(key)) != value
        }
        if not changes:
            return
        self.learned.update(changes)
        if self.on_credentials is not None:
            self.on_credentials(changes)

    @classmethod
    @abstractmethod
    def account_key(cls, api_url: str, credentials: Mapping[str, Any]) -> str:
        """Return who the cloud counts requests against: entries of one key share limits."""

    @abstractmethod
    async def async_login(self) -> Account:
        """Prove the credentials now (not from a cached token) and name the account."""

    # What the layer above calls: the cloud's answer, checked against the contract.

    @final
    async def async_list_sites(self) -> tuple[Site, ...]:
        """Return every site the account may read (once each), as cheaply as possible."""
        try:
            found = contract.sites(await self._list_sites(), self.refusals)
        finally:
            self.refusals.flush()
        return found

    @final
    async def async_discover(self, site_ids: Collection[str]) -> Inventory:
        """Return those sites (the ones the account still has) with their channels.

        The inventory also lists every site the account may read, chosen or not.
        """
        try:
            return contract.inventory(
                await self._discover(list(dict.fromkeys(site_ids))), self.refusals
            )
        finally:
            self.refusals.flush()

    @final
    async def async_latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        """Return the latest value of each channel that has one, by channel key.

        A meter or sensor the cloud no longer knows does not fail the others: its
        channels are reported `gone`. Clouds that report problems also return the
        alerts of `sites` that changed since the previous call.
        """
        try:
            found = await self._latest(channels, list(dict.fromkeys(sites)))
            return contract.latest(found, channels, self.refusals)
        finally:
            self.refusals.flush()

    @final
    async def async_history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield, oldest first, the intervals of `channel` starting in [start, end).

        Batches come as the cloud delivers them, so a long backfill can be stored as it
        arrives; each batch's intervals are sorted, unique and after the previous
        batch's.
        """
        try:
            async for batch in contract.history(
                channel, self._history(channel, start, end), self.refusals
            ):
                yield batch
                del batch  # not held while the next one is read
        finally:
            self.refusals.flush()

    # What each cloud implements.

    @abstractmethod
    async def _list_sites(self) -> Sequence[Site]:
        """Return every site the account may read."""

    @abstractmethod
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        """Return the chosen sites the account still has, with their channels."""

    @abstractmethod
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str]
    ) -> Latest:
        """Return the latest values (and changed alerts of `sites`)."""

    @abstractmethod
    def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Yield the intervals of `channel` starting in [start, end), oldest first."""

    @abstractmethod
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        """Return how many requests one `async_latest` of these sends."""

    def memory(self) -> dict[str, Any]:
        """Return what the provider learnt that a restart should not lose (no secret).

        Kept by the layer above in the entry's storage; given back with `recall`.
        """
        return {}

    def recall(self, memory: Mapping[str, Any]) -> None:
        """Take back what `memory` returned before a restart (checked like an answer)."""

    def listing_cost(self, site_ids: Sequence[str]) -> int:
        """Return how many requests one discovery of these sites sends (about)."""
        return 1 + len(site_ids)

    @property
    def push_configured(self) -> bool:
        """Tell whether pushed readings are configured for this account."""
        return False

    async def async_listen(
        self,
        channels: Sequence[Channel],
        on_readings: Callable[[dict[str, Reading]], None],
        on_state: Callable[[bool], None],
    ) -> None:
        """Receive pushed readings until cancelled (clouds with `push` only)."""
        raise NotImplementedError
