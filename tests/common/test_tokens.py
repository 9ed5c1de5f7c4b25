"""TokenCache and Token: margin, single-flight renewal, use serialised with renewal.

Also invalidation and repr.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.providers.errors import AuthError
from custom_components.cloud_energy_meters.providers.tokens import (
    Token,
    TokenCache,
    TokenReplaced,
)
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
        self.stamped = False
        """Whether tokens carry `issued_at` (a lifetime given by the cloud)."""

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
            issued_at=now if self.stamped else None,
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


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [
        (timedelta(seconds=60), timedelta(seconds=6)),
        (timedelta(minutes=5), timedelta(seconds=30)),
        (timedelta(minutes=10), timedelta(seconds=60)),
        (timedelta(minutes=15), timedelta(seconds=60)),
        (timedelta(hours=1), timedelta(seconds=60)),
        (timedelta(0), timedelta(0)),
        (timedelta(seconds=-5), timedelta(0)),
    ],
)
def test_margin_is_a_tenth_of_the_lifetime_at_most_a_minute(
    lifetime: timedelta, margin: timedelta
) -> None:
    """10 % of the token's lifetime, capped at 60 s, never negative."""
    assert TokenCache().margin_for(lifetime) == margin


@pytest.mark.parametrize("stamped", [False, True], ids=["valid_until", "expires_in"])
async def test_sixty_second_token_serves_54_seconds(stamped: bool) -> None:
    """A 60 s token is renewed 6 s before it expires, not before every request."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer(lifetime=timedelta(seconds=60))
    renew.clock = clock
    renew.stamped = stamped
    first = await cache.get(renew)
    clock.value = T0 + timedelta(seconds=53, microseconds=999_999)
    assert await cache.get(renew) is first
    clock.value = T0 + timedelta(seconds=54)
    second = await cache.get(renew)
    assert second is not first
    assert cache.renewals == 2


async def test_a_given_lifetime_counts_from_arrival() -> None:
    """A token whose provider read its lifetime lasts that long on this cache's clock.

    The cache's clock may disagree with the one the provider stamped it with.
    """
    clock = FakeClock(T0 + timedelta(hours=3))
    cache = TokenCache(clock=clock)
    cache.set(
        Token("t", T0 + timedelta(minutes=10), issued_at=T0)  # 10 minutes
    )
    renew = Renewer()
    clock.advance(timedelta(minutes=8, seconds=59))
    assert (await cache.get(renew)).access_token == "t"
    clock.advance(timedelta(seconds=2))
    assert (await cache.get(renew)).access_token == "access-1"


async def test_a_token_spent_on_arrival_is_used_until_refused() -> None:
    """A renewal cannot help a token already due as it arrives: no sign-in storm.

    (Our clock ahead of the cloud's, or a cloud handing out spent tokens.) The
    token is used until the cloud refuses it; then it is renewed as usual.
    """
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer(lifetime=timedelta(seconds=-30))  # valid_until in our past
    renew.clock = clock
    spent = await cache.get(renew)
    with cache.sending(spent):
        pass
    clock.advance(timedelta(minutes=5))
    assert await cache.get(renew) is spent
    assert len(renew.calls) == 1
    cache.invalidate(spent)
    assert (await cache.get(renew)).access_token == "access-2"


async def test_sending_refuses_a_replaced_or_due_token() -> None:
    """A request whose token was replaced, or fell due, while it waited is not sent."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer(lifetime=timedelta(minutes=15))
    renew.clock = clock
    first = await cache.get(renew)
    with cache.sending(first):
        pass
    clock.advance(timedelta(minutes=14, seconds=1))  # due: 59 s left
    with pytest.raises(TokenReplaced), cache.sending(first):
        pytest.fail("sent")  # pragma: no cover
    second = await cache.get(renew)
    with pytest.raises(TokenReplaced), cache.sending(first):
        pytest.fail("sent")  # pragma: no cover
    with cache.sending(second):
        pass
    cache.invalidate(second)
    with pytest.raises(TokenReplaced), cache.sending(second):
        pytest.fail("sent")  # pragma: no cover


async def test_nothing_is_sent_while_a_renewal_runs() -> None:
    """While `renew` runs, even the token it replaces is refused to requests."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer()
    renew.clock = clock
    first = await cache.get(renew)
    cache.invalidate(first)
    renew.gate = asyncio.Event()
    renewing = asyncio.create_task(cache.get(renew))
    await asyncio.sleep(0)
    assert len(renew.calls) == 2
    login = Token("login", T0 + timedelta(hours=1))
    cache.set(login)  # a login meanwhile: the renewal will replace its token
    with pytest.raises(TokenReplaced), cache.sending(login):
        pytest.fail("sent")  # pragma: no cover
    renew.gate.set()
    assert (await renewing).access_token == "access-2"


async def test_renewal_waits_for_the_requests_under_way() -> None:
    """A renewal starts only once no request is out with the token it replaces."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer()
    renew.clock = clock
    first = await cache.get(renew)
    with cache.sending(first), cache.sending(first):  # two requests under way
        clock.advance(timedelta(minutes=15))
        renewing = asyncio.create_task(cache.get(renew))
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(renew.calls) == 1
    await asyncio.sleep(0)
    assert (await renewing).access_token == "access-2"
    assert renew.calls == [None, first]


async def test_a_failed_request_lets_renewal_go() -> None:
    """A request that raises still ends its use of the token."""
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer()
    renew.clock = clock
    first = await cache.get(renew)
    with pytest.raises(AuthError), cache.sending(first):
        raise AuthError("401")
    cache.invalidate(first)
    async with asyncio.timeout(1):
        assert (await cache.get(renew)).access_token == "access-2"


async def test_a_login_while_a_renewal_waits_spares_it() -> None:
    """A login that lands while a renewal waits for requests under way is kept.

    Nothing goes out meanwhile, not even with the login's token.
    """
    clock = FakeClock(T0)
    cache = TokenCache(clock=clock)
    renew = Renewer()
    renew.clock = clock
    first = await cache.get(renew)
    login = Token("login", T0 + timedelta(hours=2))
    with cache.sending(first):
        clock.advance(timedelta(minutes=15))
        renewing = asyncio.create_task(cache.get(renew))
        await asyncio.sleep(0)
        cache.set(login)
        with pytest.raises(TokenReplaced), cache.sending(login):
            pytest.fail("sent")  # pragma: no cover
    assert await renewing is login
    assert renew.calls == [None]
    with cache.sending(login):
        pass
