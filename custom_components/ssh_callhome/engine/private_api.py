"""The checks made before reaching into a library's private API, and the one warning when one fails.

Shared by asyncssh_internals.py and aiohttp_internals.py: each reach checks what it relies on
(an attribute and its type, a method and its parameters) and, where the library differs, leaves
its optimisation off and says so once per process.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable

import asyncssh

_LOGGER = logging.getLogger(__name__)

# The optimisations already reported off in this process.
_REPORTED_OFF: set[str] = set()


def report_off(
    optimisation: str, why: str, library: str = f"asyncssh {asyncssh.__version__}"
) -> None:
    """Say once per process that `optimisation` is off, and why; no traceback.

    `library` is the name and version of the one that is not as expected.
    """
    if optimisation in _REPORTED_OFF:
        return
    _REPORTED_OFF.add(optimisation)
    _LOGGER.warning("%s turned off: %s is not as expected (%s)", optimisation, library, why)


@functools.cache
def _bare_signature(function: Callable[..., object]) -> str:
    """The signature as `(self, a, *args, b=None)`: parameters, kinds and defaults alone."""
    signature = inspect.signature(function)
    parameters = [
        parameter.replace(annotation=inspect.Parameter.empty)
        for parameter in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def method_problem(owner: type, name: str, expected: str, coroutine: bool = False) -> str | None:
    """Why class `owner` has no method `name` with signature `expected`; None if it has."""
    method = getattr(owner, name, None)
    if not callable(method):
        return f"no {name}()"
    if (found := _bare_signature(method)) != expected:
        return f"{name}{found} is not {name}{expected}"
    if coroutine and not inspect.iscoroutinefunction(method):
        return f"{name}() is no coroutine"
    return None


def attribute_problem(owner: object, name: str, expected: type) -> str | None:
    """Why `owner` has no attribute `name` of type `expected`; None if it has."""
    value = getattr(owner, name, None)
    if not isinstance(value, expected):
        return f"{name} is {type(value).__name__}, not {expected.__name__}"
    return None
