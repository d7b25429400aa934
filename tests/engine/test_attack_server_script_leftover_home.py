"""Attack on the server script's "created" account: a home it did not make is not a fresh one.

`userdel` without `--remove` (the default) leaves the home behind, owned by the old uid, with
the old `~/.ssh/authorized_keys` in it. useradd gives the next account the lowest free uid past
the highest in use, so an account deleted last and made again (the same name: the add-on's old
`tunnel`, say) gets the same uid and the same home. useradd then only warns ("the home directory
already exists") and copies nothing; the script counts the account as its own creation: it keeps
every key already in the file, writes the Match block as for an account nobody logs in to and
says the account was created. The old keys (the add-on's unrestricted line, a former user's
key) then log in to the tunnel's account and may take the tunnel's port. A stand-in useradd on
the PATH passes `--uid` so that the old uid is the one given, as it is when nothing came after.

The same holds for keys useradd copies from /etc/skel: a baseline that gives every new account
`~/.ssh/authorized_keys` with a provisioning key (Ansible's, a cloud image's) gives one to the
tunnel's account too. A stand-in useradd passes `-k` with a skeleton folder of the test's own.
"""

from __future__ import annotations

import os
import pwd
import shutil
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
    create_account,
    run_script,
    throwaway_account,
)

_COMMENT = "ssh_callhome@leftover_home"
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# The key line the deleted account left behind: unrestricted, as the add-on's was.
_OLD_LINE = "ssh-ed25519 {blob} old-addon-key"
# useradd as it behaves when the deleted account's uid is the lowest free one past the highest.
_USERADD_SAME_UID = """#!/bin/sh
exec /usr/sbin/useradd --uid {uid} "$@"
"""
# useradd as it behaves under a baseline's /etc/skel.
_USERADD_SKELETON = """#!/bin/sh
exec /usr/sbin/useradd -k {skeleton} "$@"
"""
_PROVISIONING_LINE = "ssh-ed25519 {blob} provisioning-key"


@pytest.fixture
def leftover_home() -> Iterator[tuple[str, int, Path]]:
    """A name whose account was deleted, its home (with an old key line) left behind."""
    with throwaway_account() as name:
        create_account(name, "/usr/sbin/nologin")
        entry = pwd.getpwnam(name)
        home = Path(entry.pw_dir)
        try:
            keys_dir = home / ".ssh"
            keys_dir.mkdir(mode=0o700)
            (keys_dir / "authorized_keys").write_text(_OLD_LINE.format(blob=_blob()) + "\n")
            (keys_dir / "authorized_keys").chmod(0o600)
            for path in (keys_dir, keys_dir / "authorized_keys"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            subprocess.run(["userdel", name], capture_output=True, check=True)  # home stays
            yield name, entry.pw_uid, home
        finally:
            shutil.rmtree(home, ignore_errors=True)


def _blob() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[1]


def _script_for(key: asyncssh.SSHKey, name: str) -> str:
    line = authorized_keys_line(key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, name, LOOPBACK, [8123])
    return setup_script(ServerSoftware.OPENSSH, name, key, line, settings)


def _environment(tmp_path: Path, folder: Path) -> dict[str, str]:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    return {
        "PATH": f"{folder}:{_SYSTEM_PATH}",
        "SSHD_CONFIG": str(config),
        "SSHD_CONFIG_DIR": str(tmp_path),
    }


def test_a_home_left_by_a_deleted_account_brings_no_keys_along(
    client_key: asyncssh.SSHKey,
    tmp_path: Path,
    accounts_folder: Path,
    leftover_home: tuple[str, int, Path],
) -> None:
    name, old_uid, home = leftover_home
    useradd = accounts_folder / "useradd"
    useradd.write_text(_USERADD_SAME_UID.format(uid=old_uid))
    useradd.chmod(0o755)

    result = run_script(_script_for(client_key, name), **_environment(tmp_path, accounts_folder))

    print(result.returncode, result.stdout, result.stderr)
    assert "created" in result.stdout, "the script did not create the account"
    if result.returncode != 0:  # a refusal is fine; a success must leave only the tunnel's key
        return
    keys = (home / ".ssh" / "authorized_keys").read_text()
    print(keys)
    assert "old-addon-key" not in keys, "a key the script did not put there logs in as the account"


def test_keys_from_the_skeleton_do_not_log_in_to_a_created_account(
    client_key: asyncssh.SSHKey, tmp_path: Path, accounts_folder: Path
) -> None:
    skeleton = accounts_folder / "skel"
    (skeleton / ".ssh").mkdir(parents=True, mode=0o755)
    (skeleton / ".ssh" / "authorized_keys").write_text(
        _PROVISIONING_LINE.format(blob=_blob()) + "\n"
    )
    useradd = accounts_folder / "useradd"
    useradd.write_text(_USERADD_SKELETON.format(skeleton=skeleton))
    useradd.chmod(0o755)
    with throwaway_account() as name:
        result = run_script(
            _script_for(client_key, name), **_environment(tmp_path, accounts_folder)
        )

        print(result.returncode, result.stdout, result.stderr)
        assert "created" in result.stdout, "the script did not create the account"
        if result.returncode != 0:  # a refusal is fine; a success must leave only its key
            return
        keys = (Path(pwd.getpwnam(name).pw_dir) / ".ssh" / "authorized_keys").read_text()
        print(keys)
        assert "provisioning-key" not in keys, "a key the script did not put there logs in"
