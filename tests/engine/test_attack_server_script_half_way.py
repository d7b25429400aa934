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

from harness.server_script import folder_for_accounts, path_without, throwaway_account
from harness.server_script_run import RUNNERS, openssh_script, run_printing_only

_COMMENT = "ssh_callhome@half_way"


@pytest.fixture
def bin_folder() -> Iterator[Path]:
    with folder_for_accounts() as folder:
        yield folder / "bin"


def test_a_refusal_that_says_nothing_changed_leaves_no_account_behind(
    client_key: asyncssh.SSHKey, tmp_path: Path, bin_folder: Path
) -> None:
    with throwaway_account() as name:
        script = openssh_script(client_key, name, _COMMENT)

        result = run_printing_only(script, tmp_path, PATH=path_without(set(RUNNERS), bin_folder))

        assert result.returncode != 0
        assert "nothing changed" in result.stderr
        exists = subprocess.run(["id", name], capture_output=True, check=False).returncode == 0
        assert not exists, "the account was created"
