"""Finding and signalling a process together with everything below it."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
from pathlib import Path


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from its third field (state) on; raises OSError once the process is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces and parentheses: fields follow the last ')'.
    return stat.rsplit(")", 1)[1].split()


def _parent_of(pid: int) -> int | None:
    try:
        return int(stat_fields(pid)[1])
    except OSError:
        return None


def resident_bytes() -> int:
    """This process's resident memory in bytes (Home Assistant runs in it too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")  # pragma: no cover - Linux always has it


def settled_resident_bytes() -> int:
    """Resident memory once freed memory is handed back: what is still referenced.

    Python's collector runs first; then glibc, which keeps freed heap pages for reuse, is asked
    to return them (malloc_trim), as it would by itself only now and then.
    """
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return resident_bytes()


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants; sshd's sessions call setsid() but stay its children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := _parent_of(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def signal_tree(root: int, signum: signal.Signals) -> list[int]:
    """Send `signum` to every process of the tree; returns the pids it was sent to."""
    return signal_all(process_tree(root), signum)


def signal_all(pids: list[int], signum: signal.Signals) -> list[int]:
    """Send `signum` to each of `pids` that still exists; returns `pids`."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    return pids
