"""The repository's own ecosystem checker: clean on the repository, and able to fail."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from harness.home_assistant import REPOSITORY


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_ecosystem", REPOSITORY / "scripts" / "check_ecosystem.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = load_checker()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The integration and hacs.json, to break without touching the repository."""
    shutil.copytree(REPOSITORY / "custom_components", tmp_path / "custom_components")
    shutil.copy(REPOSITORY / "hacs.json", tmp_path / "hacs.json")
    return tmp_path


def edit_json(path: Path, change: object) -> None:
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def test_the_repository_passes() -> None:
    assert checker.problems(REPOSITORY) == []


def test_a_key_removed_from_strings_is_found(copy: Path) -> None:
    strings = copy / "custom_components/ssh_callhome/strings.json"
    edit_json(strings, lambda data: data["config"]["error"].pop("weak_key"))
    assert checker.problems(copy) == [
        "translations/en.json differs from strings.json",
        "strings.json: the code names 'weak_key', which has no text",
    ]


def test_an_unused_key_and_a_missing_icon_are_found(copy: Path) -> None:
    integration = copy / "custom_components/ssh_callhome"
    for name in ("strings.json", "translations/en.json"):
        edit_json(
            integration / name,
            lambda data: data["entity"]["sensor"].update({"ghost": {"name": "Ghost"}}),
        )
    assert checker.problems(copy) == [
        "strings.json: entity.sensor.ghost is not used by the code",
        "icons.json: no icon for sensor.ghost",
    ]


def test_manifest_and_hacs_rules(copy: Path) -> None:
    manifest = copy / "custom_components/ssh_callhome/manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({"name": data.pop("name"), **data, "version": "1.0"}))
    edit_json(copy / "hacs.json", lambda hacs: hacs.update({"domains": ["sensor"]}))
    found = checker.problems(copy)
    assert any(problem.startswith("manifest.json: keys must be") for problem in found)
    assert "manifest.json: version '1.0' is not a semantic version" in found
    assert "hacs.json: unknown key 'domains'" in found


def test_services_must_match(copy: Path) -> None:
    services = copy / "custom_components/ssh_callhome/services.yaml"
    services.write_text(services.read_text() + "\nrestart_all:\n  fields: {}\n")
    assert checker.problems(copy) == [
        "services.yaml: actions ['reconnect', 'restart', 'restart_all'], "
        "registered ['reconnect', 'restart']"
    ]
