"""Locus Energy never logs a secret: client secret, password, access or refresh token.

Everything the provider does is run with DEBUG logging on: grants, refreshes
(with rotation), a refused refresh and its fallback, a 401 and its renewal,
data calls, and the errors of a revoked user. The log must hold none of the
secrets sent or received, not even the word "Bearer ".
"""

from datetime import UTC, datetime, timedelta
import logging

import pytest

from custom_components.cloud_energy_meters.providers.errors import AuthError
from tests.provider_factory import LOCUS_CLIENT_CREDENTIALS, MakeProvider, collect
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.locus import (
    CC_CLIENT_SECRET,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    MAPLE_SITE_ID,
)

HOUR = timedelta(hours=1)


def spy_issued(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Collect every access and refresh token the simulator issues."""
    issued: set[str] = set()
    cloud = simulator.locus
    issue, issue_refresh = cloud._issue, cloud._issue_refresh

    def access(client_id: str, username: str | None, now: datetime) -> str:
        issued.add(token := issue(client_id, username, now))
        return token

    def refresh(client_id: str, username: str, now: datetime) -> str:
        issued.add(token := issue_refresh(client_id, username, now))
        return token

    monkeypatch.setattr(cloud, "_issue", access)
    monkeypatch.setattr(cloud, "_issue_refresh", refresh)
    return issued


async def test_no_secret_in_the_log(
    simulator: Simulator,
    sim_clock: FakeClock,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grants, refreshes, fallback, renewal, data and errors log no secret.

    Each renewal follows a 401: the cloud's clock jumps past the token's hour.
    """
    caplog.set_level(logging.DEBUG)
    issued = spy_issued(simulator, monkeypatch)
    site = str(MAPLE_SITE_ID)

    provider = make_provider("locus")
    await provider.async_login()
    inventory = await provider.async_discover([site])
    simulator.locus.rotate_refresh_tokens = True
    sim_clock.advance(HOUR)  # 401, refresh, rotated
    await provider.async_latest(inventory.channels, [site])
    simulator.locus.refuse_refresh()
    sim_clock.advance(HOUR)  # 401, refused refresh, password fallback
    await provider.async_list_sites()
    simulator.locus.allow_refresh()
    channel = next(c for c in inventory.channels if c.statistic)
    start = datetime(2026, 7, 1, tzinfo=UTC)
    await collect(provider, channel, start, start + timedelta(days=1))

    service = make_provider("locus", **LOCUS_CLIENT_CREDENTIALS)
    await service.async_list_sites()
    sim_clock.advance(HOUR)  # 401, client credentials again
    await service.async_list_sites()

    simulator.locus.revoke_user(DEMO_USERNAME)
    errors: list[str] = []
    with pytest.raises(AuthError) as caught:
        await provider.async_latest(inventory.channels, [site])
    errors.append(str(caught.value))
    with pytest.raises(AuthError) as caught:
        await make_provider("locus", password="wrong-" + DEMO_PASSWORD).async_login()
    errors.append(str(caught.value))

    grants = [
        r.body["grant_type"]
        for r in simulator.log_for("locus")
        if r.path == "/oauth/token"
    ]
    assert grants == [
        "password",
        "refresh_token",  # after a 401, rotated
        "refresh_token",  # after a 401, refused …
        "password",  # … so the password again
        "client_credentials",
        "client_credentials",  # after a 401
        "refresh_token",  # the revoked user: refused …
        "password",  # … and refused
        "password",  # the wrong password
    ]
    assert [r.status for r in simulator.log_for("locus")].count(401) == 6
    assert len(issued) == 8  # the user: 3 access, 3 refresh; the client: 2 access
    text = caplog.text + "\n".join(errors)
    assert "Locus Energy GET" in caplog.text  # the transport did log each call
    assert "Bearer " not in text
    for secret in (DEMO_CLIENT_SECRET, CC_CLIENT_SECRET, DEMO_PASSWORD, *issued):
        assert secret not in text
