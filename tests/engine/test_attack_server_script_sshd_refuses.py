"""Attack on the server script's promise to OpenSSH on a hardened server: "installed" (exit 0)
must mean the key logs in.

Hardening guides, and many VPS images, narrow sshd in its main section: `AllowUsers` (or
`AllowGroups`) naming the admins only, `DisableForwarding yes`, or `AuthorizedKeysFile` moved
out of the homes (`/etc/ssh/authorized_keys/%u`). The script checks the config with `sshd -t`,
which is happy with each, installs the key in ~/.ssh and exits 0; sshd then never lets the
account in, or never grants its forward. `sshd -T -C user=ACCOUNT,...` would have said so (and a
`DisableForwarding no` in the Match block undoes the second). Run against the real sshd,
restarted with the drop-in.
"""

from __future__ import annotations

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

_COMMENT = "ssh_callhome@hardened"
# The main section of sshd_config, as hardened: each keeps the account out.
_HARDENING = {
    # Only the admins (root here) may log in.
    "allow_users": "AllowUsers root\n",
    # No forwarding for anybody (hardening guides' "DisableForwarding yes", OpenSSH 7.4+): the
    # Match block's AllowTcpForwarding does not turn it back on.
    "disable_forwarding": "DisableForwarding yes\n",
    # Keys live outside the homes: the harness's own file for everybody (no Match for the
    # account sends it back to ~/.ssh).
    "keys_elsewhere": "",
}


@pytest.fixture
def account() -> Iterator[str]:
    with throwaway_account() as name:
        yield name


@pytest.mark.parametrize("hardening", list(_HARDENING))
async def test_a_key_the_script_installs_is_one_a_hardened_sshd_lets_in(
    socket_enabled: None,
    client_key: asyncssh.SSHKey,
    tmp_path: Path,
    account: str,
    hardening: str,
) -> None:
    server = DropInSSHServer(tmp_path / "sshd", account)
    if hardening == "keys_elsewhere":
        server.extra_config = f"Include {server.drop_ins}/*.conf\n"
    else:
        server.extra_config = _HARDENING[hardening] + server.extra_config
    server.start()
    try:
        settings = tunnel_settings(server, client_key, free_port())
        ports = [settings.remote_port]
        line = authorized_keys_line(client_key, LOOPBACK, ports, _COMMENT, ServerSoftware.OPENSSH)
        block = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, ports)
        script = setup_script(ServerSoftware.OPENSSH, account, client_key, line, block)

        result = run_script(script, **server.script_environment)

        print(result.returncode, result.stdout, result.stderr)
        if result.returncode != 0:  # a refusal is fine; a success must be one
            return
        server.stop()  # started again as the reload would: with the drop-in in force
        server.start()
        try:
            await check_tunnel(settings)
        finally:
            print(server.log_path.read_text()[-2000:])
    finally:
        server.stop()
