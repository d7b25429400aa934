"""The server settings shown beside the line, for the loopback-only choice."""

from __future__ import annotations

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer


def test_dropbear_listens_for_other_hosts_only_when_asked() -> None:
    everywhere = server_settings(ServerSoftware.DROPBEAR, "tunnel", "", [8123])
    loopback = server_settings(ServerSoftware.DROPBEAR, "tunnel", LOOPBACK, [8123])
    assert everywhere == 'DROPBEAR_EXTRA_ARGS="-s -K 15 -a"'
    assert loopback == 'DROPBEAR_EXTRA_ARGS="-s -K 15"'


async def test_the_loopback_block_holds_the_forward_to_loopback(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey
) -> None:
    ports = [free_port(), free_port()]
    block = server_settings(ServerSoftware.OTHER, openssh.user, LOOPBACK, ports)
    assert f"    PermitListen {LOOPBACK}:{ports[0]} {LOOPBACK}:{ports[1]}\n" in block
    assert "    GatewayPorts no\n" in block
    openssh.set_authorized_keys([authorized_keys_line(client_key, LOOPBACK, ports, "test")])
    openssh.stop()
    openssh.extra_config = block + "\n"
    openssh.start()  # sshd refuses to start on a block it does not accept
    async with openssh.connect(client_key) as same_key:
        for port in ports:
            await same_key.forward_remote_port(LOOPBACK, port, LOOPBACK, 9)
        with pytest.raises(asyncssh.ChannelListenError):
            await same_key.forward_remote_port("", free_port(), LOOPBACK, 9)
