"""Copper Labs secrets (codes, verifiers, tokens, the client secret) in no log line."""

from datetime import timedelta
import logging

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.providers.copper import code_from
from custom_components.cloud_energy_meters.providers.errors import AuthError
from tests.provider_factory import MakeProvider, collect
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.copper import ENTERPRISE_CLIENT_SECRET, HOME_PREMISE_ID

from .conftest import MakeApp, sign_in


async def test_no_secret_in_any_log_line(
    session: ClientSession,
    simulator: Simulator,
    sim_clock: FakeClock,
    make_app: MakeApp,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sign-ins, rotation, refusals, discovery, latest and history, logged at DEBUG."""
    secrets: list[str] = [ENTERPRISE_CLIENT_SECRET]
    with caplog.at_level(logging.DEBUG):
        address, verifier = await sign_in(session, simulator)
        code = code_from(address)
        assert code is not None
        secrets += [code, verifier]
        signing = make_app("")
        refresh = await signing.async_exchange(code, verifier)
        secrets.append(refresh)
        app = make_app(refresh, state=signing.state)
        app.on_credentials = lambda c: (
            secrets.append(c["refresh_token"]) if "refresh_token" in c else None
        )
        await app.async_login()
        inventory = await app.async_discover([HOME_PREMISE_ID])
        await app.async_latest(inventory.channels)
        hour = next(c for c in inventory.channels if c.history)
        now = sim_clock()
        await collect(app, hour, now - timedelta(days=2), now)
        token = app.state.tokens.token
        assert token is not None
        secrets.append(token.access_token)
        with pytest.raises(AuthError):
            await make_app(refresh).async_login()  # reuse: the family is revoked
        with pytest.raises(AuthError):
            await make_app("").async_exchange(code, verifier)  # used code
        enterprise = make_provider("copper")
        await enterprise.async_login()
        token = enterprise.state.tokens.token
        assert token is not None
        secrets.append(token.access_token)
        with pytest.raises(AuthError):
            await make_provider("copper", client_secret="wrong-secret").async_login()
        secrets.append("wrong-secret")
    assert len(secrets) >= 7
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    assert "copper" in logged.casefold()  # something was logged
    for secret in secrets:
        assert secret not in logged
