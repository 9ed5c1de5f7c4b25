"""Diagnostics: useful to a maintainer, useless to whoever finds them."""

from datetime import UTC, datetime
import json
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from homeassistant.core import HomeAssistant
from tests.conftest import (
    SetupEntry,
    climkit_entry_for,
    energydata_entry_for,
    locus_entry_for,
)
from tests.simulator import Simulator
from tests.simulator.locus import CC_CLIENT_ID, CC_CLIENT_SECRET

NOW = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)

CREDENTIALS = ("username", "password", "client_id", "client_secret", "api_token")


def _entry(simulator: Simulator, cloud: str) -> MockConfigEntry:
    """Return an entry of the cloud (Locus: a user, or a client on its own)."""
    match cloud:
        case "climkit":
            return climkit_entry_for(simulator)
        case "locus":
            return locus_entry_for(simulator)
        case "locus_client":
            return locus_entry_for(
                simulator,
                client_id=CC_CLIENT_ID,
                client_secret=CC_CLIENT_SECRET,
                username="",
                password="",
            )
    return energydata_entry_for(simulator)


def _issued(simulator: Simulator, cloud: str) -> list[str]:
    """Return every token the cloud handed out (Energydata's is the credential)."""
    if cloud == "climkit":
        return list(simulator.climkit._tokens)
    if cloud.startswith("locus"):
        return [*simulator.locus._tokens, *simulator.locus._refresh]
    return []


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("cloud", ["climkit", "locus", "locus_client", "energydata"])
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    setup_entry: SetupEntry,
    snapshot: SnapshotAssertion,
    cloud: str,
) -> None:
    """Diagnostics hold the inventory and counters, and no secret at all."""
    entry = _entry(simulator, cloud)
    assert await setup_entry(entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)

    secrets: list[str] = [
        str(entry.data[key]) for key in CREDENTIALS if entry.data.get(key)
    ]
    assert (
        len(secrets)
        == {
            "climkit": 2,
            "locus": 4,
            "locus_client": 2,
            "energydata": 1,
        }[cloud]
    )
    issued = _issued(simulator, cloud)
    if cloud != "energydata":
        assert issued
    for secret in (*secrets, *issued):
        assert secret not in text
        assert secret[:12] not in text  # nor a recognisable part of one
    for key in CREDENTIALS:
        if entry.data.get(key):
            assert diagnostics["entry"]["data"][key] == "**REDACTED**"
    assert not _addresses(diagnostics)  # addresses locate homes

    # The API URL changes with the simulator's port: keep the snapshot stable.
    diagnostics["entry"]["data"]["api_url"] = "<simulator>"
    diagnostics["entry"]["entry_id"] = "<entry id>"
    # So do subentry ids (Energydata.dk datastreams): devices name theirs.
    for subentry in diagnostics["entry"].get("subentries", []):
        subentry["subentry_id"] = "<subentry id>"
    for device in diagnostics["devices"]:
        if device["group"]:
            device["group"] = "<subentry id>"
    assert diagnostics == snapshot


def _addresses(diagnostics: dict[str, Any]) -> list[Any]:
    """Return the sites' addresses left in the diagnostics."""
    return [
        site["address"]
        for site in diagnostics["sites"]
        if site.get("address") not in (None, "**REDACTED**")
    ]
