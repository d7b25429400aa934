"""How much memory an object holds: itself and what it reaches, callables left out."""

from __future__ import annotations

import gc
import sys


def deep_size(root: object) -> int:
    """Bytes of `root` and every object it reaches, each once; not through callables.

    Callables (a clock, a listener) lead to what their owners hold, which is not the root's;
    classes, callable too, are shared by everything.
    """
    seen: set[int] = set()
    pending: list[object] = [root]
    total = 0
    while pending:
        item = pending.pop()
        if id(item) in seen or (callable(item) and item is not root):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        pending.extend(gc.get_referents(item))
    return total
