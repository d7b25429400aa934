"""Attack on the server script's "nothing changed": said after it has created the account.

The script creates the account first, then looks for a way to write as it (setpriv, runuser,
su). On a server with useradd but none of those that work (a BusyBox whose setpriv lacks
--reuid, a container image without util-linux's runuser and su), it stops with "nothing
changed", leaving behind an account it created, which the next run then finds and keeps.
"""

from __future__ import annotations

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
from harness.server_script import folder_for_accounts, path_without, run_script, throwaway_account

_COMMENT = "ssh_callhome@half_way"
_RUNNERS = {"setpriv", "runuser", "su"}


@pytest.fixture
def bin_folder() -> Iterator[Path]:
    with folder_for_accounts() as folder:
        yield folder / "bin"


def test_a_refusal_that_says_nothing_changed_leaves_no_account_behind(
    client_key: asyncssh.SSHKey, tmp_path: Path, bin_folder: Path
) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")
    with throwaway_account() as name:
        line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
        settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
        script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)

        result = run_script(
            script,
            PATH=path_without(_RUNNERS, bin_folder),
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(tmp_path),
        )

        print(result.returncode, result.stdout, result.stderr)
        assert result.returncode != 0
        assert "nothing changed" in result.stderr
        exists = subprocess.run(["id", name], capture_output=True, check=False).returncode == 0
        assert not exists, "the account was created"
