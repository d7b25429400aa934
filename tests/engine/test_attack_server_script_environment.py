"""Attack on the server script's privilege drop through root's environment.

The script hands the account's step its values in the environment, and setpriv and runuser pass
on the rest of root's environment with them: whatever root's shell exports (a cloud token, a
database password, a backup key, a value exported for some other script) is then in a process
of the account, whose other processes read it in /proc/<pid>/environ (same uid; no Yama here).
Here a stand-in command on the PATH, run by the account's step, records what that process sees.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from harness.server_script_run import RUNNERS, account_code_run

_COMMENT = "ssh_callhome@environment"
# What root's shell exports for something else; never the account's business.
_ROOT_SECRET = ("AWS_SECRET_ACCESS_KEY", "root-only-3f9c2a")
# Records the environment of the account's step, then lets the real mktemp go on.
_RECORD = """#!/bin/sh
{{ id -u; env; }} > {seen}
exec {mktemp} "$@"
"""


@pytest.mark.parametrize("runner", RUNNERS)
def test_roots_environment_does_not_reach_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, runner: str
) -> None:
    records = accounts_folder / "records"
    records.mkdir(mode=0o1777)
    os.chmod(records, 0o1777)  # mkdir's mode goes through the umask
    seen = records / "seen"
    code = _RECORD.format(seen=seen, mktemp="/usr/bin/mktemp")
    variable, value = _ROOT_SECRET
    with account_code_run(
        client_key, _COMMENT, accounts_folder, runner, code, tmp_path, **{variable: value}
    ) as (name, result):
        assert result.returncode == 0
        uid, *environment = seen.read_text().splitlines()
        assert int(uid) == os.stat(Path(f"~{name}").expanduser()).st_uid, "not the account's"
        print(environment)
        assert f"{variable}={value}" not in environment
