"""Attack on what the server script prints in root's terminal: passwd fields, raw.

The script prints the account's login shell (in its warning about a Match block it does not
write) and its home (in its refusals) as passwd has them. A directory account (LDAP, FreeIPA,
through sssd) may edit its own loginShell (FreeIPA's self-service default), control characters
included, and useradd is not there to refuse them: an escape sequence then reaches root's
terminal, which may act on it (OSC 52 sets the clipboard root pastes next, others rewrite what
is on screen). Here a `getent` earlier on the PATH stands in for the directory's answer.
The account's own step writes to root's terminal too: its stderr is that terminal.
"""

from __future__ import annotations

import pwd
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
    create_account,
    folder_for_accounts,
    run_script,
    throwaway_account,
)

_COMMENT = "ssh_callhome@terminal_text"
# OSC 52: put "id" and a line break in the terminal's clipboard (xterm, kitty, iTerm2, Windows
# Terminal...); the user's next paste then runs it in root's shell.
_CLIPBOARD = "\x1b]52;c;aWQK\x07"
# What no terminal output of the script needs: C0 controls (ESC, BEL, CR...) and DEL.
_CONTROLS = {chr(code) for code in range(32) if chr(code) != "\n"} | {"\x7f"}
# The directory's answer for the account: its real entry, with the shell it chose.
_DIRECTORY = """#!/bin/sh
[ "$1" = passwd ] && [ "$2" = {name} ] || exec /usr/bin/getent "$@"
printf '%s\\n' '{entry}'
"""


@pytest.fixture
def directory_folder() -> Iterator[Path]:
    with folder_for_accounts() as folder:
        yield folder


def test_an_accounts_own_passwd_fields_reach_roots_terminal_as_text(
    client_key: asyncssh.SSHKey, tmp_path: Path, directory_folder: Path
) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")
    with throwaway_account() as name:
        create_account(name, "/bin/sh")  # a login account: the script warns, naming its shell
        real = pwd.getpwnam(name)
        entry = ":".join(
            (name, "x", str(real.pw_uid), str(real.pw_gid), "", real.pw_dir, f"/bin/sh{_CLIPBOARD}")
        )
        getent = directory_folder / "getent"
        getent.write_text(_DIRECTORY.format(name=name, entry=entry))
        getent.chmod(0o755)
        line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
        settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
        script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)

        result = run_script(
            script,
            PATH=f"{directory_folder}:/usr/sbin:/usr/bin:/sbin:/bin",
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(tmp_path),
        )

        print(repr(result.stdout), repr(result.stderr))
        assert "has the login shell" in result.stdout, "the script did not get there"
        assert not _CONTROLS & set(result.stdout + result.stderr)


# Stands in for code the account runs in the script's process as the account (any process of
# the account may ptrace it: same uid, no Yama): it writes to the stderr that process holds.
_WRITE_TO_STDERR = """#!/bin/sh
printf '{text}' >&2
exec /usr/bin/mktemp "$@"
"""


def test_the_accounts_step_writes_nothing_raw_to_roots_terminal(
    client_key: asyncssh.SSHKey, tmp_path: Path, directory_folder: Path
) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")
    mktemp = directory_folder / "mktemp"
    mktemp.write_text(_WRITE_TO_STDERR.format(text=_CLIPBOARD.replace("\x1b", "\\033")))
    mktemp.chmod(0o755)
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        line = authorized_keys_line(client_key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
        settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
        script = setup_script(ServerSoftware.OPENSSH, name, client_key, line, settings)

        result = run_script(
            script,
            PATH=f"{directory_folder}:/usr/sbin:/usr/bin:/sbin:/bin",
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(tmp_path),
        )

        print(repr(result.stdout), repr(result.stderr))
        assert "key line of this tunnel installed" in result.stdout, "it did not get there"
        assert not _CONTROLS & set(result.stdout + result.stderr)
