"""The layout's one rule: nothing under engine/ imports Home Assistant or anything outside engine/.

Read from the source, so that importing the package's `__init__` (Home Assistant's side) cannot
hide what the engine itself pulls in; imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import graphlib
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
            # `from . import x` imports module x when there is one.
            where = package.joinpath(*base, *filter(None, [node.module]))
            submodules = [a.name for a in node.names if (where / f"{a.name}.py").exists()]
            targets = [f"{targets[0]}.{name}" for name in submodules] or targets
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
        own, others = imported(package, path)
        name = module_name(package, path)
        problems += [f"{name} imports homeassistant" for _ in {"homeassistant"} & others]
        problems += [
            f"{name} imports {target or 'the package root'}"
            for target in sorted(own)
            if target != "engine" and not target.startswith("engine.")
        ]
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
        ("from ..const import DOMAIN", "const"),
        ("from .. import const", "const"),
        ("from .. import DOMAIN", "the package root"),
        ("from custom_components.ssh_callhome.builder import Delivery", "builder"),
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


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of the integration, with the integration's modules it imports."""
    return {
        module_name(package, path): imported(package, path)[0]
        for path in sorted(package.rglob("*.py"))
    }


def import_cycle(package: Path) -> list[str]:
    """One cycle of imports among the integration's modules, or none."""
    try:
        graphlib.TopologicalSorter(import_graph(package)).prepare()
    except graphlib.CycleError as cycle:
        found: list[str] = cycle.args[1]
        return found
    return []


def test_the_integration_has_no_import_cycle() -> None:
    assert len(import_graph(PACKAGE)) > 40
    assert import_cycle(PACKAGE) == []


def test_a_cycle_through_a_late_import_is_found(tmp_path: Path) -> None:
    """A late import (inside a function) closes a cycle as much as one at the top."""
    copy = tmp_path / "ssh_callhome"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    backoff = copy / "engine" / "backoff.py"
    backoff.write_text(f"{backoff.read_text()}\ndef late() -> None:\n    from . import tunnel\n")
    cycle = import_cycle(copy)
    assert {"engine.backoff", "engine.tunnel"} <= set(cycle)


def test_the_layer_above_uses_the_engine_through_its_api() -> None:
    """Home Assistant's modules import `engine` itself, whose `__all__` is the engine's API."""
    reaches = {
        name: sorted(target for target in own if target.startswith("engine."))
        for name, own in import_graph(PACKAGE).items()
        if not name.startswith("engine")
    }
    assert {name: targets for name, targets in reaches.items() if targets} == {}


def test_the_maps_name_every_module() -> None:
    """engine/__init__.py's docstring maps the engine; docs/development.md the layer above."""
    engine_map = ast.get_docstring(ast.parse((PACKAGE / "engine" / "__init__.py").read_text()))
    assert engine_map is not None
    engine = {path.name for path in (PACKAGE / "engine").glob("*.py")} - {"__init__.py"}
    assert sorted(name for name in engine if name not in engine_map.split()) == []
    development = (PACKAGE.parents[1] / "docs" / "development.md").read_text()
    layer = {path.name for path in PACKAGE.glob("*.py")}
    assert sorted(name for name in layer if f"`{name}`" not in development) == []
