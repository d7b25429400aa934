"""Attack on the server script's promise to OpenSSH: "installed" must mean the key logs in.

Without useradd (Alpine: BusyBox's adduser only) the script asks the user to create the account
first. `adduser -D`, the usual way on Alpine, leaves the password field `!`: a locked account.
Alpine's sshd is built without PAM, and sshd without PAM refuses every login to a locked account,
keys included ("account is locked"). The script installs the key, says so and exits 0; the
tunnel never logs in. The real sshd here runs with UsePAM no, as Alpine's does.
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

_COMMENT = "ssh_callhome@locked"
# What BusyBox's `adduser -D` writes for the password: none, and locked.
_LOCKED = "!"


@pytest.fixture
def locked_account() -> Iterator[str]:
    """An account made as `adduser -D -s /sbin/nologin` makes it on Alpine."""
    with throwaway_account() as name:
        subprocess.run(
            [
                *("useradd", "--create-home", "--password", _LOCKED),
                *("--shell", "/usr/sbin/nologin", "--", name),
            ],
            capture_output=True,
            check=True,
        )
        yield name


@pytest.fixture
def drop_in_sshd(
    socket_enabled: None, tmp_path: Path, locked_account: str
) -> Iterator[DropInSSHServer]:
    server = DropInSSHServer(tmp_path / "sshd", locked_account)
    server.start()
    yield server
    server.stop()


async def test_a_key_the_script_installs_is_one_sshd_lets_in(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey, locked_account: str
) -> None:
    settings = tunnel_settings(drop_in_sshd, client_key, free_port())
    ports = [settings.remote_port]
    line = authorized_keys_line(client_key, LOOPBACK, ports, _COMMENT, ServerSoftware.OPENSSH)
    block = server_settings(ServerSoftware.OPENSSH, locked_account, LOOPBACK, ports)
    script = setup_script(ServerSoftware.OPENSSH, locked_account, client_key, line, block)

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
