"""Attack on the server script's "nothing changed": a keys file root made immutable.

Admins who keep the keys of an account to themselves mark its authorized_keys immutable
(`chattr +i`): nobody, the account included, replaces it. The account's step copies the file
to a temporary one beside it, adds the tunnel's line and moves it over the old one; that move
fails. The step prints no change (~/.ssh was there already), and the script says "the key line
is not installed: nothing changed", while the temporary copy of every key stays in ~/.ssh.
"""

from __future__ import annotations

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
from harness.network import LOOPBACK
from harness.server_script import create_account, run_script, throwaway_account

_COMMENT = "ssh_callhome@immutable_keys"
_OTHER_LINE = "ssh-ed25519 {blob} the-admins-key"


@pytest.fixture
def account_with_immutable_keys() -> Iterator[tuple[str, Path]]:
    """An account whose ~/.ssh/authorized_keys root made immutable; made mutable again after."""
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        entry = pwd.getpwnam(name)
        keys_dir = Path(entry.pw_dir) / ".ssh"
        keys = keys_dir / "authorized_keys"
        keys_dir.mkdir(mode=0o700)
        blob = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        keys.write_text(_OTHER_LINE.format(blob=blob.split()[1]) + "\n")
        keys.chmod(0o600)
        subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", keys_dir], check=True)
        if subprocess.run(["chattr", "+i", keys], capture_output=True, check=False).returncode:
            pytest.skip("this file system has no immutable files")
        try:
            yield name, keys_dir
        finally:  # userdel cannot remove an immutable file
            subprocess.run(["chattr", "-i", keys], capture_output=True, check=False)


def test_nothing_changed_means_nothing_changed(
    client_key: asyncssh.SSHKey, tmp_path: Path, account_with_immutable_keys: tuple[str, Path]
) -> None:
    name, keys_dir = account_with_immutable_keys
    before = sorted(path.name for path in keys_dir.iterdir())
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
    script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)

    result = run_script(script, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))

    print(result.returncode, result.stdout, result.stderr)
    if "nothing changed" not in result.stderr:
        return  # the script owns up to a change: nothing to hold it to
    after = sorted(path.name for path in keys_dir.iterdir())
    assert after == before, "the script said nothing changed"
