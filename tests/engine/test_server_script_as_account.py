"""The server script writes in the account's home as the account, with whichever of setpriv,
runuser (util-linux: Debian, Fedora) or su (BusyBox: Alpine) the server has; without any of them
it refuses, with nothing changed, as it does without setsid (the step runs in a session of its
own)."""

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
    run_script,
    throwaway_account,
)

_COMMENT = "ssh_callhome@as_account"
# In the order the script tries them: hiding the ones before a runner makes the script use it.
_RUNNERS = ("setpriv", "runuser", "su")


@pytest.fixture
def bin_folder() -> Iterator[Path]:
    """Where the PATH's links go: the account runs commands from it."""
    with folder_for_accounts() as folder:
        yield folder / "bin"


def _run(key: asyncssh.SSHKey, account: str, tmp_path: Path, path: str) -> tuple[int, str]:
    line = authorized_keys_line(key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, [8123])
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    result = run_script(
        setup_script(ServerSoftware.OPENSSH, account, key, line, settings),
        SSHD_CONFIG=str(config),
        SSHD_CONFIG_DIR=str(tmp_path),
        PATH=path,
    )
    print(result.returncode, result.stdout, result.stderr)
    return result.returncode, result.stderr


@pytest.mark.parametrize("runner", _RUNNERS)
def test_each_runner_installs_the_key_as_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, bin_folder: Path, runner: str
) -> None:
    hidden = set(_RUNNERS[: _RUNNERS.index(runner)])
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        entry = pwd.getpwnam(name)
        keys = Path(entry.pw_dir) / ".ssh" / "authorized_keys"

        returncode, _ = _run(client_key, name, tmp_path, path_without(hidden, bin_folder))

        assert returncode == 0
        for path, mode in ((keys.parent, 0o700), (keys, 0o600)):
            status = path.lstat()
            assert (status.st_uid, status.st_gid, status.st_mode & 0o777) == (
                entry.pw_uid,
                entry.pw_gid,
                mode,
            )
        assert _COMMENT in keys.read_text()


def test_without_a_runner_the_script_refuses_and_changes_nothing(
    client_key: asyncssh.SSHKey, tmp_path: Path, bin_folder: Path
) -> None:
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        keys_dir = Path(pwd.getpwnam(name).pw_dir) / ".ssh"

        returncode, stderr = _run(
            client_key, name, tmp_path, path_without(set(_RUNNERS), bin_folder)
        )

        assert returncode != 0
        assert "no setpriv, runuser nor su" in stderr
        assert not keys_dir.exists()


def test_without_setsid_the_script_refuses_before_it_creates_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, bin_folder: Path
) -> None:
    # The account's step runs in a session of its own, away from root's terminal: without a
    # way to start one the script stops before its first change.
    with throwaway_account() as name:
        returncode, stderr = _run(client_key, name, tmp_path, path_without({"setsid"}, bin_folder))

        assert returncode != 0
        assert "no setsid here" in stderr
        assert "nothing changed" in stderr
        exists = subprocess.run(["id", name], capture_output=True, check=False).returncode == 0
        assert not exists, "the account was created"


def test_a_step_that_stops_half_way_does_not_say_nothing_changed(
    client_key: asyncssh.SSHKey, tmp_path: Path, bin_folder: Path
) -> None:
    bin_folder.mkdir(mode=0o755)
    failing = bin_folder / "mktemp"  # fails after the account's step has made its .ssh
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")

        returncode, stderr = _run(client_key, name, tmp_path, f"{bin_folder}:{os.environ['PATH']}")

        assert returncode != 0
        assert "/.ssh: created" in stderr
        assert "nothing changed" not in stderr
        assert "the changes above stay" in stderr
