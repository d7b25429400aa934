"""Checks what hassfest and HACS check, and what they cannot, for this repository.

manifest.json key order and version, hacs.json keys, strings.json equal to translations/en.json,
every translation key used in the code present in strings.json and none unused, services.yaml
against the registered actions and their strings, icons.json against every entity and action.
Prints each problem and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
# Calls whose string argument is a translation key, and the strings.json sections it may be in.
_KEYED_ARGUMENTS = {"translation_key", "step_id", "reason"}
# The abort reasons Home Assistant's async_update_reload_and_abort gives, by the flow's source.
_RELOAD_AND_ABORT_REASONS = {"reauth_successful", "reconfigure_successful"}


class Repository:
    """The integration's files, read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.integration = root / "custom_components" / "ssh_callhome"
        self.strings: dict[str, Any] = json.loads((self.integration / "strings.json").read_text())
        self.code = {path: path.read_text() for path in sorted(self.integration.rglob("*.py"))}

    def json(self, name: str) -> dict[str, Any]:
        """One of the integration's JSON files."""
        data: dict[str, Any] = json.loads((self.integration / name).read_text())
        return data


def check_manifest(repo: Repository) -> Iterator[str]:
    """domain, name, then the other keys in alphabetical order; a semantic version."""
    keys = list(repo.json("manifest.json"))
    expected = ["domain", "name", *sorted(key for key in keys if key not in ("domain", "name"))]
    if keys != expected:
        yield f"manifest.json: keys must be {expected}, are {keys}"
    version = repo.json("manifest.json").get("version", "")
    if not SEMVER.match(version):
        yield f"manifest.json: version {version!r} is not a semantic version"


def check_hacs(repo: Repository) -> Iterator[str]:
    """Only keys HACS knows, and a name."""
    hacs = json.loads((repo.root / "hacs.json").read_text())
    for key in sorted(set(hacs) - HACS_KEYS):
        yield f"hacs.json: unknown key {key!r}"
    if "name" not in hacs:
        yield "hacs.json: no name"


def check_translation_copy(repo: Repository) -> Iterator[str]:
    """A custom integration ships translations/en.json itself: it must equal strings.json."""
    if repo.json("translations/en.json") != repo.strings:
        yield "translations/en.json differs from strings.json"


def _literals(source: str) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _keyed_literals(source: str) -> set[str]:
    """String arguments that name a translation.

    translation_key=, step_id= and reason= arguments, the error of FormError(field, error), and
    the value of errors[field] = error.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg in _KEYED_ARGUMENTS:
            found |= _string(node.value)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "FormError":
            found |= _string(node.args[1]) if len(node.args) > 1 else set()
        elif isinstance(node, ast.Assign) and _is_errors_item(node.targets[0]):
            found |= _string(node.value)
    return found


def _string(node: ast.expr) -> set[str]:
    is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
    return {node.value} if is_text else set()  # type: ignore[attr-defined]


def _is_errors_item(target: ast.expr) -> bool:
    return isinstance(target, ast.Subscript) and getattr(target.value, "id", "") == "errors"


def _translation_keys(strings: dict[str, Any]) -> dict[str, str]:
    """Every key a piece of code names, with where it is in strings.json."""
    keys: dict[str, str] = {}
    for flow in ("config", "options"):
        section = strings.get(flow, {})
        for group in ("step", "error", "abort"):
            for key in section.get(group, {}):
                keys[key] = f"{flow}.{group}.{key}"
    for group in ("exceptions", "issues", "selector", "services"):
        for key in strings.get(group, {}):
            keys[key] = f"{group}.{key}"
    for issue, texts in strings.get("issues", {}).items():
        for group in ("step", "abort"):
            for key in texts.get("fix_flow", {}).get(group, {}):
                keys[key] = f"issues.{issue}.fix_flow.{group}.{key}"
    for platform, entities in strings.get("entity", {}).items():
        for key in entities:
            keys[key] = f"entity.{platform}.{key}"
    return keys


def check_translation_keys(repo: Repository) -> Iterator[str]:
    """Every key the code names is in strings.json; every key in strings.json is named."""
    keys = _translation_keys(repo.strings)
    code = "\n".join(repo.code.values())
    used = set().union(*(_keyed_literals(source) for source in repo.code.values()))
    literals = set().union(*(_literals(source) for source in repo.code.values()))
    for key in sorted(used - set(keys)):
        yield f"strings.json: the code names {key!r}, which has no text"
    if "async_update_reload_and_abort" in code:
        literals |= _RELOAD_AND_ABORT_REASONS
    for key, where in sorted(keys.items()):
        named = key in literals or f"async_step_{key}" in code
        if not named:
            yield f"strings.json: {where} is not used by the code"


def check_services(repo: Repository) -> Iterator[str]:
    """services.yaml, the registered actions, their strings and icons all name the same."""
    described = yaml.safe_load((repo.integration / "services.yaml").read_text())
    registered = set(
        re.findall(r'SERVICE_\w+: Final = "(\w+)"', repo.code[repo.integration / "const.py"])
    )
    texts = repo.strings.get("services", {})
    icons = repo.json("icons.json").get("services", {})
    for name, origin in (
        (set(described), "services.yaml"),
        (set(texts), "strings.json"),
        (set(icons), "icons.json"),
    ):
        if name != registered:
            yield f"{origin}: actions {sorted(name)}, registered {sorted(registered)}"
    for service, spec in described.items():
        fields = set((spec or {}).get("fields", {}))
        if fields != set(texts.get(service, {}).get("fields", {})):
            yield f"strings.json: fields of {service} differ from services.yaml"


def check_icons(repo: Repository) -> Iterator[str]:
    """An icon for every entity translation key, and none for a key that does not exist."""
    entities = repo.strings.get("entity", {})
    icons = repo.json("icons.json").get("entity", {})
    for platform in sorted(set(entities) | set(icons)):
        named, drawn = set(entities.get(platform, {})), set(icons.get(platform, {}))
        for key in sorted(named - drawn):
            yield f"icons.json: no icon for {platform}.{key}"
        for key in sorted(drawn - named):
            yield f"icons.json: {platform}.{key} is no entity"


CHECKS = (
    check_manifest,
    check_hacs,
    check_translation_copy,
    check_translation_keys,
    check_services,
    check_icons,
)


def problems(root: Path) -> list[str]:
    """Everything wrong in the repository at `root`."""
    repo = Repository(root)
    return [problem for check in CHECKS for problem in check(repo)]


def main() -> int:
    """Check this repository."""
    found = problems(Path(__file__).resolve().parents[1])
    for problem in found:
        print(problem)
    print(f"ecosystem checks: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
