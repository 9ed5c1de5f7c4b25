"""No password or token ever reaches the provider package's logs or errors."""

from datetime import timedelta
import logging

import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.errors import AuthError
from tests.provider_factory import MakeProvider
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD, SITE_CENTRALE, SITE_LAC
from tests.simulator.clock import FakeClock

PACKAGE = "custom_components.cloud_energy_meters.providers"


async def test_logs_hold_no_secrets(
    simulator: Simulator,
    sim_clock: FakeClock,
    climkit: ClimkitProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Login, discovery, latest and two forced renewals log nothing secret."""
    caplog.set_level(logging.DEBUG, logger=PACKAGE)
    await climkit.async_login()
    inventory = await climkit.async_discover([SITE_LAC.id, SITE_CENTRALE.id])
    await climkit.async_latest(inventory.channels)
    simulator.faults.add("http_401", path="all_installations")
    await climkit.async_list_sites()  # refused token → renewal
    sim_clock.advance(timedelta(minutes=20))
    await climkit.async_list_sites()  # expired for the cloud → renewal

    tokens = list(simulator.climkit._tokens)
    assert len(tokens) == 3
    messages = [record.getMessage() for record in caplog.records]
    assert any("/auth" in message for message in messages)
    assert any("refused the token" in message for message in messages)
    for message in messages:
        assert DEMO_PASSWORD not in message
        assert "Bearer" not in message
        for token in tokens:
            assert token not in message
            assert token[-20:] not in message
    assert DEMO_PASSWORD not in caplog.text
    assert not any(token in caplog.text for token in tokens)


async def test_errors_hold_no_secrets(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """A refused login's error names neither the password nor the username's secret."""
    provider = make_provider("climkit", username="demo", password="hunter2-secret")
    with pytest.raises(AuthError) as caught:
        await provider.async_login()
    text = f"{caught.value!s} {caught.value!r} {caught.value.__cause__!s}"
    assert "hunter2-secret" not in text


async def test_token_repr_in_state(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """The cached token's repr hides the access token the cloud issued."""
    await climkit.async_login()
    (token,) = simulator.climkit._tokens
    cached = climkit.state.tokens.token
    assert cached is not None
    assert cached.access_token == token
    assert token not in repr(cached)
    assert token not in repr(climkit.state)
