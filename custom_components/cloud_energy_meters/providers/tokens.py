"""Cached access tokens, renewed before they expire, one renewal at a time.

Several refreshes (and several entries of one account) may need a token at once: only
one of them logs in, the others wait for its result. A token rejected by the cloud is
dropped once, so the next request logs in again instead of failing the user.

Renewal and use are serialised: a request checks its token again when its turn to be
sent comes (`sending`), so a token that ran out or is being replaced while the request
waited is never sent; and a renewal waits for the requests already under way.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import logging
from typing import override

_LOGGER = logging.getLogger(__name__)

type Renew = Callable[[Token | None], Awaitable[Token]]


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and what is needed to renew it (its `repr` shows no secret)."""

    access_token: str
    expires_at: datetime | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"
    issued_at: datetime | None = None
    """When a token whose lifetime the cloud gave arrived (`expires_at` is that much
    later); None when the cloud gave an absolute expiry."""

    @override
    def __repr__(self) -> str:
        """Describe the token without its secrets."""
        return f"Token(expires_at={self.expires_at}, refresh={self.refresh_token is not None})"


class TokenReplaced(Exception):
    """The token a request took may no longer be sent: take the current one again."""


def utcnow() -> datetime:
    """Return the current time (a function so tests that freeze time are honoured)."""
    return datetime.now(UTC)


class TokenCache:
    """Hold one account's token; renew it a little before it expires.

    The margin is `fraction` of the token's lifetime, at most `margin`: a 15-minute
    or hour-long token is renewed a minute early, a 60-second token 6 s early (a
    fixed minute would sign in again before every request). When it is due is set
    as it arrives, on this cache's clock.
    """

    def __init__(
        self,
        margin: timedelta = timedelta(seconds=60),
        *,
        fraction: float = 0.1,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Start without a token."""
        self.margin = margin
        self.fraction = fraction
        self._clock = clock
        self._token: Token | None = None
        self._due: datetime | None = None
        """When the cached token is to be renewed (None: once the cloud refuses it)."""
        self._lock = asyncio.Lock()
        self._renewing = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.renewals = 0

    @property
    def token(self) -> Token | None:
        """Return the cached token, valid or not (refresh tokens are reused from it)."""
        return self._token

    def margin_for(self, lifetime: timedelta) -> timedelta:
        """Return how long before its expiry a token that lasts `lifetime` is renewed."""
        return max(timedelta(0), min(self.margin, lifetime * self.fraction))

    def _keep(self, token: Token) -> None:
        """Cache `token` and set when it is to be renewed."""
        self._token = token
        if token.expires_at is None:
            self._due = None
            return
        now = self._clock()
        # A token without `issued_at` (an absolute expiry from the cloud) was issued
        # as it arrived; one with it lasts as long as its provider read it would.
        lifetime = token.expires_at - (token.issued_at or now)
        due = now + lifetime - self.margin_for(lifetime)
        if due <= now:
            # Spent on arrival: our clock and the cloud's disagree, or the cloud hands
            # out tokens shorter than anything. Renewing again would only repeat
            # that (a sign-in per request, or a storm of them): the cloud judges it.
            _LOGGER.debug("A token arrived already due for renewal; used until refused")
            self._due = None
            return
        self._due = due

    def _fresh(self, token: Token | None) -> bool:
        return (
            token is not None
            and token is self._token
            and (self._due is None or self._clock() < self._due)
        )

    async def get(self, renew: Renew) -> Token:
        """Return a token not due for renewal, renewing it with `renew` if it is.

        `renew` receives the previous token (for its refresh token) and returns the new
        one; it runs at most once for any number of concurrent callers, and only once
        no request is under way with the token it replaces.
        """
        if self._fresh(self._token):
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh(self._token):
                # From now on no request goes out (`sending` refuses), so the ones
                # under way end and none overlaps the renewal.
                self._renewing = True
                try:
                    await self._idle.wait()
                    if not self._fresh(self._token):  # (a login may have come)
                        self._keep(await renew(self._token))
                        self.renewals += 1
                finally:
                    self._renewing = False
            assert self._token is not None
            return self._token

    @contextmanager
    def sending(self, token: Token) -> Iterator[None]:
        """Hold `token` for one request that is about to be sent, until it is answered.

        Raise TokenReplaced, before anything is sent, when the token is no longer the
        cached one, is due for renewal, or is being renewed: the caller takes the
        current token with `get` and tries again.
        """
        if self._renewing or not self._fresh(token):
            raise TokenReplaced
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    def invalidate(self, token: Token) -> None:
        """Renew `token` at the next `get` after the cloud refused it (unless replaced).

        Its refresh token is kept: a refused access token is no reason to make the user
        log in again while the refresh token may still work.
        """
        if self._token is token:
            self._due = datetime.min.replace(tzinfo=UTC)

    def set(self, token: Token) -> None:
        """Keep a token obtained outside `get` (a login that proves new credentials)."""
        self._keep(token)
