"""Diagnostics: useful to a maintainer, useless to whoever finds them."""

from datetime import UTC, datetime
import json

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from homeassistant.core import HomeAssistant

from .conftest import SetupEntry
from .simulator import Simulator
from .simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME

NOW = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)


@pytest.mark.freeze_time(NOW)
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """Diagnostics hold the inventory and counters, and no secret at all."""
    assert await setup_entry(climkit_entry)
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, climkit_entry
    )
    text = json.dumps(diagnostics)
    issued = list(simulator.climkit._tokens)
    assert issued
    for secret in (DEMO_PASSWORD, DEMO_USERNAME, *issued, *(t[:12] for t in issued)):
        assert secret not in text
    assert "Avenue" not in text  # addresses locate homes
    # The API URL changes with the simulator's port: keep the snapshot stable.
    diagnostics["entry"]["data"]["api_url"] = "<simulator>"
    diagnostics["entry"]["entry_id"] = "<entry id>"
    assert diagnostics == snapshot
