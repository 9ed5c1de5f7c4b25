"""Rate compliance at the documented pace, read from the simulator's request log."""

from itertools import pairwise

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_PROVIDER,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .conftest import SetupEntry
from .simulator import Simulator
from .simulator.climkit import SITE_FERME


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
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Climkit solo",
        unique_id="climkit_solo",
        data={
            CONF_PROVIDER: "climkit",
            CONF_USERNAME: "solo",
            CONF_PASSWORD: "pw",
            CONF_API_URL: simulator.url("climkit"),
            CONF_SITES: [SITE_FERME.id],
        },
        options={CONF_UPDATE_INTERVAL: 1, CONF_BACKFILL_DAYS: 2},
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
