"""FlexMeasures in Home Assistant: no password nor token in any log line.

The demo user's entry is set up with a measurement to send, refreshed, its token
refused and renewed, its history imported and sent, an action called, at DEBUG
level; the password and every token the simulated server issued are looked for in
every line, whole and in pieces.
"""

import logging

import pytest

from custom_components.cloud_energy_meters.const import DOMAIN
from homeassistant.core import HomeAssistant
from tests.conftest import SetupEntry
from tests.simulator import Simulator
from tests.simulator.flexmeasures_data import DEMO_PASSWORD, HA_POWER, PRICE

from .sim_entries import flexmeasures_sim_entry
from .test_forward import POWER, measurement, power


async def test_no_secret_in_any_log_line(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup, refreshes, a refused token, imports, sending, an action: no secret."""
    caplog.set_level(logging.DEBUG)
    power(hass, 1200)
    entry = flexmeasures_sim_entry(simulator, subentries=[measurement(POWER, HA_POWER)])
    assert await setup_entry(entry)
    coordinator = entry.runtime_data
    await coordinator.async_import_statistics()
    cloud = simulator.flexmeasures
    issued = list(cloud._tokens)  # noqa: SLF001  (the simulator's own)
    cloud.revoke_tokens()  # the next request is refused: renewed
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    await hass.services.async_call(
        DOMAIN,
        "flexmeasures_get_sensor_data",
        {
            "config_entry_id": entry.entry_id,
            "sensor_id": str(PRICE),
            "start": "2026-11-20T00:00:00+00:00",
            "duration": "PT2H",
        },
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()

    issued += list(cloud._tokens)  # noqa: SLF001
    assert len(set(issued)) >= 2
    secrets = [DEMO_PASSWORD, *issued]
    fragments = [
        secret[i : i + 12] for secret in secrets for i in range(0, len(secret) - 11, 6)
    ]
    logged = [
        record.getMessage() + (record.exc_text or "") for record in caplog.records
    ]
    assert any("flexmeasures" in line.casefold() for line in logged)
    for line in logged:
        for secret in (*secrets, *fragments):
            assert secret not in line, line[:200]
