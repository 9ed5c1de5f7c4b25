"""What HACS and Home Assistant read from the package: manifest, brand, quality scale."""

import json
from pathlib import Path

from PIL import Image
import yaml

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "custom_components" / "cloud_energy_meters"

RULES = {
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency",
    "docs-actions", "docs-conditions", "docs-high-level-description",
    "docs-installation-instructions", "docs-removal-instructions", "docs-triggers",
    "entity-event-setup", "entity-unique-id", "has-entity-name", "runtime-data",
    "test-before-configure", "test-before-setup", "unique-config-entry",
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases",
    "dynamic-devices", "entity-category", "entity-device-class",
    "entity-disabled-by-default", "entity-translations", "exception-translations",
    "icon-translations", "reconfiguration-flow", "repair-issues", "stale-devices",
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip


def test_manifest() -> None:
    """Keys HACS and Home Assistant need, domain and name first, the rest sorted."""
    manifest = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["domain"] == "cloud_energy_meters"
    assert manifest["name"] == "Cloud Energy Meters"
    assert manifest["iot_class"] == "cloud_polling"
    assert manifest["config_flow"] is True
    assert manifest["dependencies"] == ["recorder"]
    for key in ("version", "codeowners", "documentation", "issue_tracker"):
        assert manifest[key]
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    assert hacs["name"] == "Cloud Energy Meters"
    assert hacs["homeassistant"] == "2026.10.0"


def test_brand_images() -> None:
    """Local brand images: 256×256 and 512×512 PNG with transparency."""
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        with Image.open(PACKAGE / "brand" / name) as image:
            assert image.format == "PNG"
            assert image.size == (size, size)
            assert image.mode == "RGBA"


def test_quality_scale_lists_every_rule() -> None:
    """All 54 rules, each done or exempt with a reason (todo is honest too)."""
    scale = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text(encoding="utf-8"))
    rules = scale["rules"]
    assert set(rules) == RULES
    for rule, status in rules.items():
        if isinstance(status, dict):
            # hassfest's form: a done rule may say where its proof is; exempt and
            # todo must say why.
            assert status["status"] in ("done", "exempt", "todo"), rule
            assert status.get("comment") or status["status"] == "done", rule
        else:
            assert status in ("done", "todo"), rule
