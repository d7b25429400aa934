"""Where Home Assistant's main thread spends its time: py-spy samples, counted by function.

py-spy (`record --format raw --threads --idle`) writes one line per distinct stack: its frames,
root first, separated by ';', the first naming the thread, then the number of samples. Each
function gets two shares of the main thread's samples: "own", where it was the innermost frame
(for a function of C code, the Python frame that called it, e.g. a socket send shows as
`_SelectorSocketTransport.write`), and "with callees", where it was anywhere on the stack.
"""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

MAIN_THREAD = "MainThread"
TOP = 15
_SAMPLES_PER_SECOND = 200
_STOP_SECONDS = 30
_ATTACH_SECONDS = 1.0
_EVERYWHERE = 99.0  # % of samples
# "thread (12345): MainThread" is the root frame with --threads.
_THREAD_FRAME = re.compile(r"thread \(\w+\): (?P<name>.*)")
# "send (asyncio/selector_events.py:1080)": the line number would split one function apart.
_LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass(frozen=True)
class Share:
    """A function and the percentages of the thread's samples it takes."""

    function: str
    own: float
    with_callees: float


def _function(frame: str) -> str:
    return _LINE_NUMBER.sub(")", frame)


def _thread_stacks(raw: Iterable[str], thread: str) -> Iterable[tuple[list[str], int]]:
    """(frames below the thread's root, samples) for each of `thread`'s lines."""
    for line in raw:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        root, _, rest = stack.partition(";")
        match = _THREAD_FRAME.fullmatch(root)
        if match is None or match["name"] != thread or not rest:
            continue
        yield [_function(frame) for frame in rest.split(";")], int(count)


def _shares(raw: Iterable[str], thread: str) -> list[Share]:
    """Every function on `thread`'s stacks with its shares of that thread's samples."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for frames, count in _thread_stacks(raw, thread):
        total += count
        own[frames[-1]] += count
        for function in set(frames):  # a recursive function counts once per sample
            anywhere[function] += count
    return [
        Share(function, 100 * own[function] / total, 100 * samples / total)
        for function, samples in anywhere.items()
    ]


def top_functions(raw: Iterable[str], thread: str = MAIN_THREAD, top: int = TOP) -> list[Share]:
    """The `top` functions by own share of `thread`'s samples, highest first."""
    shares = sorted(_shares(raw, thread), key=lambda share: share.own, reverse=True)
    return [share for share in shares if share.own][:top]


def top_inclusive(raw: Iterable[str], thread: str = MAIN_THREAD, top: int = TOP) -> list[Share]:
    """The `top` functions by share with callees of `thread`'s samples, highest first.

    Left out: the frames nearly every sample passes through (the thread's start, the event
    loop's run_forever): they say nothing about where the time goes.
    """
    shares = [share for share in _shares(raw, thread) if share.with_callees < _EVERYWHERE]
    return sorted(shares, key=lambda share: share.with_callees, reverse=True)[:top]


def print_shares(title: str, shares: list[Share]) -> None:
    """One line a function: own %, with-callees %, name."""
    print(f"\n{title}\n{'own %':>7} {'+callees %':>10}  function")
    for share in shares:
        print(f"{share.own:7.1f} {share.with_callees:10.1f}  {share.function}")


class PySpy:
    """py-spy sampling a process while the block runs; `lines` holds its raw output after."""

    def __init__(self, pid: int, py_spy: Path) -> None:
        self._pid = pid
        self._py_spy = py_spy
        self._output = Path(tempfile.mkstemp(prefix="bench-profile-", suffix=".txt")[1])
        self._process: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []

    def __enter__(self) -> PySpy:
        command = [str(self._py_spy), "record", "--pid", str(self._pid), "--format", "raw"]
        command += ["--threads", "--idle", "--rate", str(_SAMPLES_PER_SECOND)]
        command += ["--output", str(self._output)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(_ATTACH_SECONDS)  # py-spy reads the process's memory layout first
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        self._process.wait(timeout=_STOP_SECONDS)
        if exc_type is None and self._process.returncode != 0:
            raise RuntimeError(f"py-spy exited with {self._process.returncode}")
        self.lines = self._output.read_text().splitlines() if self._output.exists() else []
        self._output.unlink(missing_ok=True)
