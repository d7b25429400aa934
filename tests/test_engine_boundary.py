"""The layout's one rule: nothing under engine/ imports Home Assistant or anything outside engine/.

Read from the source, so that importing the package's `__init__` (Home Assistant's side) cannot
hide what the engine itself pulls in; imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from custom_components import ssh_callhome

PACKAGE = Path(ssh_callhome.__file__).parent
PACKAGE_NAME = ssh_callhome.__name__


def module_name(package: Path, path: Path) -> str:
    """`engine.tunnel` for engine/tunnel.py and `engine` for engine/__init__.py."""
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(package: Path, path: Path) -> tuple[set[str], set[str]]:
    """The package's modules a module imports, and the top-level names of all others."""
    here = module_name(package, path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package the module is in
    own: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            targets = [node.module or ""]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level > 1 else here
            targets = [".".join([PACKAGE_NAME, *base, *filter(None, [node.module])])]
        else:
            continue
        for target in targets:
            if target == PACKAGE_NAME or target.startswith(f"{PACKAGE_NAME}."):
                own.add(target.removeprefix(PACKAGE_NAME).lstrip("."))
            else:
                others.add(target.split(".")[0])
    return own, others


def engine_problems(package: Path) -> list[str]:
    """Each import under engine/ of Home Assistant or of a module outside engine/."""
    problems: list[str] = []
    for path in sorted((package / "engine").rglob("*.py")):
        _own, others = imported(package, path)
        name = module_name(package, path)
        problems += [f"{name} imports homeassistant" for _ in {"homeassistant"} & others]
    return problems


def test_nothing_under_engine_imports_home_assistant_or_the_layer_above() -> None:
    assert len(list((PACKAGE / "engine").rglob("*.py"))) > 20
    assert engine_problems(PACKAGE) == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("import homeassistant", "homeassistant"),
        ("import homeassistant.core as core", "homeassistant"),
        ("from homeassistant.core import HomeAssistant", "homeassistant"),
        ("from homeassistant import config_entries", "homeassistant"),
    ],
)
def test_a_forbidden_import_deep_in_the_engine_is_found(
    tmp_path: Path, line: str, problem: str
) -> None:
    """A copy of the package where a module the tunnel reaches only indirectly imports it."""
    copy = tmp_path / "ssh_callhome"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    internals = copy / "engine" / "asyncssh_internals.py"
    internals.write_text(f"{internals.read_text()}\ndef late() -> None:\n    {line}\n")
    assert engine_problems(copy) == [f"engine.asyncssh_internals imports {problem}"]
