"""Attacks on the server script through the account's home folder: a home that is not the
account's own (RHEL's `operator` lives in /root), and a home one path component up from which the
account can swap for a link to another folder. The script runs as root and changes owners there.
"""

from __future__ import annotations

import os
import pwd
import shlex
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
    folder_for_accounts,
    run_script,
    throwaway_account,
)

_COMMENT = "ssh_callhome@attack"
# An account nobody logs in to, as service accounts are: the script treats it as tunnel-only.
_NO_LOGIN = "/usr/sbin/nologin"
_ROOTS_OWN_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRootsOwnKeyStandIn root@server\n"


def _script(key: asyncssh.SSHKey, account: str) -> str:
    line = authorized_keys_line(key, LOOPBACK, [8123], _COMMENT, ServerSoftware.OPENSSH)
    settings = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, [8123])
    return setup_script(ServerSoftware.OPENSSH, account, key, line, settings)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    result = run_script(script, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))
    print(result.returncode, result.stdout, result.stderr)
    return result


def _roots_ssh_folder(parent: Path) -> Path:
    """A stand-in for /root: root's own .ssh with root's authorized_keys, as sshd wants them."""
    parent.mkdir(mode=0o700)
    ssh = parent / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "authorized_keys").write_text(_ROOTS_OWN_LINE)
    return ssh


def _owners(ssh: Path) -> list[int]:
    return [path.lstat().st_uid for path in (ssh, ssh / "authorized_keys")]


def _create_account(name: str, home: Path) -> None:
    subprocess.run(
        [
            *("useradd", "--no-create-home", "--home-dir", str(home), "--password", "*"),
            *("--shell", _NO_LOGIN, "--", name),
        ],
        capture_output=True,
        check=True,
    )


@pytest.fixture
def hook_folder() -> Iterator[Path]:
    """Where the account can run the hook: the script writes in the home as the account."""
    with folder_for_accounts() as folder:
        yield folder


@pytest.fixture
def account() -> Iterator[str]:
    """A throwaway account; its home is removed by the test itself (it may be a stand-in for
    /root, which userdel --remove must not empty)."""
    with throwaway_account() as name:
        try:
            yield name
        finally:
            subprocess.run(["userdel", name], capture_output=True, check=False)


def test_a_home_the_account_does_not_own_is_left_alone(
    account: str, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    # Fedora, RHEL, CentOS: operator:x:11:0:operator:/root:/sbin/nologin. A nologin account,
    # so the script takes it for one nobody logs in to, and writes in root's home.
    shared_home = tmp_path / "root"
    ssh = _roots_ssh_folder(shared_home)
    _create_account(account, shared_home)

    _run(_script(client_key, account), tmp_path)

    print("owners", _owners(ssh), "account uid", pwd.getpwnam(account).pw_uid)
    assert _owners(ssh) == [0, 0], "root's .ssh and authorized_keys now belong to the account"
    assert _ROOTS_OWN_LINE in (ssh / "authorized_keys").read_text()


def test_a_home_swapped_for_a_link_by_its_account_leads_nowhere_else(
    account: str, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    # The account owns the folder its home is in (a service laid out as /srv/app/home, the
    # account owning /srv/app), so it can replace its home with a link before the run, or
    # while it runs: here before, which needs no race.
    victim_ssh = _roots_ssh_folder(tmp_path / "victim")
    parent = tmp_path / "app"
    parent.mkdir()
    home = parent / "home"
    _create_account(account, home)
    entry = pwd.getpwnam(account)
    os.chown(parent, entry.pw_uid, entry.pw_gid)
    # What the account can do in a folder it owns; done here as root, then handed to it.
    home.symlink_to(victim_ssh.parent)
    os.lchown(home, entry.pw_uid, entry.pw_gid)

    _run(_script(client_key, account), tmp_path)

    print("owners", _owners(victim_ssh), "account uid", entry.pw_uid)
    assert _owners(victim_ssh) == [0, 0], "the link's target now belongs to the account"
    assert _ROOTS_OWN_LINE in (victim_ssh / "authorized_keys").read_text()


# Stand in for the account's side of the race: a loop renaming its .ssh to a link and back
# wins some runs; these place the swap in a window for sure, so that the test never depends on
# timing. Before mktemp: between the script's link check and its first write into an existing
# .ssh. After mkdir: between root creating .ssh (in the account's home, where the account may
# rename it) and its chown, which follows links. The paths are written into the hook: the
# script hands the account's step none of root's environment.
_SWAP = "mv {swapped} {swapped}.moved && ln -s {target} {swapped}"
_SWAP_HOOKS = {
    "mktemp": f'#!/bin/sh\n{_SWAP}\nexec {{real}} "$@"\n',
    "mkdir": f'#!/bin/sh\n{{real}} "$@" || exit\n{_SWAP}\n',
}


@pytest.mark.parametrize("swapped_at", list(_SWAP_HOOKS))
def test_a_keys_folder_swapped_for_a_link_while_the_script_runs_leads_nowhere_else(
    client_key: asyncssh.SSHKey, tmp_path: Path, swapped_at: str, hook_folder: Path
) -> None:
    victim_ssh = _roots_ssh_folder(tmp_path / "victim")
    command = hook_folder / swapped_at
    with throwaway_account() as name:
        create_account(name, _NO_LOGIN)
        entry = pwd.getpwnam(name)
        keys_dir = Path(entry.pw_dir) / ".ssh"
        hook = _SWAP_HOOKS[swapped_at].format(
            real=shutil.which(swapped_at),
            swapped=shlex.quote(str(keys_dir)),
            target=shlex.quote(str(victim_ssh)),
        )
        command.write_text(hook)
        command.chmod(0o755)
        if swapped_at == "mktemp":
            keys_dir.mkdir(mode=0o700)  # the account's own .ssh, made by the account
            os.chown(keys_dir, entry.pw_uid, entry.pw_gid)
        config = tmp_path / "sshd_config"
        config.write_text("Port 22\n")
        result = run_script(
            _script(client_key, name),
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(tmp_path),
            PATH=f"{hook_folder}:{os.environ['PATH']}",
        )
        print(result.returncode, result.stdout, result.stderr)
        assert keys_dir.is_symlink(), "the swap did not happen: the test proves nothing"
        print("owners", _owners(victim_ssh), "account uid", entry.pw_uid)
        assert _owners(victim_ssh) == [0, 0], "the target (or its authorized_keys) is the account's"


def test_a_keys_file_hard_linked_to_a_secret_gives_the_account_nothing_to_read(
    client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    # Where fs.protected_hardlinks is 0 (older kernels, some containers) any account may link
    # a file it cannot read; made here by root for the account, since this host protects them.
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$standin$hash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    with throwaway_account() as name:
        create_account(name, _NO_LOGIN)
        entry = pwd.getpwnam(name)
        keys_dir = Path(entry.pw_dir) / ".ssh"
        keys_dir.mkdir(mode=0o700)
        os.chown(keys_dir, entry.pw_uid, entry.pw_gid)
        (keys_dir / "authorized_keys").hardlink_to(secret)

        _run(_script(client_key, name), tmp_path)

        keys = keys_dir / "authorized_keys"
        print("owner", keys.stat().st_uid, "account uid", entry.pw_uid, keys.read_text())
        assert "standin" not in keys.read_text(), "the secret is in a file the account owns"
