"""What HACS and Home Assistant read from the package: manifest, brand, quality scale."""

import ast
import configparser
import importlib
from importlib import metadata
import inspect
import json
from pathlib import Path
import re
import subprocess
import sys
from typing import Any

import aiomqtt
from PIL import Image
import yaml

from custom_components.cloud_energy_meters import PLATFORMS
from custom_components.cloud_energy_meters.entity import CloudEnergyEntity
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import (
    CoordinatorEntity,
    DataUpdateCoordinator,
)

ROOT = Path(__file__).resolve().parents[2]
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


# A test named in a comment: a pytest node id without parameters.
TEST_REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
TEST_FILE = re.compile(r"\btests/[\w/]+\.py\b")


def _rules() -> dict[str, Any]:
    scale = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text(encoding="utf-8"))
    rules: dict[str, Any] = scale["rules"]
    return rules


def _status(value: Any) -> str:
    return str(value["status"] if isinstance(value, dict) else value)


def _comment(value: Any) -> str:
    return str(value.get("comment") or "") if isinstance(value, dict) else ""


def _test_functions(path: Path) -> set[str]:
    """Return the test functions a file defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_quality_scale_names_tests_that_exist() -> None:
    """Every done rule names the tests that prove it, and every test named exists.

    A comment names tests as pytest node ids without parameters
    (`tests/<path>.py::<test function>`); each must be a top-level test function
    (`def` or `async def`) of that file, so a renamed or deleted test cannot leave
    a rule claiming a proof it no longer has. Files named alone must exist too.
    """
    rules = _rules()
    unproven = [
        rule
        for rule, value in rules.items()
        if _status(value) == "done" and not TEST_REFERENCE.search(_comment(value))
    ]
    missing: list[str] = []
    for rule, value in rules.items():
        comment = _comment(value)
        missing += [
            f"{rule}: {path}"
            for path in TEST_FILE.findall(comment)
            if not (ROOT / path).is_file()
        ]
        missing += [
            f"{rule}: {path}::{name}"
            for path, name in TEST_REFERENCE.findall(comment)
            if (ROOT / path).is_file() and name not in _test_functions(ROOT / path)
        ]
    assert unproven == []
    assert missing == []


def test_coordinator_and_base_entity_live_in_their_common_modules() -> None:
    """The coordinator is in coordinator.py, the base entity in entity.py.

    Every entity class of every platform derives from that base entity, and no
    other module defines a coordinator.
    """
    modules = {
        path.stem: importlib.import_module(
            f"custom_components.cloud_energy_meters.{path.stem}"
        )
        for path in PACKAGE.glob("*.py")
        if path.stem != "__init__"
    }
    coordinators = {
        f"{name}.{cls.__name__}"
        for name, module in modules.items()
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, DataUpdateCoordinator)
        and cls.__module__ == module.__name__
    }
    assert coordinators == {"coordinator.CloudEnergyCoordinator"}
    assert CloudEnergyEntity.__module__.endswith(".entity")
    entities = [
        cls
        for platform in PLATFORMS
        for cls in vars(modules[platform.value]).values()
        if isinstance(cls, type)
        and issubclass(cls, Entity)
        and cls.__module__ == modules[platform.value].__name__
    ]
    assert entities
    assert [cls for cls in entities if not issubclass(cls, CloudEnergyEntity)] == []


def test_every_platform_sets_parallel_updates() -> None:
    """PARALLEL_UPDATES is 0 on every platform: entities only read their coordinator.

    Requests are paced per account by the cloud layer's limiter, not per entity.
    """
    for platform in PLATFORMS:
        module = importlib.import_module(
            f"custom_components.cloud_energy_meters.{platform.value}"
        )
        assert module.PARALLEL_UPDATES == 0, platform
        assert all(
            issubclass(cls, CoordinatorEntity)
            for cls in vars(module).values()
            if isinstance(cls, type)
            and issubclass(cls, Entity)
            and cls.__module__ == module.__name__
        ), platform


def test_the_requirement_is_open_pinned_and_published() -> None:
    """The one requirement is pinned, installed as pinned, OSI-licensed, open source.

    Its PyPI release being built by a public CI workflow from a tagged release is
    not something a test can see offline (aiomqtt's .github/workflows/publish.yml
    publishes each GitHub release).
    """
    manifest = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["requirements"] == ["aiomqtt==2.5.1"]
    for requirement in manifest["requirements"]:
        name, version = requirement.split("==")
        meta = metadata.metadata(name)
        assert meta["Version"] == version
        assert any(
            c.startswith("License :: OSI Approved ::")
            for c in meta.get_all("Classifier") or []
        )
        sources = [url for url in meta.get_all("Project-URL") or [] if "Source" in url]
        assert sources
        assert all("https://github.com/" in url for url in sources)


BLOCKING_IO = {"requests", "urllib.request", "urllib3", "http.client", "socket", "paho"}


def test_cloud_io_is_asyncio() -> None:
    """Clouds are reached with aiohttp and aiomqtt only, never a blocking client.

    No module imports a blocking network library or sleeps the thread; aiomqtt's
    client is used through its coroutines.
    """
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert not any(
                    name == blocking or name.startswith(f"{blocking}.")
                    for blocking in BLOCKING_IO
                ), (path.name, name)
            if isinstance(node, ast.Attribute) and node.attr == "sleep":
                assert not (
                    isinstance(node.value, ast.Name) and node.value.id == "time"
                ), path.name
    for method in ("subscribe", "publish", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(aiomqtt.Client, method)), method


def test_the_integration_passes_mypy_strict() -> None:
    """Strict mypy finds nothing; the one requirement ships its types (PEP 561).

    Runs what CI's scripts/test runs before pytest (so its cache is warm there).
    """
    assert (Path(aiomqtt.__file__).parent / "py.typed").is_file()
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    assert config["mypy"].getboolean("strict")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "custom_components/cloud_energy_meters",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found")


def test_coverage_gate_is_95_percent() -> None:
    """CI's pytest runs with coverage of the integration and fails below 95 %."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    assert config["coverage:run"]["source"] == "custom_components/cloud_energy_meters"
    assert float(config["coverage:report"]["fail_under"]) >= 95
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert (
        'exec pytest -n auto --dist worksteal --cov --cov-report=term-missing "$@"'
        in script
    )
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_scripts_test_prints_its_help() -> None:
    """`scripts/test --help` says what it runs, and runs nothing."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0
    assert "ruff check" in result.stdout
    assert "pytest with coverage" in result.stdout
    assert "==>" not in result.stdout  # no step ran


def test_the_develop_banner_names_every_demo_account() -> None:
    """`scripts/develop` prints, for each simulated cloud, what to type (no drift)."""
    from tests.simulator import copper, energydata, flexmeasures, locus  # noqa: PLC0415

    banner = (ROOT / "scripts" / "develop").read_text(encoding="utf-8")
    expected = [
        locus.DEMO_CLIENT_ID,
        locus.DEMO_CLIENT_SECRET,
        locus.DEMO_USERNAME,
        locus.DEMO_PASSWORD,
        str(locus.DEMO_PARTNER_ID),
        str(locus.SMALL_PARTNER_ID),
        energydata.DEMO_TOKEN,
        *(
            f"{stream_id} {described['name']}"
            for stream_id, described in energydata.USER_DATASTREAMS.items()
        ),
        copper.ENTERPRISE_CLIENT_ID,
        copper.ENTERPRISE_CLIENT_SECRET,
        flexmeasures.DEMO_EMAIL,
        flexmeasures.DEMO_PASSWORD,
    ]
    assert [text for text in expected if text not in banner] == []
