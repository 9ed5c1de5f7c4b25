"""The README says what the code does: rate limits, troubleshooting, licence."""

import json
from pathlib import Path
import re

import pytest

from custom_components.cloud_energy_meters.coordinator import minimum_interval
from custom_components.cloud_energy_meters.providers import PROVIDERS
from custom_components.cloud_energy_meters.providers.ratelimit import SPACING_MARGIN

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "custom_components" / "cloud_energy_meters"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(heading: str, text: str = README) -> str:
    """Return the text under `heading` up to the next heading of its level or above."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    ends = [
        match.start()
        for match in re.finditer(r"\n(#+) ", text[start + 1 :])
        if len(match.group(1)) <= len(level)
    ]
    return text[start : start + 1 + ends[0]] if ends else text[start:]


def test_licence_is_mit_and_said() -> None:
    """HACS needs a licence: MIT, and the README names it."""
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n")
    assert "Copyright (c) 2026 Cloud Energy Meters contributors" in licence
    assert "[LICENSE](LICENSE)" in _section("## Licence")


@pytest.mark.real_rates  # Climkit's own policy, not the tests' fast one
def test_climkit_fastest_interval_is_the_codes() -> None:
    """The formula and the demo account's numbers are the limiter's own."""
    climkit = PROVIDERS["climkit"]
    policy = climkit.policy
    spacing = policy.min_interval + SPACING_MARGIN
    cost = 42  # the demo account's refresh (scripts/bench: refresh_cost() = 42)
    seconds = 2 * policy.seconds_for(cost)
    minutes = minimum_interval(climkit, cost).total_seconds() / 60
    section = _section("## Rate limits and what a refresh costs")
    assert (
        f"{policy.request_seconds:g} s × cost + {spacing:g} s × (cost − 1)" in section
    )
    assert (
        f"2 × ({cost} × {policy.request_seconds:g} s + {cost - 1} × {spacing:g} s) =\n"
        f"{seconds:g} s → **{minutes:g} minutes**"
    ) in section


def test_energydata_pace_is_the_codes() -> None:
    """Two requests at a time, no spacing: what the Energydata.dk policy says."""
    policy = PROVIDERS["energydata"].policy
    section = _section(
        "### Energydata.dk", _section("## Rate limits and what a refresh costs")
    )
    assert (policy.max_concurrency, policy.min_interval) == (2, 0)
    assert "most two requests at a time, with no spacing" in section
    assert "after the last one ended" not in section


def test_troubleshooting_covers_every_cloud_and_every_message() -> None:
    """Each cloud has its part; each form error, abort and repair issue is explained."""
    section = _section("## Troubleshooting")
    for provider in PROVIDERS.values():
        assert f"\n### {provider.name}\n" in section
    strings = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
    flows = [
        strings["config"],
        strings["options"],
        *strings["config_subentries"].values(),
    ]
    keys = set(strings["issues"])
    for flow in flows:
        keys |= set(flow.get("error", {})) | set(flow.get("abort", {}))
    keys = {key for key in keys if not key.endswith("_successful")}
    assert {"sites_missing", "push_unreachable", "wrong_account"} <= keys
    assert [key for key in sorted(keys) if f"`{key}`" not in section] == []
    assert "custom_components.cloud_energy_meters: debug" in section
    assert "Download diagnostics" in section
