"""Attack (user's own set-up): two tunnels on one server account, each set up with its script.

Two Home Assistants (home and a holiday house), or two entries of one, each with its own key
and remote port, on the same account. Each script keeps the other key's authorized_keys line
(lines are replaced per key), but the account's drop-in has one name per account
(`ssh_callhome-<account>.conf`), and the second script replaces it with a Match block whose
`PermitListen` names only its own port: after sshd reloads, the first tunnel's forward is
refused at its next connection, while its key line still allows it. Real sshd, the script run
as root for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.network import LOOPBACK, free_port
from harness.server_script import (
    DropInSSHServer,
    forward_granted,
    run_script,
)
from harness.server_script_run import drop_in_sshd_for_a_new_account

_COMMENT = "ssh_callhome@attack"


def _script(key: asyncssh.SSHKey, account: str, port: int) -> str:
    line = authorized_keys_line(key, LOOPBACK, [port], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, [port])
    return setup_script(ServerSoftware.OPENSSH, account, key, line, settings)


@pytest.fixture
def shared_sshd(socket_enabled: None, tmp_path: Path) -> Iterator[DropInSSHServer]:
    with drop_in_sshd_for_a_new_account(tmp_path / "sshd") as server:
        yield server


def _run(server: DropInSSHServer, script: str) -> None:
    result = run_script(script, **server.script_environment)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    server.stop()  # started again as the reload would: with the drop-in in force
    server.start()


async def test_a_second_tunnel_on_the_account_keeps_the_first_ones_forward(
    shared_sshd: DropInSSHServer,
) -> None:
    home, holiday = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(2))
    home_port, holiday_port = free_port(), free_port()
    _run(shared_sshd, _script(home, shared_sshd.user, home_port))
    assert await forward_granted(shared_sshd, home, home_port)

    _run(shared_sshd, _script(holiday, shared_sshd.user, holiday_port))
    assert await forward_granted(shared_sshd, holiday, holiday_port)
    granted = await forward_granted(shared_sshd, home, home_port)
    print(f"drop-in now: {shared_sshd.drop_in.read_text()!r}")
    print(f"first tunnel's forward after the second script: {'granted' if granted else 'refused'}")
    assert granted
