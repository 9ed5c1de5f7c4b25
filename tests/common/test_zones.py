"""No time zone is read on the event loop: Home Assistant reports that as blocking."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.cloud_energy_meters.const import CONF_SITES, DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from tests.helpers import climkit_credentials, open_flow, stored
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_LAC

from .zones import zones_built_on_loop

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


async def test_the_watch_sees_a_zone_built_by_the_integration() -> None:
    """The watch is not blind: code of the integration building a zone is seen."""
    probe = compile(
        "ZoneInfo('Europe/Zurich')",
        "custom_components/cloud_energy_meters/probe.py",
        "exec",
    )
    with zones_built_on_loop() as found:
        exec(probe, {"ZoneInfo": ZoneInfo})  # noqa: S102
        ZoneInfo("Europe/Zurich")  # not the integration's: left out
    assert len(found) == 1
    assert "cloud_energy_meters/probe.py" in found[0]


async def test_climkit_reads_zones_off_the_loop(
    hass: HomeAssistant,
    simulator: Simulator,
    recorder_mock: Any,
) -> None:
    """Sign-in, sites, discovery, latest values, history and a restart: all off the loop.

    Climkit writes times in each site's zone, so zones are needed everywhere; they
    are read in an executor once and reused.
    """
    with zones_built_on_loop() as found:
        result = await open_flow(hass, "climkit")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], climkit_credentials(simulator.url("climkit"))
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_SITES: [SITE_LAC.id]}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED
        # The history import ran: statistics in the site's zone exist.
        meter = SITE_LAC.meters[0]
        assert await stored(hass, f"{DOMAIN}:climkit_{SITE_LAC.id}_{meter.id}_energy")

        # A restart: entities from the saved inventory, then discovery, values and
        # history again, by a new provider.
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED
    assert found == []
