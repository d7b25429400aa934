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
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from harness.server_script import folder_for_accounts
from harness.server_script_run import (
    INSTALLED,
    no_login_account,
    openssh_script,
    run_printing_only,
    stand_in,
    stand_ins_first,
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


def _controls_printed(result: subprocess.CompletedProcess[str]) -> set[str]:
    return _CONTROLS & set(result.stdout + result.stderr)


def test_an_accounts_own_passwd_fields_reach_roots_terminal_as_text(
    client_key: asyncssh.SSHKey, tmp_path: Path, directory_folder: Path
) -> None:
    # A login account: the script warns, naming its shell.
    with no_login_account("/bin/sh") as name:
        real = pwd.getpwnam(name)
        entry = ":".join(
            (name, "x", str(real.pw_uid), str(real.pw_gid), "", real.pw_dir, f"/bin/sh{_CLIPBOARD}")
        )
        stand_in(directory_folder, "getent", _DIRECTORY.format(name=name, entry=entry))
        script = openssh_script(client_key, name, _COMMENT)

        result = run_printing_only(script, tmp_path, PATH=stand_ins_first(directory_folder))

        assert "has the login shell" in result.stdout, "the script did not get there"
        assert not _controls_printed(result)


# Stands in for code the account runs in the script's process as the account (any process of
# the account may ptrace it: same uid, no Yama): it writes to the stderr that process holds.
_WRITE_TO_STDERR = """#!/bin/sh
printf '{text}' >&2
exec /usr/bin/mktemp "$@"
"""


def test_the_accounts_step_writes_nothing_raw_to_roots_terminal(
    client_key: asyncssh.SSHKey, tmp_path: Path, directory_folder: Path
) -> None:
    code = _WRITE_TO_STDERR.format(text=_CLIPBOARD.replace("\x1b", "\\033"))
    stand_in(directory_folder, "mktemp", code)
    with no_login_account() as name:
        script = openssh_script(client_key, name, _COMMENT)

        result = run_printing_only(script, tmp_path, PATH=stand_ins_first(directory_folder))

        assert INSTALLED in result.stdout, "it did not get there"
        assert not _controls_printed(result)
