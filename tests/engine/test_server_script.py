"""The server script, run for real: as root, against a real sshd and Dropbear, on a throwaway
account and config, and with hostile values."""

from __future__ import annotations

import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.connection import check_tunnel
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import (
    DROP_IN_MARKER,
    UnsafeScriptValue,
    setup_script,
    shell_quote,
)
from custom_components.ssh_callhome.engine.server_setup import (
    openssh_match_block,
    server_settings,
)
from harness.dropbear import DropbearServer
from harness.engine import loopback_settings
from harness.engine import server_settings as tunnel_settings
from harness.network import LOOPBACK, free_port
from harness.server_script import (
    NO_USERADD,
    DropInSSHServer,
    create_account,
    forward_granted,
    run_script,
    throwaway_account,
)

_COMMENT = "ssh_callhome@test_home"
# Values a user name or a comment could smuggle into a shell, one of each kind.
_HOSTILE = (
    "it's",
    "$(touch {marker})",
    "`touch {marker}`",
    "a;touch {marker}",
    "a\ntouch {marker}",
    "a'$(touch {marker})'",
    "a,root",
    "*",
    "-oProxyCommand=x",
    ".hidden",
    "0",  # id and getent read digits alone as a uid: root's
)


def script_for(
    key: asyncssh.SSHKey,
    software: ServerSoftware,
    account: str,
    bind_address: str,
    ports: list[int],
) -> str:
    """The script the flows show: for the line and the settings they show beside it."""
    line = authorized_keys_line(key, bind_address, ports, _COMMENT, software)
    settings = server_settings(software, account, bind_address, ports)
    return setup_script(software, account, key, line, settings)


def file_states(*paths: Path) -> list[tuple[int, int, int, float, bytes]]:
    """Owner, group, mode, modification time and a file's content: what a run must leave alone."""
    states = []
    for path in paths:
        status = path.stat()
        content = path.read_bytes() if path.is_file() else b""
        states.append((status.st_uid, status.st_gid, status.st_mode, status.st_mtime, content))
    return states


@pytest.fixture
def account() -> Iterator[str]:
    """A throwaway account name, its account removed after the test."""
    with throwaway_account() as name:
        yield name


@pytest.fixture
def drop_in_sshd(socket_enabled: None, tmp_path: Path, account: str) -> Iterator[DropInSSHServer]:
    """A real sshd, started, whose config includes its drop-in folder, for the account."""
    server = DropInSSHServer(tmp_path / "sshd", account)
    server.start()
    yield server
    server.stop()


