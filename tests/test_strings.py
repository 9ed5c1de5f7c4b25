"""Every key the code uses is translated, in strings.json and translations/en.json."""

import ast
import json
from pathlib import Path
import re

import aiohttp

from custom_components.cloud_energy_meters.entity import ADDRESS_KEY
from custom_components.cloud_energy_meters.providers import PROVIDERS, AccountState
from custom_components.cloud_energy_meters.providers.model import Kind, Label

from .simulator import Simulator
from .simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SITES

PACKAGE = Path(__file__).parent.parent / "custom_components" / "cloud_energy_meters"


def _load(name: str) -> dict:
    return json.loads((PACKAGE / name).read_text(encoding="utf-8"))


def test_english_translation_equals_strings() -> None:
    """The custom integration ships the same English text it declares."""
    assert _load("translations/en.json") == _load("strings.json")


def test_flow_errors_and_aborts_are_translated() -> None:
    """Every error and abort reason the flows can produce has a text."""
    strings = _load("strings.json")
    source = (PACKAGE / "config_flow.py").read_text(encoding="utf-8")
    errors = set(re.findall(r'"base": "(\w+)"', source))
    errors |= set(re.findall(r'return "(\w+)"', source))
    errors |= set(re.findall(r'\] = "(\w+)"', source))
    assert errors >= {"invalid_auth", "cannot_connect", "no_sites", "unknown"}
    config_errors = set(strings["config"]["error"])
    option_errors = set(strings["options"]["error"])
    assert errors <= config_errors | option_errors
    aborts = set(re.findall(r'reason="(\w+)"', source))
    aborts |= {"already_configured", "reauth_successful", "reconfigure_successful"}
    assert aborts <= set(strings["config"]["abort"])
    for provider in PROVIDERS:
        assert provider in strings["config"]["step"]["user"]["menu_options"]
        assert provider in strings["config"]["step"]


def test_exception_and_issue_keys_are_translated() -> None:
    """Translation keys raised to Home Assistant have messages."""
    strings = _load("strings.json")
    used: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "translation_key":
                if isinstance(node.value, ast.Constant):
                    used.add(node.value.value)
    assert used
    assert used <= set(strings["exceptions"]) | set(strings["issues"]), used


def test_every_label_has_a_name_and_an_icon() -> None:
    """Each label of the shared vocabulary names an entity and has an icon."""
    labels = {label.value for label in Label} | {ADDRESS_KEY}
    names = _load("strings.json")["entity"]["sensor"]
    icons = _load("icons.json")["entity"]["sensor"]
    assert labels == set(names)
    assert labels == set(icons)
    assert all(set(icon) == {"default"} for icon in icons.values())


async def test_the_simulator_inventory_uses_the_vocabulary(
    simulator: Simulator,
) -> None:
    """Every channel Climkit produces is labelled from the vocabulary, or named."""
    provider_class = PROVIDERS["climkit"]
    async with aiohttp.ClientSession() as session:
        provider = provider_class(
            session,
            api_url=simulator.url("climkit"),
            credentials={"username": DEMO_USERNAME, "password": DEMO_PASSWORD},
            state=AccountState.for_policy(provider_class.policy),
        )
        inventory = await provider.async_discover([site.id for site in SITES])
    for channel in inventory.channels:
        assert channel.label is None or isinstance(channel.label, Label)
        assert channel.label is not None or channel.kind is Kind.INSTANT
