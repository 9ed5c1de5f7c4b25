"""Climkit at the documented pace: 1 request/s, enforced by the simulator."""

from datetime import timedelta

import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from tests.provider_factory import collect
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_USERNAME, SITE_FERME


@pytest.mark.real_rates
async def test_real_policy_never_trips_the_limit(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Discover, latest and history of one site: no 429 and ≥ 1 s between requests."""
    assert ClimkitProvider.policy.min_interval == 1.0
    assert simulator.climkit.min_interval == 1.0
    inventory = await climkit.async_discover([SITE_FERME.id])
    readings = (await climkit.async_latest(inventory.channels)).readings
    assert set(readings) == {channel.key for channel in inventory.channels}
    channel = next(c for c in inventory.channels if c.history)
    end = next(iter(readings.values())).time
    assert end is not None
    intervals = await collect(climkit, channel, end - timedelta(days=1), end)
    assert len(intervals) == 96

    log = [r for r in simulator.log_for("climkit") if r.account == DEMO_USERNAME]
    assert len(log) == 1 + 1 + 3 + climkit.refresh_cost(inventory.channels) + 1
    assert [r.status for r in log] == [200] * len(log)
    gaps = [b.at - a.at for a, b in zip(log, log[1:], strict=False)]
    assert min(gaps) >= 1.0, gaps
