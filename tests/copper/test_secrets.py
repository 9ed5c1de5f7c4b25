"""Copper Labs in Home Assistant: no token nor client secret in any log line.

Both kinds of entry are set up, refreshed, renewed (expired tokens, a refused one,
a rotated refresh token) and imported at DEBUG level; every refresh token and access
token the simulated Auth0 issued, and the client secrets, are looked for in every
line, whole and in pieces.
"""

from datetime import UTC, datetime, timedelta
import logging

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
import pytest

from custom_components.cloud_energy_meters.providers.copper import CONF_REFRESH_TOKEN
from homeassistant.core import HomeAssistant
from tests.conftest import SetupEntry
from tests.simulator import Simulator
from tests.simulator.copper import ENTERPRISE_CLIENT_SECRET, ENTERPRISE_ID

from .entries import app_refresh_token, copper_entry

NOW = datetime(2026, 11, 20, 15, 7, tzinfo=UTC)


async def test_no_secret_in_any_log_line(
    hass: HomeAssistant,
    simulator: Simulator,
    session: ClientSession,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup, refreshes, renewals, a refused token, imports: at DEBUG, no secret."""
    caplog.set_level(logging.DEBUG)
    freezer.move_to(NOW)
    cloud = simulator.copper
    cloud.cache_max_age = None  # every refresh asks (the cache counts real seconds)
    first_refresh = await app_refresh_token(session, simulator)
    app = copper_entry(simulator, refresh_token=first_refresh)
    enterprise = copper_entry(
        simulator, sites=[cloud.premises_of_enterprise(ENTERPRISE_ID)[0].id]
    )
    for entry in (app, enterprise):
        assert await setup_entry(entry)
        await entry.runtime_data.async_import_statistics()
    assert app.data[CONF_REFRESH_TOKEN] != first_refresh  # rotated and saved
    for entry in (app, enterprise):
        coordinator = entry.runtime_data
        # A token the cloud refuses is renewed once.
        simulator.faults.add("http_401", count=1, cloud="copper", path="usage")
        await coordinator.async_refresh()
        assert coordinator.last_update_success
    # A day later every access token has expired: renewed (the app's refresh token
    # rotates again), then values and history.
    freezer.move_to(NOW + timedelta(hours=25))
    for entry in (app, enterprise):
        await entry.runtime_data.async_refresh()
        assert entry.runtime_data.last_update_success
        await entry.runtime_data.async_import_statistics()
    await hass.async_block_till_done()

    issued = [*cloud._refresh, *cloud._tokens]  # noqa: SLF001  (the simulator's own)
    assert len(issued) >= 6
    secrets = [ENTERPRISE_CLIENT_SECRET, *issued]
    fragments = [
        secret[i : i + 12] for secret in secrets for i in range(0, len(secret) - 11, 6)
    ]
    assert caplog.records
    logged = [
        record.getMessage() + (record.exc_text or "") for record in caplog.records
    ]
    assert any("copper" in line.casefold() for line in logged)
    for line in logged:
        for secret in (*secrets, *fragments):
            assert secret not in line, line[:200]
        assert "Bearer " not in line
