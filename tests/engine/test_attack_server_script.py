"""Attacks on the server script (run as root by the user): names that resolve to another
account, and an account that already exists as somebody's login."""

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
from harness.network import LOOPBACK, free_port
from harness.server_script import DropInSSHServer, run_script, throwaway_account

_COMMENT = "ssh_callhome@attack"


def _script(key: asyncssh.SSHKey, account: str, ports: list[int]) -> str:
    line = authorized_keys_line(key, LOOPBACK, ports, _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, ports)
    return setup_script(ServerSoftware.OPENSSH, account, key, line, settings)


@pytest.fixture
def login_account() -> Iterator[str]:
    """An account somebody logs in with: a real shell and a home, created before the script."""
    with throwaway_account() as name:
        subprocess.run(
            # A hash-less password ('*'), as a key-only login has: sshd without PAM refuses a
            # locked ('!') account.
            ["useradd", "--create-home", "--password", "*", "--shell", "/bin/bash", "--", name],
            capture_output=True,
            check=True,
        )
        yield name


def test_an_all_digit_account_name_never_reaches_the_account_with_that_uid(
    login_account: str, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    victim = pwd.getpwnam(login_account)
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the block
    script = _script(client_key, str(victim.pw_uid), [8123])
    result = run_script(script, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))
    print(result.returncode, result.stdout, result.stderr)
    victim_keys = Path(victim.pw_dir) / ".ssh" / "authorized_keys"
    assert not victim_keys.exists(), f"the key went to {login_account}'s {victim_keys}"


async def test_an_existing_login_account_keeps_its_own_interactive_logins(
    socket_enabled: None, login_account: str, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    server = DropInSSHServer(tmp_path / "sshd", login_account)
    server.start()
    try:
        own_key = asyncssh.generate_private_key("ssh-ed25519")
        owner = pwd.getpwnam(login_account)
        keys = Path(owner.pw_dir) / ".ssh" / "authorized_keys"
        keys.parent.mkdir(mode=0o700)
        keys.write_text(own_key.export_public_key().decode())
        for path in (keys.parent, keys):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        async with server.connect(own_key) as before:
            assert (
                await before.run("tty", term_type="xterm", request_pty="force")
            ).exit_status == 0

        result = run_script(
            _script(client_key, login_account, [free_port()]), **server.script_environment
        )
        print(result.stdout, result.stderr)
        assert result.returncode == 0, result.stderr
        assert f"account {login_account}: exists" in result.stdout
        server.stop()  # started again as the reload would
        server.start()

        async with server.connect(own_key) as after:
            tty = await after.run("tty", term_type="xterm", request_pty="force", check=False)
            print(tty.exit_status, tty.stdout, tty.stderr)
            assert tty.exit_status == 0
    finally:
        server.stop()
