"""The server settings shown beside the authorized_keys line, in the server's own syntax."""

from __future__ import annotations

from collections.abc import Sequence

from .keys import listen_spec
from .server_hello import ServerSoftware

# Seconds between the server's checks that the client is alive: a dropped tunnel frees its port
# after three unanswered checks.
CLIENT_ALIVE_INTERVAL = 15


def server_settings(
    software: ServerSoftware, username: str, bind_address: str, remote_ports: Sequence[int]
) -> str:
    """sshd_config lines for OpenSSH (and servers we do not know), Dropbear's flags otherwise."""
    if software is ServerSoftware.DROPBEAR:
        return _dropbear_flags(bind_address)
    return openssh_match_block(username, bind_address, remote_ports)


def openssh_match_block(username: str, bind_address: str, remote_ports: Sequence[int]) -> str:
    """A `Match User` block that limits the account to the tunnel, whatever its keys allow.

    It closes what the key's line cannot: `port-forwarding` in the line also allows Unix-socket
    forwarding, which only `AllowStreamLocalForwarding no` forbids.
    """
    listens = " ".join(listen_spec(bind_address, port) for port in remote_ports)
    lines = (
        f"Match User {username}",
        "    AllowTcpForwarding yes",
        "    AllowStreamLocalForwarding no",
        f"    PermitListen {listens}",
        f"    PermitOpen 127.0.0.1:{remote_ports[0]}",
        f"    GatewayPorts {'no' if bind_address else 'yes'}",
        "    PermitTTY no",
        "    X11Forwarding no",
        "    AllowAgentForwarding no",
        f"    ClientAliveInterval {CLIENT_ALIVE_INTERVAL}",
        "    ClientAliveCountMax 3",
    )
    return "\n".join(lines)


def _dropbear_flags(bind_address: str) -> str:
    """Dropbear has no per-user settings: these flags apply to the whole server.

    -s: no password logins; -K: keepalive, so a dropped tunnel frees its port; -a: visitors from
    other hosts may reach forwarded ports (OpenSSH's GatewayPorts), wanted only when listening on
    all interfaces.
    """
    flags = ["-s", f"-K {CLIENT_ALIVE_INTERVAL}"]
    if not bind_address:
        flags.append("-a")
    return f'DROPBEAR_EXTRA_ARGS="{" ".join(flags)}"'
