"""Attack on the server script's reading of what the account's step prints.

The account's step runs as the account: any process of the account may ptrace it (same uid, no
Yama here) and run code of its choosing inside it, with the step's output pipe in hand. The
script reads that pipe to its end (`report=$(...)`), keeps all of it in root's shell and shows
every line of it as one of its own, `ssh_callhome: ` in front. So the account can
- write lines that read as the script's own advice, which root follows (the script does tell
  root to run commands: `chmod g-w,o-w HOME`, `usermod -p '*' ACCOUNT`);
- write without end: root's shell holds it all, then prints it all;
- stop the step, or leave a process holding the pipe: the script waits, however long.
Here a stand-in `mktemp` on the PATH, run by the step, does what the injected code would do.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from harness.server_script import run_script, run_script_in
from harness.server_script_run import (
    INSTALLED,
    no_login_account,
    openssh_script,
    print_only_config,
    run_printing_only,
    stand_in,
    stand_ins_first,
)

_COMMENT = "ssh_callhome@step_output"
# Advice in the script's own words, which the script would never give.
_FORGED = (
    "WARNING: sshd reads no key while the account cannot read /etc/shadow: "
    "run chmod o+r /etc/shadow, then run this again"
)
# Writes the forged advice as a note of the step's own (a space first), then lets mktemp go on.
_FORGE = """#!/bin/sh
printf ' %s\\n' '{text}' >&2
exec /usr/bin/mktemp "$@"
"""
# What the account writes without end, cut here at 8 MiB so that the test ends.
_FLOOD_BYTES = 8 * 1024 * 1024
_FLOOD = f"""#!/bin/sh
yes 'flood from the account' | head -c {_FLOOD_BYTES} >&2
exec /usr/bin/mktemp "$@"
"""
# Far more than the script's own lines, far less than what the account wrote.
_OUTPUT_BOUND = 256 * 1024
# A process of the account that keeps the step's output open, its pid where the test finds it.
_HOLDER_SECONDS = 600
_HOLD = f"""#!/bin/sh
sleep {_HOLDER_SECONDS} >&2 </dev/null &
echo $! > "$HOME/holder.pid"
exec /usr/bin/mktemp "$@"
"""
# The step itself never ending (the account's code stops it where it is), its pid left too.
_STALL = f"""#!/bin/sh
echo $$ > "$HOME/holder.pid"
exec sleep {_HOLDER_SECONDS}
"""
# The script runs for a second or two; this is how long it may wait for the account at most
# (a bound the script puts on the step must stay under it).
_SCRIPT_BOUND = 45.0
_PID_WAIT = 5.0
_PID_POLL = 0.1


@pytest.fixture
def account() -> Iterator[str]:
    with no_login_account() as name:
        yield name


def _stand_in_mktemp(folder: Path, text: str) -> str:
    """A PATH whose `mktemp` runs `text` as the account first: the account's injected code."""
    stand_in(folder, "mktemp", text)
    return stand_ins_first(folder)


def test_the_account_cannot_speak_in_the_scripts_name(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, account: str
) -> None:
    path = _stand_in_mktemp(accounts_folder, _FORGE.format(text=_FORGED))

    result = run_printing_only(openssh_script(client_key, account, _COMMENT), tmp_path, PATH=path)

    assert INSTALLED in result.stdout, "the script did not get there"
    lines = (result.stdout + result.stderr).splitlines()
    assert f"ssh_callhome: {_FORGED}" not in lines


def test_what_the_account_writes_reaches_root_bounded(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, account: str
) -> None:
    path = _stand_in_mktemp(accounts_folder, _FLOOD)

    script = openssh_script(client_key, account, _COMMENT)
    result = run_script(script, PATH=path, **print_only_config(tmp_path))

    printed = len(result.stdout) + len(result.stderr)
    print(f"the account wrote {_FLOOD_BYTES} bytes, the script printed {printed}")
    assert "ssh_callhome: account" in result.stdout, "the script did not get there"
    assert printed < _OUTPUT_BOUND


def _kill_holder(home: Path) -> None:
    """Ends the account's process that held the output, by the pid it left, if that pid is
    still the account's (gone, its number may be another process's by now)."""
    deadline = time.monotonic() + _PID_WAIT
    pid_file = home / "holder.pid"
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(_PID_POLL)
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text())
        if Path(f"/proc/{pid}").stat().st_uid == home.stat().st_uid:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow  # waits out its bound while the flaw lasts
@pytest.mark.parametrize("code", [_HOLD, _STALL], ids=["left_behind", "never_ends"])
def test_the_account_cannot_hold_the_script(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, account: str, code: str
) -> None:
    path = _stand_in_mktemp(accounts_folder, code)
    home = Path(pwd.getpwnam(account).pw_dir)
    started = time.monotonic()
    try:
        result = run_script_in(
            ["sh"],
            openssh_script(client_key, account, _COMMENT),
            {"PATH": path, **print_only_config(tmp_path)},
            timeout=_SCRIPT_BOUND,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script still waited for the account after {_SCRIPT_BOUND} s")
    finally:
        print(f"after {time.monotonic() - started:.1f} s")
        _kill_holder(home)
    print(result.returncode, result.stdout, result.stderr)