async def test_the_script_prepares_openssh_for_the_tunnel_and_nothing_else(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    account = drop_in_sshd.user
    settings = tunnel_settings(drop_in_sshd, client_key, free_port())
    ports = [settings.remote_port]
    script = script_for(client_key, ServerSoftware.OPENSSH, account, LOOPBACK, ports)

    first = run_script(script, **drop_in_sshd.script_environment)
    print(first.stdout, first.stderr)
    assert first.returncode == 0, first.stderr
    assert f"account {account}: created" in first.stdout
    assert "sshd reloaded" in first.stdout
    assert drop_in_sshd.reloads.read_text() == "reloaded\n"
    keys = Path(pwd.getpwnam(account).pw_dir) / ".ssh" / "authorized_keys"
    line = authorized_keys_line(client_key, LOOPBACK, ports, _COMMENT)
    assert keys.read_text() == f"{line}\n"
    uid = pwd.getpwnam(account).pw_uid
    assert (keys.stat().st_uid, keys.stat().st_mode & 0o777) == (uid, 0o600)
    assert (keys.parent.stat().st_uid, keys.parent.stat().st_mode & 0o777) == (uid, 0o700)
    shadow = Path("/etc/shadow").read_text().splitlines()
    assert f"{account}:*:" in {entry[: len(account) + 3] for entry in shadow}  # no password
    block = openssh_match_block(account, LOOPBACK, ports)
    assert drop_in_sshd.drop_in.read_text().endswith(f"\n{block}\n")

    drop_in_sshd.stop()  # started again as the reload would: with the drop-in in force
    drop_in_sshd.start()
    await check_tunnel(settings)
    async with drop_in_sshd.connect(client_key) as connection:
        command = await connection.run("id", check=False)
        assert command.exit_status != 0
        assert "uid=" not in str(command.stdout)
        with pytest.raises(asyncssh.ChannelListenError):
            await connection.forward_remote_port(LOOPBACK, free_port(), LOOPBACK, 9)
        # Where the account may create a socket: only the server's settings stop it there.
        socket_path = keys.parent.parent / "forwarded.sock"
        with pytest.raises(asyncssh.ChannelListenError):
            await connection.forward_remote_path(str(socket_path), str(tmp_path / "nowhere"))
        assert not socket_path.exists()

    written = (keys, keys.parent, drop_in_sshd.drop_in)
    before = file_states(*written)
    second = run_script(script, **drop_in_sshd.script_environment)
    print(second.stdout, second.stderr)
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith("ssh_callhome: nothing to change\n")
    assert file_states(*written) == before
    assert drop_in_sshd.reloads.read_text() == "reloaded\n"


async def test_two_tunnels_on_one_account_keep_both_forwards_and_a_run_again_changes_nothing(
    drop_in_sshd: DropInSSHServer,
) -> None:
    account = drop_in_sshd.user
    keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(2)]
    ports = sorted((free_port(), free_port()), reverse=True)  # the later script's port first
    scripts = [
        script_for(key, ServerSoftware.OPENSSH, account, LOOPBACK, [port])
        for key, port in zip(keys, ports, strict=True)
    ]
    for script in scripts:
        result = run_script(script, **drop_in_sshd.script_environment)
        print(result.stdout, result.stderr)
        assert result.returncode == 0, result.stderr
    drop_in = drop_in_sshd.drop_in.read_text()
    print(drop_in)
    low, high = sorted(ports)
    assert f"    PermitListen {LOOPBACK}:{low} {LOOPBACK}:{high}\n" in drop_in
    assert f"    PermitOpen 127.0.0.1:{low} 127.0.0.1:{high}\n" in drop_in

    drop_in_sshd.stop()  # started again as the reload would: with the drop-in in force
    drop_in_sshd.start()
    for key, port in zip(keys, ports, strict=True):
        assert await forward_granted(drop_in_sshd, key, port)

    authorized_keys = Path(pwd.getpwnam(account).pw_dir) / ".ssh" / "authorized_keys"
    before = file_states(authorized_keys, drop_in_sshd.drop_in)
    for script in scripts:
        again = run_script(script, **drop_in_sshd.script_environment)
        assert again.returncode == 0, again.stderr
        assert again.stdout.endswith("ssh_callhome: nothing to change\n")
    assert file_states(authorized_keys, drop_in_sshd.drop_in) == before
    assert drop_in_sshd.reloads.read_text() == "reloaded\n" * 2


def test_a_drop_in_the_script_did_not_write_is_refused_and_nothing_changes(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey
) -> None:
    account = drop_in_sshd.user
    drop_in_sshd.drop_in.write_text(f"Match User {account}\n    PermitListen 2222\n")
    before = file_states(drop_in_sshd.drop_in)
    script = script_for(client_key, ServerSoftware.OPENSSH, account, LOOPBACK, [free_port()])
    result = run_script(script, **drop_in_sshd.script_environment)
    print(result.stdout, result.stderr)
    assert result.returncode == 1
    assert f"{drop_in_sshd.drop_in} was not written by this script: nothing changed" in (
        result.stderr
    )
    assert file_states(drop_in_sshd.drop_in) == before
    assert sorted(drop_in_sshd.drop_ins.iterdir()) == [drop_in_sshd.drop_in]
    assert subprocess.run(["id", account], capture_output=True, check=False).returncode != 0
    assert not drop_in_sshd.reloads.exists()


