"""Attack on the server script's promise to OpenSSH: "installed" must mean the key logs in.

Two usual ways leave an existing account shut to keys, whatever its authorized_keys say:
- locked: without useradd (Alpine: BusyBox's adduser only) the script asks the user to create
  the account first, and `adduser -D`, the usual way on Alpine, leaves the password field `!`.
  Alpine's sshd is built without PAM, and sshd without PAM refuses every login to a locked
  account, keys included ("account is locked");
- expired: an expiry date in the past (`usermod --expiredate 1`, `chage -E 0`) shuts it with
  PAM (pam_unix's account check) and without it (sshd's own: "User ... account has expired").
The script installed the key, said so and exited 0; the tunnel never logged in. The real sshd
here runs with UsePAM no, as Alpine's does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from harness.server_script import DropInSSHServer, throwaway_account
from harness.server_script_run import installed_means_logs_in, running_drop_in_sshd

_COMMENT = "ssh_callhome@closed"
# How each way of shutting the account is made with useradd: the password field BusyBox's
# `adduser -D` writes (none, and locked), or a password of none and the day after the epoch
# for expiry (what `usermod --expiredate 1` sets: closed for good).
_CLOSED_BY = {
    "locked": ("--password", "!"),
    "expired": ("--password", "*", "--expiredate", "1970-01-02"),
}


@pytest.fixture(params=list(_CLOSED_BY))
def closed_account(request: pytest.FixtureRequest) -> Iterator[str]:
    """An existing account with no usable shell, shut to keys one of the `_CLOSED_BY` ways."""
    with throwaway_account() as name:
        subprocess.run(
            [
                *("useradd", "--create-home", *_CLOSED_BY[request.param]),
                *("--shell", "/usr/sbin/nologin", "--", name),
            ],
            capture_output=True,
            check=True,
        )
        yield name


@pytest.fixture
def drop_in_sshd(
    socket_enabled: None, tmp_path: Path, closed_account: str
) -> Iterator[DropInSSHServer]:
    with running_drop_in_sshd(tmp_path / "sshd", closed_account) as server:
        yield server


async def test_a_key_the_script_installs_is_one_sshd_lets_in(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey
) -> None:
    await installed_means_logs_in(drop_in_sshd, client_key, _COMMENT)
