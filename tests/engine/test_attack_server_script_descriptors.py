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

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.network import LOOPBACK
from harness.server_script import (
    create_account,
    folder_for_accounts,
    path_without,
    throwaway_account,
)

_COMMENT = "ssh_callhome@descriptors"
# In the order the script tries them: hiding the ones before a runner makes the script use it.
_RUNNERS = ("setpriv", "runuser", "su")
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
_SCRIPT_TIMEOUT = 60.0


def _script(key: asyncssh.SSHKey, account: str) -> str:
    line = authorized_keys_line(key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, [8123])
    return setup_script(ServerSoftware.OPENSSH, account, key, line, settings)


@pytest.fixture
def accounts_folder() -> Iterator[Path]:
    with folder_for_accounts() as folder:
        yield folder


@pytest.mark.parametrize("runner", _RUNNERS)
def test_roots_open_files_do_not_reach_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, runner: str
) -> None:
    secret = tmp_path / "root-only"
    secret.write_text(_SECRET)
    secret.chmod(0o600)
    probe = accounts_folder / "probe"
    probe.mkdir(mode=0o755)
    (probe / "mktemp").write_text(_READ_DESCRIPTORS)
    (probe / "mktemp").chmod(0o755)
    hidden = set(_RUNNERS[: _RUNNERS.index(runner)])
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        environment = {
            "PATH": f"{probe}:{path_without(hidden, accounts_folder / 'bin')}",
            "SSHD_CONFIG": str(config),
            "SSHD_CONFIG_DIR": str(tmp_path),
        }

        result = subprocess.run(
            ["sh", "-c", _ROOT_SHELL, str(secret)],
            input=_script(client_key, name),
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            timeout=_SCRIPT_TIMEOUT,
            check=False,
        )

        print(result.returncode, result.stdout, result.stderr)
        assert "key line of this tunnel installed" in result.stdout, "it did not get there"
        seen = (Path(pwd.getpwnam(name).pw_dir) / "seen").read_text()
        print(seen)
        assert _SECRET not in seen
