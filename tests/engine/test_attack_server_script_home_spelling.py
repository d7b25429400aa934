"""Attack on the server script's home check through how passwd spells the home.

The script compares `readlink -f` of the home with the home as passwd has it, to refuse a home
reached through a link. `useradd --home-dir /srv/tunnel/` stores the trailing slash as typed;
readlink drops it, so a plain folder the account owns is refused as "a symbolic link".
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
from harness.server_script import run_script, throwaway_account

_COMMENT = "ssh_callhome@home_spelling"


@pytest.fixture
def account_with_slash() -> Iterator[str]:
    """An account whose passwd home ends in `/`, as an admin typed it."""
    with throwaway_account() as name:
        subprocess.run(
            [
                *("useradd", "--create-home", "--home-dir", f"/home/{name}/", "--password", "*"),
                *("--shell", "/usr/sbin/nologin", "--", name),
            ],
            capture_output=True,
            check=True,
        )
        yield name


def test_a_home_spelled_with_a_trailing_slash_is_the_accounts_own(
    client_key: asyncssh.SSHKey, tmp_path: Path, account_with_slash: str
) -> None:
    home = pwd.getpwnam(account_with_slash).pw_dir
    assert home.endswith("/"), "useradd did not keep the slash: the test proves nothing"
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")
    name = account_with_slash
    line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
    script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)

    result = run_script(script, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))

    print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 0
    assert _COMMENT in (Path(home) / ".ssh" / "authorized_keys").read_text()
