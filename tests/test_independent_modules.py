"""Each test module stands alone: what tests share lives in harness/ (helpers) or conftest.py
(fixtures, which pytest hands out), so no module imports a test module or conftest.py."""

from __future__ import annotations

import ast
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
# Where importing a test module would tie code to the tests: the tests, their support package
# and the scripts that use it.
CHECKED = ("tests/**/*.py", "harness/**/*.py", "scripts/**/*.py")


# The repository's own top-level packages; other packages' test helpers (aiohttp.test_utils)
# are libraries like any other.
OWN_PACKAGES = {"tests", "harness", "scripts"}


def is_test_module(name: str) -> bool:
    """`name`, a dotted module name, is one of this repository's test modules or conftest."""
    top, _, rest = name.partition(".")
    if top and rest and top not in OWN_PACKAGES:
        return False  # another package's module
    last = name.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def imported_test_modules(tree: ast.Module) -> list[str]:
    """The modules `tree` imports that are test modules or conftest."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            # `from . import test_x` names the module among the imported names.
            prefix = base if base.endswith(".") else f"{base}."
            names = [base, *(prefix + alias.name for alias in node.names)]
        else:
            continue
        found += [name for name in names if is_test_module(name)]
    return found


def test_no_module_imports_a_test_module_or_conftest() -> None:
    files = sorted({path for pattern in CHECKED for path in REPOSITORY.glob(pattern)})
    assert len(files) > 40
    offenders = {
        str(path.relative_to(REPOSITORY)): imported
        for path in files
        if (imported := imported_test_modules(ast.parse(path.read_text(), str(path))))
    }
    assert offenders == {}


def test_the_check_sees_every_way_of_importing_one() -> None:
    source = (
        "from .conftest import PAGE\n"
        "from .test_init import load\n"
        "from . import test_bridge\n"
        "from tests.test_options import VALID\n"
        "import tests.conftest\n"
        "from harness.network import LOOPBACK\n"
        "from .tests_of_nothing import x\n"
        "from aiohttp.test_utils import make_mocked_request\n"
        "import test_alone\n"
    )
    assert imported_test_modules(ast.parse(source)) == [
        ".conftest",
        ".test_init",
        ".test_bridge",
        "tests.test_options",
        "tests.conftest",
        "test_alone",
    ]
