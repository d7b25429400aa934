"""Attack on the server script's privilege drop through the files root's shell holds open.

The account's step gets /dev/null for stdin and a pipe for its output, but every other file
descriptor of root's shell that is not close-on-exec reaches it too: neither `env -i`, `setsid`,
setpriv, runuser nor su closes them. A root shell holds such descriptors when it opened them
(`exec 3<file`) or was handed them by what started it (su, a terminal multiplexer, an IDE's
terminal, a backup or deployment tool). Any process of the account may ptrace the step (same
uid, no Yama here) and read or write through them with root's access. Here root's shell holds
descriptor 3 on a root-only file, and a stand-in command on the PATH, run by the step, reads
through every descriptor it got beyond 0, 1 and 2, as the injected code would.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from harness.server_script_run import INSTALLED, RUNNERS, account_code_run, left_in_home

_COMMENT = "ssh_callhome@descriptors"
_SECRET = "root-only-file-4b8a"
# Root's shell with descriptor 3 open on the file $0, then the pasted script.
_ROOT_SHELL = 'exec 3<"$0"; exec sh'
# What the account's code does: read through every descriptor beyond the standard three that
# leads to a file, then let the real mktemp go on.
_READ_DESCRIPTORS = """#!/bin/sh
for fd in /proc/$$/fd/*; do
    number=${fd##*/}
    case $number in 0 | 1 | 2) continue ;; esac
    [ -f "$fd" ] || continue  # files only: a pipe would wait for its writer
    # Through the descriptor itself: opening /proc's link again would check the file's mode.
    echo "$number: $(head -c 100 <&"$number" 2>&1)"
done > "$HOME/seen" 2>&1
exec /usr/bin/mktemp "$@"
"""


@pytest.mark.parametrize("runner", RUNNERS)
def test_roots_open_files_do_not_reach_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, runner: str
) -> None:
    secret = tmp_path / "root-only"
    secret.write_text(_SECRET)
    secret.chmod(0o600)
    root_shell = ["sh", "-c", _ROOT_SHELL, str(secret)]
    with account_code_run(
        client_key, _COMMENT, accounts_folder, runner, _READ_DESCRIPTORS, tmp_path, root_shell
    ) as (name, result):
        assert INSTALLED in result.stdout, "it did not get there"
        assert _SECRET not in left_in_home(name, "seen")
