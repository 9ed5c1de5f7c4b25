"""The README says what the code does: setup, options, actions, cadences, removal."""

from datetime import timedelta
import json
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from custom_components.cloud_energy_meters.const import (
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_UPDATE_INTERVAL,
    DISCOVERY_INTERVAL,
    DOMAIN,
    EVENT_ALERT,
    MAX_BACKFILL_DAYS,
    REIMPORT_WINDOW,
    STATISTICS_INTERVAL,
)
from custom_components.cloud_energy_meters.coordinator import fastest_interval
from custom_components.cloud_energy_meters.providers import PROVIDERS
from custom_components.cloud_energy_meters.providers.mqtt import BACKOFF
from custom_components.cloud_energy_meters.providers.ratelimit import SPACING_MARGIN
from custom_components.cloud_energy_meters.push import PUSH_GRACE
from custom_components.cloud_energy_meters.statistics import series_for
from tests.provider_factory import build_provider

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "custom_components" / "cloud_energy_meters"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SENSOR_SNAPSHOT = ROOT / "tests" / "climkit" / "snapshots" / "test_sensor.ambr"


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
    minutes = fastest_interval(climkit, cost).total_seconds() / 60
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


def _table_fields(section: str) -> set[str]:
    """Return the fields a section's tables name in their first column, casefolded.

    "Advanced → MQTT broker, port" names "MQTT broker" and "MQTT port": a part that
    starts in lower case takes the words before the last of the part before it.
    """
    fields: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cell = line.split("|")[1].strip()
        cell = re.sub(r"\(.*?\)", "", cell.removeprefix("Advanced → ")).strip()
        parts = [part.strip() for part in cell.split(",")]
        for index, part in enumerate(parts):
            if index and part[:1].islower():
                part = " ".join([*parts[index - 1].split()[:-1], part])
                parts[index] = part
            fields.add(part.casefold())
    return fields


def _labels(step: dict[str, Any]) -> list[str]:
    """Return the labels of a form step's fields, those of its sections included."""
    labels = list(step.get("data", {}).values())
    for section in step.get("sections", {}).values():
        labels += section.get("data", {}).values()
    return labels


def test_the_introduction_names_every_cloud() -> None:
    """The first lines say what the integration does, and list each cloud supported."""
    introduction = README.split("\n## ", 1)[0]
    for words in ("sites", "devices", "entities", "statistics", "Energy dashboard"):
        assert words in introduction
    for provider in PROVIDERS.values():
        assert re.search(
            rf"^\| \[{re.escape(provider.name)}\]\(https://[^)]+\).* \| supported \|$",
            introduction,
            re.MULTILINE,
        ), provider.name


def test_installation_says_how() -> None:
    """Installation goes through HACS, needs a restart, then the UI; version stated."""
    section = _section("## Installation (for real use)")
    for step in (
        "HACS",
        "**Custom repositories**",
        "restart Home Assistant",
        "**Settings → Devices & services → Add integration → Cloud Energy Meters**",
    ):
        assert step in section
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    year, month, _ = hacs["homeassistant"].split(".")
    assert f"Home Assistant {year}.{month} or newer" in section


def test_removal_says_how_and_what_goes() -> None:
    """Removal: where to delete the entry, what goes with it, and HACS afterwards."""
    section = _section("## Removal")
    assert "**Settings → Devices & services → Cloud Energy Meters → ⋮ → Delete**" in (
        section
    )
    for what in ("devices", "entities", "long-term statistics", "uninstall it"):
        assert what in section
    assert "HACS" in section


def test_every_form_field_is_documented() -> None:
    """Each field of each cloud's forms is a row of that cloud's table in the README.

    The datastream forms (first ones and those added later) belong to Energydata.dk;
    Copper Labs has two sign-in forms and a reauthentication form of its own.
    """
    steps = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
    config = steps["config"]["step"]
    forms = {
        "climkit": [config["climkit"], config["sites"]],
        "locus": [config["locus"], config["sites"]],
        "energydata": [
            config["energydata"],
            config["datastream"],
            *steps["config_subentries"]["datastream"]["step"].values(),
        ],
        "copper": [
            config["copper_app"],
            config["copper_enterprise"],
            config["copper_reauth"],
            config["sites"],
        ],
        "flexmeasures": [config["flexmeasures"], config["sites"]],
    }
    for key, provider in PROVIDERS.items():
        documented = _table_fields(
            _section(f"### {provider.name}: what you need and what you enter")
        )
        missing = [
            label
            for step in forms[key]
            for label in _labels(step)
            if not {label.casefold(), f"{label.casefold()}s"} & documented
        ]
        assert missing == [], provider.name


