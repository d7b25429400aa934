"""Attack on the server script's drop-in: written under root's umask, its mode set after.

The script writes the new Match block to `$drop_in.new` with a plain redirection, then sets mode
644. Pasted into a root shell whose umask is 000 (a provisioning tool's shell, a container's, or
`umask 0` set by hand for some other job), the file is world-writable from its creation to that
chmod, in sshd's own configuration folder, under a name anybody can predict. Any local user
who opens it then (inotify tells when) keeps a descriptor that writes on after the chmod: what
it adds is checked by `sshd -t`, installed as the drop-in and loaded by the reload, as root's
sshd configuration (`PermitRootLogin yes`, `AuthorizedKeysFile /tmp/%u`...). Here a stand-in
chmod on root's PATH, called for that file, has `nobody` write to it first, as such a user
would in that window.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.network import LOOPBACK
from harness.server_script import (
    DropInSSHServer,
    create_account,
    folder_for_accounts,
    throwaway_account,
)

_COMMENT = "ssh_callhome@umask"
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# What the local user adds to sshd's configuration.
_ADDED = "# added by nobody: PermitRootLogin yes"
# Root's shell with umask 000, then the pasted script.
_ROOT_SHELL = "umask 000; exec sh"
# chmod as root's PATH has it, with a local user (nobody) writing to the new drop-in first.
_CHMOD = f"""#!/bin/sh
case $2 in
    *.conf.new) setpriv --reuid=nobody --regid=nogroup --clear-groups -- \\
        sh -c 'printf "%s\\\\n" "$1" >> "$2"' sh '{_ADDED}' "$2" 2>/dev/null || true ;;
esac
exec /bin/chmod "$@"
"""
_SCRIPT_TIMEOUT = 60.0


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    with folder_for_accounts() as folder:
        yield folder


@pytest.mark.usefixtures("socket_enabled")
def test_no_local_user_writes_into_the_drop_in(
    client_key: asyncssh.SSHKey, shared_folder: Path
) -> None:
    chmod_folder = shared_folder / "bin"
    chmod_folder.mkdir(mode=0o755)
    (chmod_folder / "chmod").write_text(_CHMOD)
    (chmod_folder / "chmod").chmod(0o755)
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        # In a folder every user may pass through, as /etc/ssh is.
        server = DropInSSHServer(shared_folder / "sshd", name)
        server.start()
        try:
            line = authorized_keys_line(
                client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH
            )
            settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
            script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)

            result = subprocess.run(
                ["sh", "-c", _ROOT_SHELL],
                input=script,
                env={
                    **os.environ,
                    **server.script_environment,
                    "PATH": f"{chmod_folder}:{_SYSTEM_PATH}",
                },
                capture_output=True,
                text=True,
                timeout=_SCRIPT_TIMEOUT,
                check=False,
            )
        finally:
            server.stop()

        print(result.returncode, result.stdout, result.stderr)
        assert "Match block for" in result.stdout, "the script did not write the drop-in"
        drop_in = server.drop_in.read_text()
        print(drop_in)
        assert _ADDED not in drop_in, "a local user wrote into sshd's configuration"