@pytest.mark.parametrize("previous", [f"{DROP_IN_MARKER}\nan older block", None])
def test_a_config_sshd_refuses_is_put_back_and_the_script_fails(
    account: str, client_key: asyncssh.SSHKey, tmp_path: Path, previous: str | None
) -> None:
    drop_ins = tmp_path / "sshd_config.d"
    drop_ins.mkdir()
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {drop_ins}/*.conf\nNoSuchKeyword yes\n")
    drop_in = drop_ins / f"ssh_callhome-{account}.conf"
    if previous is not None:
        drop_in.write_text(previous)
    script = script_for(client_key, ServerSoftware.OPENSSH, account, "", [8123])
    reloads = tmp_path / "reloads"
    result = run_script(
        script,
        SSHD_CONFIG=str(config),
        SSHD_CONFIG_DIR=str(drop_ins),
        SSHD_RELOAD=f"echo reloaded >> {reloads}",
    )
    print(result.stdout, result.stderr)
    assert result.returncode != 0
    assert "sshd -t refuses the configuration with the new block" in result.stderr
    assert sorted(path.name for path in drop_ins.iterdir()) == ([drop_in.name] if previous else [])
    if previous is not None:
        assert drop_in.read_text() == previous
    assert not reloads.exists()


def test_without_the_drop_in_folder_the_script_prints_the_block(
    account: str, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("# Include /elsewhere/*.conf\nPort 22\n")
    ports = [8123, 2222]
    script = script_for(client_key, ServerSoftware.OPENSSH, account, "", ports)
    result = run_script(script, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"does not include {tmp_path}/*.conf: not changed" in result.stdout
    assert openssh_match_block(account, "", ports) + "\n" in result.stdout
    assert config.read_text() == "# Include /elsewhere/*.conf\nPort 22\n"
    assert not list(tmp_path.glob("*.conf"))


@pytest.mark.parametrize(
    ("shell", "block_written"), [("/bin/bash", False), ("/usr/sbin/nologin", True)]
)
def test_an_existing_account_gets_the_block_only_when_nobody_logs_in_to_it(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey, shell: str, block_written: bool
) -> None:
    account = drop_in_sshd.user
    create_account(account, shell)
    ports = [free_port()]
    script = script_for(client_key, ServerSoftware.OPENSSH, account, LOOPBACK, ports)
    result = run_script(script, **drop_in_sshd.script_environment)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert f"account {account}: exists, left as it is" in result.stdout
    keys = Path(pwd.getpwnam(account).pw_dir) / ".ssh" / "authorized_keys"
    assert keys.read_text() == f"{authorized_keys_line(client_key, LOOPBACK, ports, _COMMENT)}\n"
    block = openssh_match_block(account, LOOPBACK, ports)
    assert drop_in_sshd.drop_in.exists() is block_written
    assert drop_in_sshd.reloads.exists() is block_written
    warned = f"WARNING: account {account} has the login shell {shell}" in result.stdout
    assert warned is not block_written
    assert (f"\n{block}\n" in result.stdout) is not block_written


def test_root_is_refused_and_nothing_changes(client_key: asyncssh.SSHKey, tmp_path: Path) -> None:
    drop_ins = tmp_path / "sshd_config.d"
    drop_ins.mkdir()
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {drop_ins}/*.conf\n")
    root_ssh = Path(pwd.getpwnam("root").pw_dir) / ".ssh"
    before = sorted(root_ssh.iterdir()) if root_ssh.exists() else None
    before_states = file_states(*(before or []))
    reloads = tmp_path / "reloads"
    script = script_for(client_key, ServerSoftware.OPENSSH, "root", "", [8123])
    result = run_script(
        script,
        SSHD_CONFIG=str(config),
        SSHD_CONFIG_DIR=str(drop_ins),
        SSHD_RELOAD=f"echo reloaded >> {reloads}",
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 1
    assert "account root is root (uid 0): the tunnel must not log in as root" in result.stderr
    assert (sorted(root_ssh.iterdir()) if root_ssh.exists() else None) == before
    assert file_states(*(before or [])) == before_states
    assert not list(drop_ins.iterdir())
    assert not reloads.exists()


def test_a_name_getent_finds_under_another_name_is_refused_by_the_script(
    account: str, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    """The script's own check, past the one that keeps digits alone out of its header."""
    create_account(account, "/bin/bash")
    victim = pwd.getpwnam(account)
    script = script_for(client_key, ServerSoftware.OPENSSH, account, "", [8123])
    by_uid = script.replace(f"ACCOUNT='{account}'", f"ACCOUNT='{victim.pw_uid}'", 1)
    assert by_uid != script
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")
    result = run_script(by_uid, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))
    print(result.stdout, result.stderr)
    assert result.returncode == 1
    assert f"the name {victim.pw_uid} finds the account {account}: nothing changed" in (
        result.stderr
    )
    assert not (Path(victim.pw_dir) / ".ssh").exists()


async def test_the_script_puts_the_line_in_place_for_dropbear(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey
) -> None:
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    settings = tunnel_settings(dropbear, client_key, free_port())
    old_line = authorized_keys_line(client_key, "", [free_port()], "older", ServerSoftware.DROPBEAR)
    dropbear.set_authorized_keys([other_key, old_line])
    script = script_for(
        client_key, ServerSoftware.DROPBEAR, dropbear.user, "", [settings.remote_port]
    )
    # A reload would fail the run: the script leaves Dropbear's flags, and its restart, to the user.
    first = run_script(script, SSHD_RELOAD="false")
    print(first.stdout, first.stderr)
    assert first.returncode == 0, first.stderr
    assert 'DROPBEAR_EXTRA_ARGS="-s -K 15 -a"' in first.stdout
    line = authorized_keys_line(
        client_key, "", [settings.remote_port], _COMMENT, ServerSoftware.DROPBEAR
    )
    assert dropbear.authorized_keys_path.read_text() == f"{other_key}\n{line}\n"
    await check_tunnel(settings)
    second = run_script(script, SSHD_RELOAD="false")
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith("nothing to change\n")


async def test_an_account_the_script_creates_is_one_dropbear_accepts(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey, account: str
) -> None:
    host_key = asyncssh.import_public_key(dropbear.host_public_key)
    settings = loopback_settings(dropbear.port, account, client_key, host_key, free_port())
    script = script_for(client_key, ServerSoftware.DROPBEAR, account, "", [settings.remote_port])
    created = run_script(script)
    assert created.returncode == 0, created.stderr
    assert f"account {account}: created, with no password and the shell /bin/sh" in created.stdout
    await check_tunnel(settings)
    assert f"Pubkey auth succeeded for '{account}'" in dropbear.log


@pytest.mark.parametrize("hostile", _HOSTILE)
def test_an_account_name_the_script_cannot_carry_changes_nothing(
    client_key: asyncssh.SSHKey, tmp_path: Path, hostile: str
) -> None:
    marker = tmp_path / "ran"
    account = hostile.format(marker=marker)
    script = script_for(client_key, ServerSoftware.OPENSSH, account, "", [8123])
    assert account not in script
    result = run_script(script, SSHD_RELOAD=f"touch {marker}", **NO_USERADD)
    assert result.returncode == 1
    assert "cannot be written safely" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("hostile", [*_HOSTILE, "", "\\", '"', "'''"])
def test_a_quoted_value_reaches_the_script_as_it_was(tmp_path: Path, hostile: str) -> None:
    marker = tmp_path / "ran"
    value = hostile.format(marker=marker)
    printed = subprocess.run(
        ["sh", "-c", f'VALUE={shell_quote(value, lines=True)}; printf %s "$VALUE"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == value
    assert not marker.exists()


@pytest.mark.parametrize("control", ["a\nb", "a\rb", "a\x00b", "a\x1bb", "a\tb"])
def test_control_characters_are_refused_on_one_line(control: str) -> None:
    with pytest.raises(UnsafeScriptValue):
        shell_quote(control)


def test_the_script_can_be_pasted_into_an_interactive_shell(client_key: asyncssh.SSHKey) -> None:
    """No tab (shells complete on it), and one child shell that its `exit` ends."""
    for software in ServerSoftware:
        script = script_for(client_key, software, "tunnel", "", [8123, 2222])
        assert "\t" not in script
        assert script.startswith("sh -eu <<'SSH_CALLHOME_SCRIPT'\n")
        assert script.endswith("\nSSH_CALLHOME_SCRIPT")
        assert script.count("SSH_CALLHOME_SCRIPT") == 2
