"""The engine (tunnel.py and everything it imports, however indirectly) imports no Home Assistant.

Read from the source, so that importing the package's `__init__` (Home Assistant's side) cannot
hide what the engine itself pulls in.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from custom_components import ssh_callhome

PACKAGE = Path(ssh_callhome.__file__).parent
PACKAGE_NAME = ssh_callhome.__name__


def _imported(module_path: Path) -> tuple[set[str], set[str]]:
    """The package's modules a module imports, and the top-level names of all others."""
    own: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(ast.parse(module_path.read_text(), filename=str(module_path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
            if node.module == PACKAGE_NAME:  # `from custom_components.ssh_callhome import x`
                own.update(alias.name for alias in node.names)
                continue
        elif isinstance(node, ast.ImportFrom):
            # Relative: `from .x import y` names module x; `from . import x` module x itself.
            own.update([node.module] if node.module else [a.name for a in node.names])
            continue
        else:
            continue
        for name in names:
            if name.startswith(f"{PACKAGE_NAME}."):
                own.add(name.removeprefix(f"{PACKAGE_NAME}."))
            else:
                others.add(name.split(".")[0])
    return {name.split(".")[0] for name in own}, others


def engine_modules(package: Path) -> dict[str, set[str]]:
    """Each module reachable from tunnel.py, with the outside packages it imports."""
    found: dict[str, set[str]] = {}
    pending = ["tunnel"]
    while pending:
        module = pending.pop()
        if module not in found:
            own, found[module] = _imported(package / f"{module}.py")
            pending.extend(own)
    return found


def home_assistant_importers(package: Path) -> list[str]:
    """The engine modules that import Home Assistant."""
    modules = engine_modules(package)
    return sorted(name for name, others in modules.items() if "homeassistant" in others)


def test_no_engine_module_imports_home_assistant() -> None:
    modules = engine_modules(PACKAGE)
    # The walk follows imports: tunnel.py reaches these only through other modules.
    assert {"client_options", "asyncssh_internals", "ciphers", "listening"} <= set(modules)
    assert "builder" not in modules
    assert home_assistant_importers(PACKAGE) == []


@pytest.mark.parametrize(
    "line",
    [
        "import homeassistant",
        "import homeassistant.core as core",
        "from homeassistant.core import HomeAssistant",
        "from homeassistant import config_entries",
    ],
)
def test_an_import_deep_in_the_engine_is_found(tmp_path: Path, line: str) -> None:
    """A copy of the package where a module tunnel.py reaches only indirectly imports it."""
    copy = tmp_path / "ssh_callhome"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    internals = copy / "asyncssh_internals.py"
    internals.write_text(f"{internals.read_text()}\n{line}\n")
    assert home_assistant_importers(copy) == ["asyncssh_internals"]


def _readme_layout() -> str:
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    layout = readme[readme.index("Layout of `custom_components/ssh_callhome`") :]
    return layout.split("\n## ")[0]


def _tables(layout: str) -> list[set[str]]:
    """The modules named in each table of the layout section, in order."""
    tables: list[set[str]] = []
    for line in layout.splitlines():
        if line.startswith("| Module |"):
            tables.append(set())
        elif line.startswith("| `"):
            first_cell = line.split("|")[1]
            tables[-1].update(name.strip(" `") for name in first_cell.split(","))
    return tables


def test_the_readme_layout_names_each_module_on_its_side() -> None:
    layout = _readme_layout()
    engine, home_assistant = _tables(layout)
    modules = {path.name: _imported(path)[1] for path in PACKAGE.glob("*.py")}
    assert engine == {f"{name}.py" for name in engine_modules(PACKAGE)}
    assert home_assistant == {name for name, others in modules.items() if "homeassistant" in others}
    # The rest import no Home Assistant but serve only its side: the text names them.
    assert [name for name in modules if f"`{name}`" not in layout] == []
