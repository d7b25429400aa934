"""Against a real OpenSSH server: a changed host key gets nothing of ours and raises the repair,
and a key with the restricted authorized_keys line holds the tunnel and can do nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
import pytest

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import CONF_HOST_KEY, DOMAIN
from custom_components.ssh_callhome.engine.keys import (
    authorized_keys_line,
    fingerprint,
    load_host_key,
)
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_setup import openssh_match_block
from harness.dropbear import DropbearServer
from harness.integration import load, state_of
from harness.network import LOOPBACK, free_port, wait_until
from harness.openssh import OpenSSHServer


async def fix_issue(
    hass: HomeAssistant, client: ClientSessionGenerator, issue_id: str
) -> dict[str, Any]:
    """Walk the repair's fix flow through Home Assistant's own API, as the UI does."""
    http = await client()
    started = await http.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert started.status == 200
    form: dict[str, Any] = await started.json()
    assert form["step_id"] == "confirm"
    done = await http.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
    assert done.status == 200
    return form


async def test_changed_host_key_gets_no_key_and_raises_the_repair(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    assert "Accepted publickey" in openssh.log  # the log does show key use when there is some
    pinned = openssh.host_public_key
    openssh.stop()
    openssh.replace_host_key()
    log_before = len(openssh.log)
    openssh.start()
    issue_id = f"host_key_changed_{entry.entry_id}"
    registry = ir.async_get(hass)
    await wait_until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, 10, "repair")
    assert state_of(hass) == STATE_OFF
    assert entry.runtime_data.tunnel.state.last_error == "host_key"

    # Two more attempts at least, all refused before authentication, and kept to the backoff:
    # after the first retry 1 s and 2 s (less 20 % jitter) pass before the third attempt.
    took = await wait_until(
        lambda: openssh.log[log_before:].count("Connection from") >= 3, 10, "retries"
    )
    assert took >= 0.8 * (1 + 2) - 0.5
    assert "publickey" not in openssh.log[log_before:]
    warnings = [
        r for r in caplog.records if r.levelname == "WARNING" and "host_key" in r.getMessage()
    ]
    assert len(warnings) == 1

    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": entry.title,
        "pinned": fingerprint(load_host_key(pinned)),
        "presented": fingerprint(load_host_key(openssh.host_public_key)),
    }
    form = await fix_issue(hass, hass_client, issue_id)
    assert form["description_placeholders"] == issue.translation_placeholders
    await hass.async_block_till_done()
    assert entry.data[CONF_HOST_KEY] == openssh.host_public_key
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on with the new key")
    assert registry.async_get_issue(DOMAIN, issue_id) is None


async def test_restricted_line_holds_the_tunnel_and_nothing_else(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    client_key: asyncssh.SSHKey,
) -> None:
    remote_port = entry.data["remote_port"]
    line = authorized_keys_line(client_key, "", [remote_port], "ssh_callhome@test")
    openssh.set_authorized_keys([line])
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")

    async with openssh.connect(client_key) as same_key:
        command = await same_key.run("echo escaped", check=False)
        assert "escaped" not in str(command.stdout)
        assert command.exit_status != 0
        with pytest.raises(asyncssh.ChannelListenError):
            await same_key.forward_remote_port("", free_port(), LOOPBACK, 9)
        with pytest.raises(asyncssh.ChannelOpenError):
            await same_key.open_connection(LOOPBACK, openssh.port)
    # Refusing the rest did not disturb the tunnel itself.
    assert state_of(hass) == STATE_ON


@pytest.mark.parametrize("match_block", [False, True])
async def test_match_block_forbids_unix_socket_forwards_the_line_allows(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey, tmp_path: Path, match_block: bool
) -> None:
    # `port-forwarding` in the line allows Unix-socket forwarding too; no key option forbids it.
    main, extra = free_port(), free_port()
    openssh.set_authorized_keys([authorized_keys_line(client_key, "", [main, extra], "test")])
    if match_block:
        openssh.stop()
        openssh.extra_config = openssh_match_block(openssh.user, "", [main, extra]) + "\n"
        openssh.start()
    socket_path = tmp_path / "planted.sock"
    async with openssh.connect(client_key) as same_key:
        # The tunnel's own forwards pass either way, and no other port does.
        for port in (main, extra):
            await same_key.forward_remote_port("", port, LOOPBACK, 9)
        with pytest.raises(asyncssh.ChannelListenError):
            await same_key.forward_remote_port("", free_port(), LOOPBACK, 9)
        if match_block:
            with pytest.raises(asyncssh.ChannelListenError):
                await same_key.forward_remote_path(str(socket_path), "/dev/null")
            assert not socket_path.exists()
        else:
            await same_key.forward_remote_path(str(socket_path), "/dev/null")
            assert socket_path.is_socket()


async def test_dropbear_line_forbids_what_dropbear_can(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    remote_port = free_port()
    line = authorized_keys_line(
        client_key, "", [remote_port], "test", software=ServerSoftware.DROPBEAR
    )
    dropbear.set_authorized_keys([line])
    socket_path = tmp_path / "planted.sock"
    async with dropbear.connect(client_key) as same_key:
        await same_key.forward_remote_port(LOOPBACK, remote_port, LOOPBACK, 9)
        command = await same_key.run("echo escaped", check=False)
        assert "escaped" not in str(command.stdout)
        assert command.exit_status != 0
        with pytest.raises(asyncssh.ChannelOpenError):
            await same_key.open_connection(LOOPBACK, dropbear.port)
        with pytest.raises(asyncssh.ChannelListenError):
            await same_key.forward_remote_path(str(socket_path), "/dev/null")
        # What the README says Dropbear cannot restrict: any other free port above 1023.
        await same_key.forward_remote_port(LOOPBACK, free_port(), LOOPBACK, 9)
        with pytest.raises(asyncssh.ChannelListenError):
            await same_key.forward_remote_port(LOOPBACK, 1023, LOOPBACK, 9)
    assert f"Pubkey auth succeeded for '{dropbear.user}'" in dropbear.log


async def test_dropbear_rejects_an_account_whose_shell_is_not_in_etc_shells(
    socket_enabled: None, tmp_path: Path, client_key: asyncssh.SSHKey, authorized_line: str
) -> None:
    # What the README says about a tunnel account without a shell on Dropbear.
    server = DropbearServer(tmp_path / "dropbear", [authorized_line], shell="/usr/sbin/nologin")
    try:
        server.start()
        with pytest.raises(asyncssh.PermissionDenied):
            async with server.connect(client_key):
                pass
    finally:
        server.close()
    assert f"User '{server.user}' has invalid shell, rejected" in server.log


@pytest.fixture
def mispinned_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """The entry pinned to a key the server does not have."""
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_HOST_KEY: " ".join(other.split()[:2])}
    )
    return entry


async def test_removing_the_entry_removes_its_repair(
    hass: HomeAssistant, mispinned_entry: MockConfigEntry
) -> None:
    await load(hass, mispinned_entry)
    issue_id = f"host_key_changed_{mispinned_entry.entry_id}"
    registry = ir.async_get(hass)
    await wait_until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, 10, "repair")
    await hass.config_entries.async_remove(mispinned_entry.entry_id)
    assert registry.async_get_issue(DOMAIN, issue_id) is None


async def test_fix_flow_of_a_removed_entry_aborts(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, mispinned_entry: MockConfigEntry
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, mispinned_entry)
    issue_id = f"host_key_changed_{mispinned_entry.entry_id}"
    registry = ir.async_get(hass)
    await wait_until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, 10, "repair")
    http = await hass_client()
    started = await http.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    form = await started.json()
    await hass.config_entries.async_remove(mispinned_entry.entry_id)
    done = await http.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
    assert (await done.json())["reason"] == "entry_removed"
