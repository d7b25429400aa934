"""Attack on the server script's privilege drop through root's terminal.

The script writes in the home as the account (setpriv, runuser or su), but the process it starts
stays in root's session: root's terminal is still its controlling terminal. Any process of the
account may ptrace its other processes (this kernel has no Yama; Debian's default is the same),
so the account can run code in that one, and such code can open /dev/tty and push characters
into root's shell with TIOCSTI: the shell runs them as root once the script ends (the su/sudo
"TTY pushback" attack). Here a stand-in command on the PATH does what the injected code would
do, from inside the process the script runs as the account.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from harness.server_script_run import (
    INSTALLED,
    RUNNERS,
    no_login_account,
    openssh_script,
    print_only_config,
    step_path,
)

_COMMENT = "ssh_callhome@terminal"
# util-linux's su (the third runner) starts a session of its own for -c: not attacked here.
_RUNNERS = RUNNERS[:2]
# A Python the account can run (the test's own virtualenv may sit in a folder it cannot read).
_SYSTEM_PYTHON = Path("/usr/bin/python3")
_LEGACY_TIOCSTI = Path("/proc/sys/dev/tty/legacy_tiocsti")
# The root shell the user pastes into (dash on Debian).
_ROOT_SHELL = "/bin/sh"
# The script runs for a second or two; the shell then reads what was pushed at once.
_SCRIPT_SECONDS = 20.0
_READ_CHUNK = 4096
_PROMPT = "ssh_callhome-test-root-prompt# "
# The last line the script prints here (its Match block, since the config has no Include).
_LAST_LINE = b"ClientAliveCountMax"
# What the account's code does: push a command into the terminal's input, then let the real
# mktemp (the script's next step, run only when the key is not yet in place) go on.
_PUSH_COMMAND = """#!/bin/sh
{python} - <<'PY' || true
import fcntl, os, termios
try:
    terminal = os.open("/dev/tty", os.O_RDWR)
except OSError:
    terminal = 2
for byte in b"touch {marker}\\n":
    fcntl.ioctl(terminal, termios.TIOCSTI, bytes([byte]))
PY
exec {mktemp} "$@"
"""


def _read_until(terminal: int, pid: int, done: Callable[[bytes], bool]) -> bytes:
    """What the root shell prints until `done` says so of it, or the shell exits (bounded)."""
    output = b""
    deadline = time.monotonic() + _SCRIPT_SECONDS
    while not done(output) and time.monotonic() < deadline:
        readable, _, _ = select.select([terminal], [], [], 0.1)
        if readable:
            try:
                output += os.read(terminal, _READ_CHUNK)
            except OSError:  # the shell has gone: its side of the terminal is closed
                break
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
    return output


def _prompt_after_the_script(output: bytes) -> bool:
    return _PROMPT.encode() in output.partition(_LAST_LINE)[2]


def _paste_into_root_terminal(script_file: Path, environment: dict[str, str]) -> bytes:
    """An interactive root shell on a terminal of its own, where the user pastes the script
    (here: sources a file holding it), then types `exit` at the prompt that follows it."""
    environment = {**os.environ, **environment, "PS1": _PROMPT}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the root shell on the terminal's other side
        os.execve(_ROOT_SHELL, [_ROOT_SHELL, "-i"], environment)
    try:
        os.write(terminal, f". {script_file}\n".encode())
        output = _read_until(terminal, pid, _prompt_after_the_script)
        # Whatever was pushed into the terminal meanwhile is read before this.
        os.write(terminal, b"exit\n")
        return output + _read_until(terminal, pid, lambda _: False)  # until it has exited
    finally:
        os.close(terminal)
        with contextlib.suppress(ChildProcessError):
            if not os.waitpid(pid, os.WNOHANG)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


@pytest.mark.parametrize("runner", _RUNNERS)
# The forked child only execs the shell: no lock another thread holds is taken in it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_account_cannot_type_into_roots_terminal(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, runner: str
) -> None:
    if not _SYSTEM_PYTHON.exists():
        pytest.skip(f"{_SYSTEM_PYTHON} is needed to push characters into a terminal")
    if _LEGACY_TIOCSTI.exists() and _LEGACY_TIOCSTI.read_text().strip() == "0":
        pytest.skip("this kernel refuses TIOCSTI to every unprivileged process")
    marker = tmp_path / "typed-by-the-account"
    push = _PUSH_COMMAND.format(python=_SYSTEM_PYTHON, marker=marker, mktemp="/usr/bin/mktemp")
    path = step_path(accounts_folder, runner, push)
    with no_login_account() as name:
        script_file = tmp_path / "script.sh"
        script_file.write_text(openssh_script(client_key, name, _COMMENT))
        output = _paste_into_root_terminal(
            script_file, {"PATH": path, **print_only_config(tmp_path)}
        )
        print(output.decode(errors="replace"))
        assert INSTALLED.encode() in output, "the script did not get there"
    assert not marker.exists(), "a command the account typed ran in root's shell, as root"
