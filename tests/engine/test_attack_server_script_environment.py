"""Attack on the server script's privilege drop through root's environment.

The script hands the account's step its values in the environment, and setpriv and runuser pass
on the rest of root's environment with them: whatever root's shell exports (a cloud token, a
database password, a backup key, a value exported for some other script) is then in a process
of the account, whose other processes read it in /proc/<pid>/environ (same uid; no Yama here).
Here a stand-in command on the PATH, run by the account's step, records what that process sees.
"""

from __future__ import annotations

import os
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

_COMMENT = "ssh_callhome@environment"
# In the order the script tries them: hiding the ones before a runner makes the script use it.
_RUNNERS = ("setpriv", "runuser", "su")
# What root's shell exports for something else; never the account's business.
_ROOT_SECRET = ("AWS_SECRET_ACCESS_KEY", "root-only-3f9c2a")
# Records the environment of the account's step, then lets the real mktemp go on.
_RECORD = """#!/bin/sh
{{ id -u; env; }} > {seen}
exec {mktemp} "$@"
"""


@pytest.fixture
def accounts_folder() -> Iterator[Path]:
    with folder_for_accounts() as folder:
        yield folder


@pytest.mark.parametrize("runner", _RUNNERS)
def test_roots_environment_does_not_reach_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, runner: str
) -> None:
    records = accounts_folder / "records"
    records.mkdir(mode=0o1777)
    os.chmod(records, 0o1777)  # mkdir's mode goes through the umask
    seen = records / "seen"
    probe = accounts_folder / "probe"
    probe.mkdir(mode=0o755)
    (probe / "mktemp").write_text(_RECORD.format(seen=seen, mktemp="/usr/bin/mktemp"))
    (probe / "mktemp").chmod(0o755)
    hidden = set(_RUNNERS[: _RUNNERS.index(runner)])
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
        settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
        script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)
        variable, value = _ROOT_SECRET

        result = run_script(
            script,
            PATH=f"{probe}:{path_without(hidden, accounts_folder / 'bin')}",
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(tmp_path),
            **{variable: value},
        )

        print(result.returncode, result.stdout, result.stderr)
        assert result.returncode == 0
        uid, *environment = seen.read_text().splitlines()
        assert int(uid) == os.stat(Path(f"~{name}").expanduser()).st_uid, "not the account's"
        print(environment)
        assert f"{variable}={value}" not in environment
