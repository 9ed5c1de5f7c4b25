"""Every key the code uses is translated, in strings.json and translations/en.json."""

import ast
import json
from pathlib import Path
import re

import pytest
import yaml

from custom_components.cloud_energy_meters.ids import HISTORY_IMPORT_KEY, SITE_TEXTS
from custom_components.cloud_energy_meters.providers import PROVIDERS
from custom_components.cloud_energy_meters.providers.model import Kind, Label
import homeassistant.components
from tests.provider_factory import MakeProvider
from tests.simulator.climkit import SITES

from .translation_rules import ICONS, STRINGS, problems

PACKAGE = (
    Path(__file__).resolve().parents[2] / "custom_components" / "cloud_energy_meters"
)


def _load(name: str) -> dict:
    return json.loads((PACKAGE / name).read_text(encoding="utf-8"))


def test_english_translation_equals_strings() -> None:
    """The custom integration ships the same English text it declares."""
    assert _load("translations/en.json") == _load("strings.json")


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_strings_pass_home_assistants_validator(name: str) -> None:
    """Every key is one hassfest allows where it stands, every text one it accepts."""
    assert problems(_load(name), STRINGS, name) == []


def test_icons_pass_home_assistants_validator() -> None:
    """icons.json has only the parts hassfest allows a hub, with mdi: icons."""
    assert problems(_load("icons.json"), ICONS, "icons.json") == []


def test_the_validator_rules_accept_what_home_assistant_ships() -> None:
    """Core's own strings and hub icons pass the rules: they are hassfest's, not ours.

    Left out: auth, onboarding and homeassistant_hardware (hassfest gives them schemas
    of their own) and preview features (core's only, where a link is tolerated).
    """
    components = Path(homeassistant.components.__file__).parent
    found: list[str] = []
    for path in sorted(components.glob("*/strings.json")):
        if path.parent.name in {"auth", "onboarding", "homeassistant_hardware"}:
            continue
        strings = json.loads(path.read_text(encoding="utf-8"))
        strings.pop("preview_features", None)
        found += problems(strings, STRINGS, path.parent.name)
    for path in sorted(components.glob("*/icons.json")):
        manifest = json.loads((path.parent / "manifest.json").read_text("utf-8"))
        kind = manifest.get("integration_type", "hub")
        if kind not in {"entity", "helper", "system"}:  # those have entity_component
            icons = json.loads(path.read_text("utf-8"))
            found += problems(icons, ICONS, f"{path.parent.name}/icons.json")
    assert len(list(components.glob("*/strings.json"))) > 1000
    assert found == []


def test_the_validator_rules_catch_what_hassfest_refuses() -> None:
    """Each rule finds its breach: the checks above can fail."""
    strings = {
        "title": " Padded",
        "config": {
            "title": "Removed from config",
            "step": {
                "user": {
                    "description": "A topic is <dataset prefix>/<datastream suffix>.",
                    "data": {"host": "Host"},
                    "data_description": {"port": "Not a field of this step"},
                    "unknown_part": "Not a step key",
                },
            },
            "error": {
                "quoted": "Quoted '{placeholder}'",
                "broken": "A {brace never closed",
                "number": "Not an identifier {0}",
                "url": "See https://example.com/help",
                "combined": "Text and [%key:common::config_flow::error::unknown%]",
            },
        },
        "config_subentries": {"datastream": {"step": {}}},
        "entity": {"sensor": {"Bad-Key": {"state": {"on": "On {state}"}}}},
        "exceptions": {"failed": {"text": "message is the only key"}},
        "issues": {
            "both": {"title": "T", "description": "D", "fix_flow": {"step": {}}}
        },
        "services": {"publish": {"name": "Publish"}},
    }
    found = "\n".join(problems(strings, STRINGS, "strings"))
    for breach in (
        "strings.title: leading or trailing white space",
        "strings.config.title: not a key hassfest allows here",
        "strings.config.step.user.description: looks like HTML",
        "strings.config.step.user.data_description.port: describes a field not in data",
        "strings.config.step.user.unknown_part: not a key hassfest allows here",
        "strings.config.error.quoted: placeholder in single quotes",
        "strings.config.error.broken: malformed placeholder",
        "strings.config.error.number: placeholder {0} is not an identifier",
        "strings.config.error.url: a URL",
        "strings.config.error.combined: a reference combined with text",
        "strings.config_subentries.datastream.entry_type: required",
        "strings.config_subentries.datastream.initiate_flow: required",
        "strings.entity.sensor.Bad-Key: badly spelled key (translation_key)",
        "strings.entity.sensor.Bad-Key.state.on: placeholders are not allowed here",
        "strings.exceptions.failed.text: not a key hassfest allows here",
        "strings.issues.both: a description or a fix_flow, not both",
        "strings.services.publish.description: required",
    ):
        assert breach in found
    icons = {
        "entity": {
            "sensor": {"power": {"default": "flash", "state": {"on": "mdi:flash"}}},
            "binary_sensor": {"problem": {"range": {"low": "mdi:alert"}}},
        },
        "services": {"publish": "mdi:upload"},
    }
    found = "\n".join(problems(icons, ICONS, "icons"))
    for breach in (
        "icons.entity.sensor.power.default: an icon must start with mdi:",
        "icons.entity.binary_sensor.problem.range.low: badly spelled key (number)",
        "icons.services.publish: not a mapping",
    ):
        assert breach in found


