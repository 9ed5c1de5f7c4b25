"""Rate compliance at the documented pace, read from the simulator's request log."""

from itertools import pairwise

import pytest

from custom_components.cloud_energy_meters.const import (
    CONF_BACKFILL_DAYS,
    CONF_UPDATE_INTERVAL,
)
from homeassistant.core import HomeAssistant
from tests.conftest import SetupEntry, climkit_entry_for
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_FERME


@pytest.mark.real_rates
async def test_one_request_per_second_all_along(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
) -> None:
    """Login, discovery, polling and a backfill never send two requests within 1 s.

    The simulator enforces Climkit's 1 request/s with 429; our limiter must never trip
    it, and polling never asks more than half the account's budget.
    """
    simulator.climkit.add_user("solo", "pw", site_ids=[SITE_FERME.id])
    entry = climkit_entry_for(
        simulator,
        "solo",
        "pw",
        [SITE_FERME.id],
        {CONF_UPDATE_INTERVAL: 1, CONF_BACKFILL_DAYS: 2},
    )
    assert await setup_entry(entry)
    await entry.runtime_data.async_refresh()
    log = simulator.log_for("climkit")
    assert len(log) >= 15
    assert all(record.status == 200 for record in log), [
        (r.path, r.status) for r in log if r.status != 200
    ]
    gaps = [later.at - earlier.at for earlier, later in pairwise(log)]
    assert min(gaps) >= 1.0
    coordinator = entry.runtime_data
    cost = coordinator.provider.refresh_cost(coordinator.channels)
    assert cost == 5  # 2 meters × (meter_data + meter_data_raw) + 1 site type
    assert coordinator.update_interval.total_seconds() >= 2 * (cost - 1) * 1.0
