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

from harness.server_script import DropInSSHServer, throwaway_account
from harness.server_script_run import installed_means_logs_in

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
        await installed_means_logs_in(server, client_key, _COMMENT)
    finally:
        server.stop()