def test_actions_are_translated_with_icons() -> None:
    """Each action of services.yaml has a text and an icon, and so has each field."""
    actions = yaml.safe_load((PACKAGE / "services.yaml").read_text(encoding="utf-8"))
    texts = _load("strings.json")["services"]
    icons = _load("icons.json")["services"]
    assert set(actions) == set(texts) == set(icons)
    for action, schema in actions.items():
        assert set(schema["fields"]) == set(texts[action]["fields"]), action


def test_flow_errors_and_aborts_are_translated() -> None:
    """Every error and abort reason the flows can produce has a text."""
    strings = _load("strings.json")
    # The generic flow, the forms it draws, and the clouds' own flow steps.
    flows = [PACKAGE / "config_flow.py", PACKAGE / "forms.py"]
    flows += PACKAGE.glob("extras/*/flow.py")
    source = "\n".join(path.read_text(encoding="utf-8") for path in flows)
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


def test_shared_errors_name_no_cloud() -> None:
    """Errors every cloud's sign-in can show are generic; hints go in a step's text.

    A newcomer signing in to one cloud is not told about another's quirks.
    """
    errors = _load("strings.json")["config"]["error"]
    shared = (
        "invalid_auth",
        "cannot_connect",
        "not_permitted",
        "no_sites",
        "unknown",
        "insecure_url",
        "invalid_url",
    )
    names = [provider.name for provider in PROVIDERS.values()]
    named = {key: name for key in shared for name in names if name in errors[key]}
    assert named == {}


def test_exception_and_issue_keys_are_translated() -> None:
    """Translation keys raised to Home Assistant have messages."""
    strings = _load("strings.json")
    used: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "translation_key":
                if isinstance(node.value, ast.Constant):
                    used.add(node.value.value)
    assert used
    assert used <= set(strings["exceptions"]) | set(strings["issues"]), used


def test_every_form_field_is_described() -> None:
    """Each field of every form has a description under it (data_description).

    Config, options and subentry steps, and the fields of their sections.
    """
    strings = _load("strings.json")
    flows = {
        "config": strings["config"],
        "options": strings["options"],
        **{
            f"config_subentries.{key}": flow
            for key, flow in strings["config_subentries"].items()
        },
    }
    undescribed: list[str] = []
    for name, flow in flows.items():
        for step_id, step in flow["step"].items():
            parts = {step_id: step} | {
                f"{step_id}.sections.{key}": section
                for key, section in step.get("sections", {}).items()
            }
            for where, part in parts.items():
                described = part.get("data_description", {})
                undescribed += [
                    f"{name}.step.{where}.{field}"
                    for field in part.get("data", {})
                    if not described.get(field)
                ]
    assert undescribed == []


def test_every_label_has_a_name_and_an_icon() -> None:
    """Each label of the shared vocabulary names an entity and has an icon.

    So do the site's texts and the entry's History import sensor.
    """
    labels = {label.value for label in Label} | {*SITE_TEXTS, HISTORY_IMPORT_KEY}
    names = _load("strings.json")["entity"]["sensor"]
    icons = _load("icons.json")["entity"]["sensor"]
    assert labels == set(names)
    assert labels == set(icons)
    assert all(set(icon) == {"default"} for icon in icons.values())


async def test_the_simulator_inventory_uses_the_vocabulary(
    make_provider: MakeProvider,
) -> None:
    """Every channel Climkit produces is labelled from the vocabulary, or named."""
    provider = make_provider("climkit")
    inventory = await provider.async_discover([site.id for site in SITES])
    for channel in inventory.channels:
        assert channel.label is None or isinstance(channel.label, Label)
        assert channel.label is not None or channel.kind is Kind.INSTANT
