"""TokenCache and Token: expiry margin, single-flight renewal, invalidation, repr."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.providers.errors import AuthError
from custom_components.cloud_energy_meters.providers.tokens import Token, TokenCache
from tests.simulator.clock import FakeClock

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Renewer:
    """A renew callback that counts its calls and issues numbered tokens."""

    def __init__(self, lifetime: timedelta = timedelta(minutes=15)) -> None:
        """Issue tokens valid for `lifetime` from the clock it is given."""
        self.lifetime = lifetime
        self.calls: list[Token | None] = []
        self.clock: FakeClock | None = None
        self.gate: asyncio.Event | None = None
        self.refresh: str | None = None

    async def __call__(self, previous: Token | None) -> Token:
        """Return a new token (after the gate opens, when there is one)."""
        self.calls.append(previous)
        if self.gate is not None:
            await self.gate.wait()
        now = self.clock() if self.clock else T0
        return Token(
            access_token=f"access-{len(self.calls)}",
            expires_at=now + self.lifetime,
            refresh_token=self.refresh,
        )


async def test_first_get_renews_then_reuses() -> None:
    """Without a token `get` logs in once; a fresh token is then reused."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer()
    renew.clock = clock
    first = await cache.get(renew)
    assert renew.calls == [None]
    assert first.access_token == "access-1"
    clock.advance(timedelta(minutes=5))
    assert await cache.get(renew) is first
    assert cache.renewals == 1
    assert cache.token is first


async def test_margin_is_honoured() -> None:
    """A token is renewed once less than `margin` of its life is left, not before."""
    clock = FakeClock(T0)
    cache = TokenCache(timedelta(seconds=60), clock=clock)
    renew = Renewer(lifetime=timedelta(minutes=10))
    renew.clock = clock
    first = await cache.get(renew)
    clock.value = T0 + timedelta(minutes=8, seconds=59)
    assert await cache.get(renew) is first
    clock.value = T0 + timedelta(minutes=9, seconds=1)
    second = await cache.get(renew)
    assert second is not first
    assert renew.calls == [None, first]
    assert second.expires_at == clock.value + timedelta(minutes=10)


async def test_token_without_expiry_is_never_renewed() -> None:
    """A token with no expiry stays valid until the cloud refuses it."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    cache.set(Token("forever"))
    clock.advance(timedelta(days=400))
    renew = Renewer()
    assert (await cache.get(renew)).access_token == "forever"
    assert renew.calls == []


async def test_single_flight() -> None:
    """Concurrent callers wait for one renewal and all get its token."""
    cache = TokenCache(clock=lambda: T0)
    renew = Renewer()
    renew.gate = asyncio.Event()
    tasks = [asyncio.create_task(cache.get(renew)) for _ in range(5)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(renew.calls) == 1
    renew.gate.set()
    tokens = await asyncio.gather(*tasks)
    assert len(renew.calls) == 1
    assert {token.access_token for token in tokens} == {"access-1"}
    assert cache.renewals == 1


async def test_invalidate_keeps_refresh_token() -> None:
    """A refused token is renewed at the next get, its refresh token handed over."""
    cache = TokenCache(timedelta(seconds=60), clock=lambda: T0)
    token = Token("refused", T0 + timedelta(hours=1), refresh_token="refresh-1")
    cache.set(token)
    cache.invalidate(token)
    assert cache.token is not None
    assert cache.token.refresh_token == "refresh-1"
    renew = Renewer()
    renewed = await cache.get(renew)
    assert renewed.access_token == "access-1"
    assert len(renew.calls) == 1
    previous = renew.calls[0]
    assert previous is not None
    assert previous.refresh_token == "refresh-1"
    assert previous.access_token == "refused"


async def test_invalidate_ignores_a_replaced_token() -> None:
    """Invalidating an old token does not throw away the one that replaced it."""
    cache = TokenCache(clock=lambda: T0)
    old = Token("old", T0 + timedelta(hours=1))
    new = Token("new", T0 + timedelta(hours=1))
    cache.set(old)
    cache.set(new)
    cache.invalidate(old)
    renew = Renewer()
    assert await cache.get(renew) is new
    assert renew.calls == []


async def test_failed_renewal_propagates_and_is_retried() -> None:
    """A renewal that fails raises to the caller; the next get tries again."""
    cache = TokenCache(clock=lambda: T0)
    attempts = 0

    async def failing(_previous: Token | None) -> Token:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise AuthError("no")
        return Token("second", T0 + timedelta(hours=1))

    with pytest.raises(AuthError):
        await cache.get(failing)
    assert cache.token is None
    assert (await cache.get(failing)).access_token == "second"
    assert cache.renewals == 1


def test_repr_hides_secrets() -> None:
    """Neither repr nor str nor formatting reveals the access or refresh token."""
    token = Token("s3cr3t-access", T0, refresh_token="s3cr3t-refresh")
    for text in (repr(token), str(token), f"{token}", f"{token!r}"):
        assert "s3cr3t" not in text
    assert "refresh=True" in repr(token)
    assert str(T0) in repr(token)
    assert "refresh=False" in repr(Token("x"))
