"""What the user adds to the server for an entry: the key's authorized_keys line and settings.

Shown by the config flow when the server rejects the key, and by the options flow when new
options ask for forwards that the line shown before does not name.

It stays in the Home Assistant layer although it imports only two names from Home Assistant
(`CONF_HOST`, `CONF_USERNAME`): it reads an entry's stored data and options by their field names
(those two and the ones in const.py) and returns the flows' description placeholders. The engine
knows nothing of an entry's layout; its part, the line and the server's settings from typed
values, is engine/keys.py and engine/server_setup.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncssh

from homeassistant.const import CONF_HOST, CONF_USERNAME

from .const import (
    BIND_ADDRESSES,
    CONF_BIND,
    CONF_EXTRA_FORWARDS,
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
)
from .engine import (
    ServerSoftware,
    authorized_keys_line,
    parse_extra_forwards,
    server_settings,
    setup_script,
)


def key_comment(location_name: str) -> str:
    """ssh_callhome@<location>, with what authorized_keys cannot hold in a comment removed."""
    location = re.sub(r"[^A-Za-z0-9._-]+", "_", location_name).strip("_") or "home"
    return f"ssh_callhome@{location}"


def server_software(data: Mapping[str, Any]) -> ServerSoftware:
    """The server software stored with an entry; entries from before it was stored are OpenSSH."""
    return ServerSoftware(data.get(CONF_SERVER_SOFTWARE, ServerSoftware.OPENSSH))


def remote_ports(data: Mapping[str, Any], options: Mapping[str, Any]) -> list[int]:
    """Every remote port the entry forwards: the tunnel's first, then the extra forwards'."""
    extras = parse_extra_forwards(options[CONF_EXTRA_FORWARDS])
    return [data[CONF_REMOTE_PORT], *(forward.remote_port for forward in extras)]


def line_still_permits(
    data: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]
) -> bool:
    """Whether the line shown for the options `before` lets through every forward of `after`.

    A permitlisten with a bare port allows any listen address; one with an address only that.
    Always true for Dropbear, whose line names no ports.
    """
    if server_software(data) is ServerSoftware.DROPBEAR:
        return True
    old_bind = BIND_ADDRESSES[before[CONF_BIND]]
    new_bind = BIND_ADDRESSES[after[CONF_BIND]]
    old_ports = remote_ports(data, before)
    return old_bind in ("", new_bind) and all(
        port in old_ports for port in remote_ports(data, after)
    )


def authorize_placeholders(
    client_key: asyncssh.SSHKey,
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    location_name: str,
) -> dict[str, str]:
    """The authorized_keys line, a command that adds it, the settings, and a script doing both."""
    bind = BIND_ADDRESSES[options[CONF_BIND]]
    ports = remote_ports(data, options)
    software = server_software(data)
    account = data[CONF_USERNAME]
    line = authorized_keys_line(client_key, bind, ports, key_comment(location_name), software)
    settings = server_settings(software, account, bind, ports)
    return {
        "line": line,
        "command": f"echo '{line}' >> ~/.ssh/authorized_keys",
        "account": f"{account}@{data[CONF_HOST]}",
        "settings": settings,
        "script": setup_script(software, account, client_key, line, settings),
    }
