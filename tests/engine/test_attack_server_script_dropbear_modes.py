"""Attack on the server script's promise to Dropbear: "installed" must mean the key logs in.

Dropbear (like OpenSSH's StrictModes) ignores authorized_keys when the home, .ssh or the file is
writable by the group or by everybody. The script now writes as the account and checks .ssh and
the file, but not the home: an account whose home is group-writable (made under umask 002, or
by a distribution's HOME_MODE 0775) gets "installed", exit 0, and a key Dropbear never reads.
Dropbear also refuses an account whose shell /etc/shells does not list: an existing account
made for OpenSSH (nologin, which Debian's /etc/shells leaves out) gets "installed" all the same.
"""

from __future__ import annotations

import pwd
from pathlib import Path

import asyncssh

from custom_components.ssh_callhome.engine.connection import check_tunnel
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.dropbear import DropbearServer
from harness.engine import loopback_settings
from harness.network import free_port
from harness.server_script import create_account, run_script, throwaway_account

_COMMENT = "ssh_callhome@dropbear_modes"
# A home its group may write to: what useradd makes under umask 002 with HOME_MODE unset.
_GROUP_WRITABLE_HOME = 0o775


async def test_a_key_the_script_installs_for_a_group_writable_home_is_one_dropbear_reads(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey
) -> None:
    await _a_key_the_script_installs_is_one_dropbear_reads(
        dropbear, client_key, "/bin/sh", _GROUP_WRITABLE_HOME
    )


async def test_a_key_the_script_installs_for_a_shell_etc_shells_leaves_out_is_one_dropbear_reads(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey
) -> None:
    await _a_key_the_script_installs_is_one_dropbear_reads(
        dropbear, client_key, "/usr/sbin/nologin", 0o755
    )


async def _a_key_the_script_installs_is_one_dropbear_reads(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey, shell: str, home_mode: int
) -> None:
    """An existing account with `shell` and a home of `home_mode`: the script refuses, or the
    key it installs logs in."""
    host_key = asyncssh.import_public_key(dropbear.host_public_key)
    with throwaway_account() as name:
        create_account(name, shell)
        Path(pwd.getpwnam(name).pw_dir).chmod(home_mode)
        settings = loopback_settings(dropbear.port, name, client_key, host_key, free_port())
        ports = [settings.remote_port]
        line = authorized_keys_line(client_key, "", ports, _COMMENT, ServerSoftware.DROPBEAR)
        flags = server_settings(ServerSoftware.DROPBEAR, name, "", ports)
        script = setup_script(ServerSoftware.DROPBEAR, name, client_key, line, flags)

        result = run_script(script)

        print(result.returncode, result.stdout, result.stderr)
        if result.returncode == 0:  # a refusal is fine; a success must be one
            try:
                await check_tunnel(settings)
            finally:
                print(dropbear.log)  # says why it read no key
