"""Attack on the server script through the account's authorized_keys as it already is: the
script rewrites it through grep, which skips lines it takes for binary data in the root shell's
(UTF-8) locale, so the account's own keys can go with the tunnel's older line."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import asyncssh

from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.network import LOOPBACK
from harness.server_script import create_account, run_script, throwaway_account

_COMMENT = "ssh_callhome@attack"
# The locale a root shell has on Debian and Ubuntu (LANG=C.UTF-8) and most others (en_US.UTF-8).
_ROOT_SHELL_LOCALE = "C.UTF-8"
# The account's own keys, one with a comment in Latin-1 (as older Windows tools wrote "josé"):
# bytes that are no UTF-8, which grep then reads as binary data.
_OWN_LINES = (
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirstOwnKeyStandIn first@laptop\n",
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondOwnKeyStandIn jos\xe9@desktop\n",
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIThirdOwnKeyStandIn third@phone\n",
)


def test_the_accounts_own_keys_stay_whatever_their_bytes(
    client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        entry = pwd.getpwnam(name)
        keys = Path(entry.pw_dir) / ".ssh" / "authorized_keys"
        keys.parent.mkdir(mode=0o700)
        keys.write_bytes(b"".join(_OWN_LINES))
        for path in (keys.parent, keys):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        config = tmp_path / "sshd_config"
        config.write_text("Port 22\n")  # no Include: the script only prints the Match block
        settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
        result = run_script(
            setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings),
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(tmp_path),
            LC_ALL=_ROOT_SHELL_LOCALE,
        )
        print(result.returncode, result.stdout, result.stderr)
        assert result.returncode == 0, result.stderr
        after = keys.read_bytes()
        print(after)
        assert line.encode() in after
        assert [own for own in _OWN_LINES if own not in after] == []
