"""Cached access tokens, renewed before they expire, one renewal at a time.

Several refreshes (and several entries of one account) may need a token at once: only
one of them logs in, the others wait for its result. A token rejected by the cloud is
dropped once, so the next request logs in again instead of failing the user.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and what is needed to renew it.

    `repr` hides the secrets so that a token printed in a log or a traceback says
    nothing useful to whoever reads it.
    """

    access_token: str
    expires_at: datetime | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        """Describe the token without its secrets."""
        return f"Token(expires_at={self.expires_at}, refresh={self.refresh_token is not None})"


def utcnow() -> datetime:
    """Return the current time (a function so tests that freeze time are honoured)."""
    return datetime.now(UTC)


class TokenCache:
    """Hold one account's token; renew it `margin` before it expires."""

    def __init__(
        self,
        margin: timedelta = timedelta(seconds=60),
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Start without a token."""
        self.margin = margin
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.renewals = 0

    @property
    def token(self) -> Token | None:
        """Return the cached token, valid or not (refresh tokens are reused from it)."""
        return self._token

    def _fresh(self, token: Token | None) -> bool:
        # now + margin, not expires_at - margin: an invalidated token expires at
        # datetime.min, from which nothing can be subtracted.
        return token is not None and (
            token.expires_at is None or token.expires_at > self._clock() + self.margin
        )

    async def get(self, renew: Callable[[Token | None], Awaitable[Token]]) -> Token:
        """Return a token valid for at least `margin`, renewing it with `renew` if not.

        `renew` receives the previous token (for its refresh token) and returns the new
        one; it runs at most once for any number of concurrent callers.
        """
        if self._fresh(self._token):
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._fresh(self._token):
                assert self._token is not None
                return self._token
            self._token = await renew(self._token)
            self.renewals += 1
            return self._token

    def invalidate(self, token: Token) -> None:
        """Expire `token` after the cloud refused it, unless it was already replaced.

        Its refresh token is kept: a refused access token is no reason to make the user
        log in again while the refresh token may still work.
        """
        if self._token is token:
            self._token = replace(token, expires_at=datetime.min.replace(tzinfo=UTC))

    def set(self, token: Token) -> None:
        """Keep a token obtained outside `get` (a login that proves new credentials)."""
        self._token = token