def test_every_option_is_documented_with_its_default() -> None:
    """The options table names each option of the form with the code's defaults."""
    options = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))[
        "options"
    ]["step"]["init"]
    section = _section("### Options")
    assert _table_fields(section) >= {label.casefold() for label in _labels(options)}
    assert f"| Update interval | {DEFAULT_UPDATE_INTERVAL} min |" in section
    assert (
        f"| History to import at first | {DEFAULT_BACKFILL_DAYS} days "
        f"(1–{MAX_BACKFILL_DAYS}) |"
    ) in section


def test_every_action_and_field_is_documented() -> None:
    """Each action of services.yaml is named, and each of its fields shown or named."""
    actions = yaml.safe_load((PACKAGE / "services.yaml").read_text(encoding="utf-8"))
    sections = {
        "energydata": _section("### Energydata.dk actions"),
        "flexmeasures": _section("### FlexMeasures actions"),
    }
    for action, schema in actions.items():
        section = sections[action.split("_", 1)[0]]
        assert f"**`{DOMAIN}.{action}`**" in section, action
        part = section.split(f"**`{DOMAIN}.{action}`**", 1)[1].split("\n**`", 1)[0]
        for field in schema["fields"]:
            assert f"`{field}`" in part or re.search(
                rf"^\s*#?\s*{field}:", part, re.MULTILINE
            ), (action, field)


def test_update_cadences_are_the_codes() -> None:
    """How often values, listings and history are read is what the code does."""
    text = " ".join(README.split())  # one line: the phrases may wrap anywhere
    assert DEFAULT_UPDATE_INTERVAL == 10
    assert "every update interval (default 10 minutes, fastest 1 minute)" in text
    assert timedelta(hours=12) == DISCOVERY_INTERVAL
    assert "Sites and channels are listed again every 12 hours" in text
    assert timedelta(hours=1) == STATISTICS_INTERVAL
    assert timedelta(hours=48) == REIMPORT_WINDOW
    assert "later imports run every hour, re-import the trailing 48 hours" in text
    assert BACKOFF == (1, 2, 5, 10, 30, 60)
    assert "retried (after 1, 2, 5, 10, 30 s, then every minute)" in text
    assert timedelta(minutes=10) == PUSH_GRACE
    assert "after **ten minutes** without the broker a repair issue" in text


def test_examples_use_entities_that_exist() -> None:
    """The examples are YAML, and their entities are the demo account's own.

    The Climkit entity snapshot (tests/climkit/test_sensor.py) holds every entity id
    of the demo account the simulator serves.
    """
    section = _section("## Examples")
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        assert yaml.safe_load(block)["automation"]
    snapshot = SENSOR_SNAPSHOT.read_text("utf-8")
    entities = set(re.findall(r"\bsensor\.\w+", section))
    assert entities
    assert [e for e in entities if f"'entity_id': '{e}'" not in snapshot] == []
    assert f"event_type: {EVENT_ALERT}" in README


def test_every_cloud_says_what_becomes_a_device() -> None:
    """Each cloud has a part saying what its devices are (sites, equipment, streams)."""
    for provider in PROVIDERS.values():
        parts = [
            _section(heading)
            for heading in re.findall(r"^### .*[Dd]evices.*$", README, re.MULTILINE)
        ]
        assert any(provider.name in part and "device per" in part for part in parts), (
            provider.name
        )


def test_use_cases_are_listed() -> None:
    """A section says who uses the integration for what."""
    items = re.findall(r"^- \S", _section("## Use cases"), re.MULTILINE)
    assert len(items) >= 3


async def test_energydata_statistic_ids_are_as_documented() -> None:
    """The README's Energydata.dk ids are what the code writes: the datastream's name.

    A template `energydata_energydata_dk_<name>` must match the statistic of each
    kind of datastream; no token (or hash of one), nor the entry's id, is part of it.
    """
    templates = re.findall(r"`(cloud_energy_meters:energydata_[^`]+)`", README)
    assert len(templates) == 3
    provider = build_provider(
        "energydata",
        None,  # discovery sends no request
        api_url="https://example.invalid",
        api_token="a-token",
        settings={
            "account_id": "0a1b2c3d4e5f",
            "datastreams": [
                {"id": 11, "quantity": "energy", "meaning": "register", "name": "Main"},
                {"id": 12, "quantity": "water", "meaning": "register", "name": "Tap"},
                {"id": 13, "quantity": "gas", "meaning": "amount_end", "name": "Gas"},
            ],
        },
    )
    inventory = await provider.async_discover([])
    (site,) = inventory.sites
    written = [
        series_for(provider.key, site, c).statistic_id for c in inventory.channels
    ]
    documented = [
        template.replace("<name>", name.lower())
        for template, name in zip(templates, ("Main", "Tap", "Gas"), strict=True)
    ]
    assert written == documented
    assert not any("0a1b2c3d4e5f" in sid or "token" in sid for sid in written)
