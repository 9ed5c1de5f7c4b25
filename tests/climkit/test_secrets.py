"""No password, token or token fragment in any log line, debug level included."""

from datetime import UTC, datetime, timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from tests.conftest import SetupEntry
from tests.helpers import climkit_credentials, open_flow
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.mark.freeze_time(NOW, tick=True)
async def test_no_secret_in_any_log_line(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Flow, setup, refreshes, token renewals, refused tokens and reauth at DEBUG."""
    caplog.set_level(logging.DEBUG)
    simulator.climkit.add_user("second", "s3cr3t-Second-Pa55")
    result = await open_flow(hass, "climkit")
    await hass.config_entries.flow.async_configure(
        result["flow_id"],
        climkit_credentials(simulator.url("climkit"), "second", "wrong-Pa55word-xyz"),
    )
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    freezer.tick(timedelta(minutes=20))  # the token expires and is renewed
    await coordinator.async_refresh()
    simulator.faults.add("http_401", count=1, cloud="climkit", path="meter_data")
    await coordinator.async_refresh()
    simulator.faults.add("http_500", count=1, cloud="climkit", path="auth")
    freezer.tick(timedelta(minutes=20))
    await coordinator.async_refresh()
    simulator.climkit.revoke("demo")
    await coordinator.async_refresh()
    await hass.async_block_till_done()

    issued = list(simulator.climkit._tokens) + [
        record.body.get("access_token")
        for record in simulator.log
        if isinstance(record.body, dict) and record.body.get("access_token")
    ]
    secrets = [DEMO_PASSWORD, "s3cr3t-Second-Pa55", "wrong-Pa55word-xyz"]
    fragments = [
        token[i : i + 12] for token in issued for i in range(0, len(token) - 12, 6)
    ]
    assert caplog.records
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in (*secrets, *fragments):
            assert secret not in line, f"{record.name}: {line[:200]}"
        assert "Bearer " not in line
