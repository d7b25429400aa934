"""Attack on the server script's promise to OpenSSH: "installed" must mean the tunnel works.

Debian's and Ubuntu's sshd runs with UsePAM yes, and pam_unix's account check holds password
aging against every login, keys included: once the account's password must be changed (its
last change is day 0, or older than its maximum age) sshd lets the key in but refuses every
forward ("password change required"), whatever the account's password is, `*` included.
- An existing account whose password must be changed (`passwd -e`, `chage -d 0`: a first
  login's policy) gets "installed", exit 0, and a tunnel that never gets its port.
- An account the script creates takes the maximum age of /etc/login.defs (`PASS_MAX_DAYS`,
  90 or 365 on servers hardened after CIS): the tunnel works, and stops for good that many
  days later. Here a stand-in useradd passes `-K PASS_MAX_DAYS=90` as such a login.defs would,
  and the last change is then moved back 100 days, as time would.
The real sshd here runs with UsePAM yes and Debian's PAM configuration for sshd.
"""

from __future__ import annotations

import datetime
import functools
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

import harness.openssh
from harness.server_script import create_account, throwaway_account
from harness.server_script_run import (
    NO_LOGIN,
    installed_means_logs_in,
    running_drop_in_sshd,
    stand_in,
    stand_ins_first,
)

_COMMENT = "ssh_callhome@password_aging"
_SSHD_PAM = Path("/etc/pam.d/sshd")
# A hardened login.defs's maximum password age, and a day past it.
_MAX_DAYS = 90
_DAYS_LATER = 100
_USERADD_HARDENED = f"""#!/bin/sh
exec /usr/sbin/useradd -K PASS_MAX_DAYS={_MAX_DAYS} "$@"
"""


@pytest.fixture
def pam_sshd_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's sshd with PAM, as Debian's and Ubuntu's sshd runs."""
    if not _SSHD_PAM.exists():
        pytest.skip(f"{_SSHD_PAM} is needed for sshd with PAM")
    config = harness.openssh._CONFIG.replace("UsePAM no", "UsePAM yes")
    monkeypatch.setattr(harness.openssh, "_CONFIG", config)


def _must_change_password(name: str) -> None:
    subprocess.run(["chage", "-d", "0", name], capture_output=True, check=True)


def _days_pass(name: str) -> None:
    changed = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=_DAYS_LATER)
    subprocess.run(["chage", "-d", changed.isoformat(), name], capture_output=True, check=True)


# Each case: whether the account exists before the script, and what happens to it before the
# tunnel connects (before the script for an existing account, after it for a created one).
_CASES: dict[str, tuple[bool, Callable[[str], None]]] = {
    "existing_must_change_password": (True, _must_change_password),
    "created_then_days_pass": (False, _days_pass),
}


@pytest.mark.usefixtures("pam_sshd_config", "socket_enabled")
@pytest.mark.parametrize("case", list(_CASES))
async def test_the_tunnel_gets_its_port_whatever_the_password_age(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, case: str
) -> None:
    exists, aging = _CASES[case]
    stand_in(accounts_folder, "useradd", _USERADD_HARDENED)
    with throwaway_account() as name:
        if exists:
            create_account(name, NO_LOGIN)
            aging(name)
        with running_drop_in_sshd(tmp_path / "sshd", name) as server:
            await installed_means_logs_in(
                server,
                client_key,
                _COMMENT,
                before_reload=None if exists else functools.partial(aging, name),
                PATH=stand_ins_first(accounts_folder),
            )
