"""Attack on the server script's sshd side: an Include whose folder does not exist.

sshd_config may include `sshd_config.d/*.conf` while the folder is missing (removed, or a
config copied from another distribution): sshd takes a glob that matches nothing. The script
sees the Include, writes `<folder>/<drop-in>.new`, and dies on the shell's own "Directory
nonexistent": no block written, none printed, no word of what to do, after the key is in.
"""

from __future__ import annotations

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

_COMMENT = "ssh_callhome@drop_in_folder"


@pytest.fixture
def account() -> Iterator[str]:
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        yield name


def test_an_included_folder_that_is_missing_still_gets_the_block_to_the_user(
    client_key: asyncssh.SSHKey, tmp_path: Path, account: str
) -> None:
    folder = tmp_path / "sshd_config.d"  # not there
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {folder}/*.conf\nPort 22\n")
    line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    block = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, [8123])
    script = setup_script(ServerSoftware.OPENSSH, account, client_key, line, block)

    result = run_script(
        script,
        SSHD_CONFIG=str(config),
        SSHD_CONFIG_DIR=str(folder),
        SSHD_RELOAD="true",
        SSHD="true",  # the config is no full one: sshd -t is not what is attacked here
    )

    print(result.returncode, result.stdout, result.stderr)
    written = folder / f"ssh_callhome-{account}.conf"
    assert written.exists() or block in result.stdout, "the block is nowhere"
