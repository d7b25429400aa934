"""Attack on the server script's privilege drop through root's kernel keyring.

`env -i` keeps root's environment variables from the account's step, but not the session
keyring: the kernel hands it down across fork, exec and every change of uid. setpriv and su
leave it in place, and so does runuser: its PAM's pam_keyinit (without `force`) replaces only a
user's default session keyring, which root's is not once a login made it one of its own.
A process possesses the keys of its session keyring, so the step, running as the account, reads
every key root's session holds: Kerberos tickets of a `KEYRING:session` ccache, the CIFS
credentials `cifscreds` stores, `keyctl add user ... @s` secrets. An SSH login gets a session
keyring of its own (pam_keyinit in Debian's sshd PAM configuration), and `sudo -i` keeps the
admin's. Any process of the account may ptrace the step (same uid, no Yama here).
Here root's shell gets a session keyring of its own with one secret, and a stand-in command on
the PATH, run by the step, reads it as the injected code would.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

import asyncssh
import pytest

from harness.server_script import path_without
from harness.server_script_run import (
    INSTALLED,
    RUNNERS,
    account_code_run,
    left_in_home,
    no_login_account,
    openssh_script,
    run_printing_only,
)

_COMMENT = "ssh_callhome@keyring"
# A Python the account can run (the test's own virtualenv may sit in a folder it cannot read).
_SYSTEM_PYTHON = Path("/usr/bin/python3")
_SECRET_NAME = "ssh_callhome_test_secret"
_SECRET = "root-only-keyring-7d1e"
# Root's shell, in a session keyring of its own holding the secret, reading the pasted script.
# Linux x86-64 and arm64 system call numbers differ; the C library's wrappers do not exist in
# every libc, so the calls go through syscall(2) with the numbers of the machine.
_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}
_ROOT_SHELL = """
import ctypes, os, sys
add_key, keyctl = {numbers}
libc = ctypes.CDLL(None, use_errno=True)
assert libc.syscall(keyctl, 1, None) > 0, "KEYCTL_JOIN_SESSION_KEYRING"
secret = {secret!r}.encode()
assert libc.syscall(add_key, b"user", {name!r}.encode(), secret, len(secret), -3) > 0
os.execvp("sh", ["sh"])
"""
# What the account's code does: look the secret up in the session keyring and read it, then let
# the real mktemp go on.
_READ_KEYRING = """#!/bin/sh
{python} - > "$HOME/seen" 2>&1 <<'PY' || true
import ctypes
add_key, keyctl = {numbers}
libc = ctypes.CDLL(None, use_errno=True)
key = libc.syscall(keyctl, 10, -3, b"user", {name!r}.encode(), 0)
buffer = ctypes.create_string_buffer(256)
print("read", libc.syscall(keyctl, 11, key, buffer, 256) if key > 0 else key, buffer.value)
PY
exec /usr/bin/mktemp "$@"
"""
# What keyctl fails with where the kernel has no keyrings, or a seccomp filter refuses them.
_NO_KEYRINGS = {errno.ENOSYS, errno.EPERM, errno.EACCES}


def _syscall_numbers() -> tuple[int, int]:
    """add_key and keyctl on this machine; the test is skipped where keyrings are not to hand."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None or not _SYSTEM_PYTHON.exists():
        pytest.skip("keyrings are tried on x86-64 and arm64 Linux, with /usr/bin/python3")
    libc = ctypes.CDLL(None, use_errno=True)
    # KEYCTL_GET_KEYRING_ID of the session's: refused outright only where keyrings are not.
    if libc.syscall(numbers[1], 0, -3, 0) < 0 and ctypes.get_errno() in _NO_KEYRINGS:
        pytest.skip("no kernel keyrings here (a seccomp filter may refuse them)")
    return numbers


@pytest.mark.parametrize("runner", RUNNERS)
def test_roots_keyring_does_not_reach_the_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path, runner: str
) -> None:
    numbers = _syscall_numbers()
    reader = _READ_KEYRING.format(python=_SYSTEM_PYTHON, numbers=numbers, name=_SECRET_NAME)
    root_shell = _ROOT_SHELL.format(numbers=numbers, secret=_SECRET, name=_SECRET_NAME)
    with account_code_run(
        client_key,
        _COMMENT,
        accounts_folder,
        runner,
        reader,
        tmp_path,
        [sys.executable, "-c", root_shell],
    ) as (name, result):
        assert INSTALLED in result.stdout, "it did not get there"
        seen = left_in_home(name, "seen")
        assert seen.startswith("read"), "the account's code did not run"
        assert _SECRET not in seen


def test_without_keyctl_the_script_says_the_step_shares_the_keyring(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path
) -> None:
    path = path_without({"keyctl"}, accounts_folder / "bin")
    with no_login_account() as name:
        result = run_printing_only(openssh_script(client_key, name, _COMMENT), tmp_path, PATH=path)
    assert INSTALLED in result.stdout
    assert "no keyctl (keyutils) here" in result.stdout
