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

from custom_components.ssh_callhome.engine.connection import check_tunnel
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.engine import server_settings as tunnel_settings
from harness.network import LOOPBACK, free_port
from harness.server_script import DropInSSHServer, run_script, throwaway_account

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
    server = DropInSSHServer(tmp_path / "sshd", closed_account)
    server.start()
    yield server
    server.stop()


async def test_a_key_the_script_installs_is_one_sshd_lets_in(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey, closed_account: str
) -> None:
    settings = tunnel_settings(drop_in_sshd, client_key, free_port())
    ports = [settings.remote_port]
    line = authorized_keys_line(client_key, LOOPBACK, ports, _COMMENT, ServerSoftware.OPENSSH)
    block = server_settings(ServerSoftware.OPENSSH, closed_account, LOOPBACK, ports)
    script = setup_script(ServerSoftware.OPENSSH, closed_account, client_key, line, block)

    result = run_script(script, **drop_in_sshd.script_environment)

    print(result.returncode, result.stdout, result.stderr)
    if result.returncode != 0:  # a refusal is fine; a success must be one
        return
    drop_in_sshd.stop()  # started again as the reload would: with the drop-in in force
    drop_in_sshd.start()
    try:
        await check_tunnel(settings)
    finally:
        print(drop_in_sshd.log_path.read_text())
