"""The config flow against a real OpenSSH server: the happy path, every error and its recovery."""

from __future__ import annotations

import socket
import subprocess
from http import HTTPStatus
from typing import Any
from unittest.mock import patch

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
)
from custom_components.ssh_callhome.engine.connection import HostKeyChanged
from custom_components.ssh_callhome.engine.keys import fingerprint, load_host_key
from custom_components.ssh_callhome.flow_forms import MAX_KEY_TEXT
from harness.dropbear import DropbearServer
from harness.flows import submit
from harness.network import LOOPBACK, SilentServer, free_port
from harness.openssh import OpenSSHServer

pytestmark = pytest.mark.usefixtures("ha_http_port")


def ssh_keygen_fingerprint(openssh: OpenSSHServer) -> str:
    """What `ssh-keygen -lf` prints for the server's key: the user's point of comparison."""
    output = subprocess.run(
        ["ssh-keygen", "-lf", str(openssh.host_key_path.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return output.split()[1]


async def start(hass: HomeAssistant, choice: str = "paste_key") -> ConfigFlowResult:
    """Open the flow and pick a way from its first menu."""
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert menu["type"] is FlowResultType.MENU
    assert menu["menu_options"] == ["paste_key", "generate_key"]
    return await submit(hass, menu, {"next_step_id": choice})


async def test_full_flow_pins_the_confirmed_host_key(
    hass: HomeAssistant, openssh: OpenSSHServer, user_input: dict[str, Any]
) -> None:
    form = await start(hass)
    assert form["type"] is FlowResultType.FORM
    assert form["step_id"] == "paste_key"

    confirm = await submit(hass, form, user_input)
    assert confirm["type"] is FlowResultType.FORM
    assert confirm["step_id"] == "confirm"
    placeholders = confirm["description_placeholders"]
    assert placeholders is not None
    assert placeholders["fingerprint"] == ssh_keygen_fingerprint(openssh)
    assert placeholders["algorithm"] == "ssh-ed25519"

    created = await submit(hass, confirm, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    assert created["title"] == f"{openssh.user}@{LOOPBACK}"
    assert created["data"] == {
        **user_input,
        CONF_HOST_KEY: openssh.host_public_key,
        CONF_SERVER_SOFTWARE: "openssh",
    }
    assert created["result"].unique_id == (
        f"{openssh.user}@{LOOPBACK}:{openssh.port}:{user_input[CONF_REMOTE_PORT]}"
    )
    # Every option is stored with the entry: nothing merges defaults later.
    assert created["result"].options == DEFAULT_OPTIONS
    assert created["result"].minor_version == ENTRY_MINOR_VERSION
    await hass.config_entries.async_unload(created["result"].entry_id)


async def finish(hass: HomeAssistant, flow: ConfigFlowResult, data: dict[str, Any]) -> None:
    """Submit corrected input and confirm: the flow must end in a new entry."""
    result = await submit(hass, flow, data)
    if result.get("step_id") == "confirm":
        result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(result["result"].entry_id)


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({CONF_HOST: ""}, CONF_HOST, "invalid_host"),
        ({CONF_HOST: "my server"}, CONF_HOST, "invalid_host"),
        ({CONF_HOST: "root@server"}, CONF_HOST, "invalid_host"),
        ({CONF_USERNAME: " "}, CONF_USERNAME, "invalid_username"),
        ({CONF_PRIVATE_KEY: "not a key"}, CONF_PRIVATE_KEY, "invalid_key"),
    ],
)
async def test_bad_values_are_field_errors(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    changes: dict[str, Any],
    field: str,
    error: str,
) -> None:
    form = await start(hass)
    result = await submit(hass, form, {**user_input, **changes})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    await finish(hass, result, user_input)


async def test_a_key_with_megabytes_after_it_is_refused_not_stored(
    hass: HomeAssistant, user_input: dict[str, Any]
) -> None:
    """asyncssh ignores what follows the END line: the cap, not the key's import, refuses it."""
    padded = user_input[CONF_PRIVATE_KEY] + "\n" + "x" * MAX_KEY_TEXT
    form = await start(hass)
    result = await submit(hass, form, {**user_input, CONF_PRIVATE_KEY: padded})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PRIVATE_KEY: "key_too_long"}
    await finish(hass, result, user_input)


@pytest.mark.parametrize(
    ("field", "port"),
    [(CONF_PORT, 0), (CONF_PORT, 70000), (CONF_REMOTE_PORT, 0), (CONF_REMOTE_PORT, 65536)],
)
async def test_ports_out_of_range_are_refused_by_the_form(
    hass: HomeAssistant, user_input: dict[str, Any], field: str, port: int
) -> None:
    """The number box's own range: the flow manager refuses the field, the step never runs."""
    form = await start(hass)
    with pytest.raises(InvalidData) as refused:
        await submit(hass, form, {**user_input, field: port})
    assert set(refused.value.schema_errors) == {field}
    await finish(hass, form, user_input)


async def test_out_of_range_through_the_rest_api_is_a_field_error(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, user_input: dict[str, Any]
) -> None:
    """What the frontend gets for it: 400 with the field's error, not a server error."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    form = await start(hass)
    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}", json={**user_input, CONF_PORT: 70000}
    )
    assert response.status == HTTPStatus.BAD_REQUEST
    assert set((await response.json())["errors"]) == {CONF_PORT}
    await finish(hass, form, user_input)


async def test_ports_stay_whole_numbers(hass: HomeAssistant, user_input: dict[str, Any]) -> None:
    """The number box gives floats; the entry keeps ints, which the engine and unique ID use."""
    confirm = await submit(hass, await start(hass), user_input)
    created = await submit(hass, confirm, {})
    assert type(created["data"][CONF_PORT]) is int
    assert type(created["data"][CONF_REMOTE_PORT]) is int
    assert str(created["result"].unique_id).endswith(
        f":{user_input[CONF_PORT]}:{user_input[CONF_REMOTE_PORT]}"
    )
    await hass.config_entries.async_unload(created["result"].entry_id)


async def test_key_with_lost_line_breaks_is_a_field_error(
    hass: HomeAssistant, user_input: dict[str, Any], client_key_text: str
) -> None:
    form = await start(hass)
    flattened = " ".join(client_key_text.splitlines())
    result = await submit(hass, form, {**user_input, CONF_PRIVATE_KEY: flattened})
    assert result["errors"] == {CONF_PRIVATE_KEY: "invalid_key"}
    await finish(hass, result, user_input)


@pytest.mark.parametrize("key_format", ["openssh", "pkcs8-pem"])
async def test_encrypted_key_needs_its_passphrase(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    client_key: asyncssh.SSHKey,
    key_format: str,
) -> None:
    encrypted = client_key.export_private_key(key_format, "correct horse", rounds=16).decode()
    with_key = {**user_input, CONF_PRIVATE_KEY: encrypted}
    form = await start(hass)
    missing = await submit(hass, form, with_key)
    assert missing["errors"] == {CONF_PASSPHRASE: "wrong_passphrase"}
    wrong = await submit(hass, missing, {**with_key, CONF_PASSPHRASE: "battery staple"})
    assert wrong["errors"] == {CONF_PASSPHRASE: "wrong_passphrase"}
    await finish(hass, wrong, {**with_key, CONF_PASSPHRASE: "correct horse"})


async def test_rejected_key_leads_to_the_restricted_line(
    hass: HomeAssistant,
    openssh: OpenSSHServer,
    user_input: dict[str, Any],
    authorized_line: str,
) -> None:
    openssh.set_authorized_keys([])
    confirm = await submit(hass, await start(hass), user_input)
    rejected = await submit(hass, confirm, {})
    assert rejected["step_id"] == "authorize"
    assert rejected["errors"] == {"base": "invalid_auth"}
    placeholders = rejected["description_placeholders"] or {}
    remote_port = user_input[CONF_REMOTE_PORT]
    public_half = " ".join(authorized_line.split()[:2])
    assert placeholders["line"] == (
        f'restrict,port-forwarding,permitlisten="{remote_port}",'
        f'permitopen="127.0.0.1:{remote_port}",command="/bin/false" '
        f"{public_half} ssh_callhome@test_home"
    )
    assert placeholders["command"] == f"echo '{placeholders['line']}' >> ~/.ssh/authorized_keys"
    assert placeholders["settings"].startswith(f"Match User {openssh.user}\n")
    assert f"    PermitListen {remote_port}\n" in placeholders["settings"]
    assert "    AllowStreamLocalForwarding no\n" in placeholders["settings"]
    still_rejected = await submit(hass, rejected, {})
    assert still_rejected["errors"] == {"base": "invalid_auth"}
    openssh.set_authorized_keys([placeholders["line"]])
    created = await submit(hass, still_rejected, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(created["result"].entry_id)


async def test_port_in_use_on_the_server_is_forward_refused(
    hass: HomeAssistant, user_input: dict[str, Any], port_thief: asyncssh.SSHClientConnection
) -> None:
    form = await start(hass)
    confirm = await submit(hass, form, user_input)
    result = await submit(hass, confirm, {})
    assert result["errors"] == {"base": "forward_refused"}
    await finish(hass, result, {**user_input, CONF_REMOTE_PORT: free_port()})


async def test_closed_port_is_cannot_connect(
    hass: HomeAssistant, user_input: dict[str, Any]
) -> None:
    form = await start(hass)
    result = await submit(hass, form, {**user_input, CONF_PORT: free_port()})
    assert result["errors"] == {"base": "cannot_connect"}
    await finish(hass, result, user_input)


async def test_unknown_host_is_cannot_connect(
    hass: HomeAssistant, user_input: dict[str, Any]
) -> None:
    # Name resolution needs a DNS server, which tests must not reach: its failure is simulated.
    form = await start(hass)
    with patch.object(
        hass.loop, "getaddrinfo", side_effect=socket.gaierror(socket.EAI_NONAME, "unknown")
    ):
        result = await submit(hass, form, {**user_input, CONF_HOST: "vps.example"})
    assert result["errors"] == {"base": "cannot_connect"}
    await finish(hass, result, user_input)


async def test_silent_server_is_cannot_connect(
    hass: HomeAssistant, user_input: dict[str, Any], silent_server: SilentServer
) -> None:
    form = await start(hass)
    with patch("custom_components.ssh_callhome.config_flow.FLOW_TIMEOUT", 0.5):
        result = await submit(hass, form, {**user_input, CONF_PORT: silent_server.port})
    assert result["errors"] == {"base": "cannot_connect"}
    await finish(hass, result, user_input)


FLOW = "custom_components.ssh_callhome.config_flow"
# What a call to the server may raise, and the error the form shows for it.
SERVER_FAILURES = [
    (socket.gaierror(socket.EAI_NONAME, "unknown"), "cannot_connect"),
    (ConnectionRefusedError(), "cannot_connect"),
    (TimeoutError(), "cannot_connect"),
    (asyncssh.ConnectionLost("gone"), "cannot_connect"),
    (asyncssh.PermissionDenied("no"), "invalid_auth"),
    (HostKeyChanged(asyncssh.generate_private_key("ssh-ed25519")), "host_key_changed"),
    (asyncssh.ChannelListenError("in use"), "forward_refused"),
    (RuntimeError("surprise"), "unknown"),
]


@pytest.mark.parametrize("call", ["fetch_host_key", "check_tunnel"])
@pytest.mark.parametrize(("failure", "error"), SERVER_FAILURES)
async def test_failed_server_call_is_a_form_error_then_recovers(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    call: str,
    failure: Exception,
    error: str,
) -> None:
    """Before the host key is confirmed, or in the real check after: a rejected key then leads
    on to the line that authorizes it, every other failure back to the form."""
    form = await start(hass)
    with patch(f"{FLOW}.{call}", side_effect=failure):
        failed = await submit(hass, form, user_input)
        if failed["step_id"] == "confirm":  # the check runs once the host key is confirmed
            failed = await submit(hass, failed, {})
    to_authorize = call == "check_tunnel" and error == "invalid_auth"
    assert failed["step_id"] == ("authorize" if to_authorize else "paste_key")
    assert failed["errors"] == {"base": error}
    if error == "unknown":
        assert "RuntimeError: surprise" in caplog.text
    assert "Traceback" not in caplog.text
    # Against the real server now; a host key confirmed before stays confirmed.
    await finish(hass, failed, {} if to_authorize else user_input)


async def test_same_tunnel_twice_is_aborted(
    hass: HomeAssistant, user_input: dict[str, Any]
) -> None:
    await finish(hass, await start(hass), user_input)
    again = await submit(hass, await start(hass), {**user_input, CONF_HOST: LOOPBACK + " "})
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"


@pytest.fixture
def stale_entry(
    hass: HomeAssistant, openssh: OpenSSHServer, user_input: dict[str, Any]
) -> MockConfigEntry:
    """An entry whose key (encrypted, with its passphrase) the server no longer accepts."""
    old_key = asyncssh.generate_private_key("ssh-ed25519")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="tunnel",
        unique_id="tunnel",
        data={
            **user_input,
            CONF_PRIVATE_KEY: old_key.export_private_key(
                "openssh", "old secret", rounds=16
            ).decode(),
            CONF_PASSPHRASE: "old secret",
            CONF_HOST_KEY: openssh.host_public_key,
        },
        options=DEFAULT_OPTIONS,
        minor_version=ENTRY_MINOR_VERSION,
    )
    entry.add_to_hass(hass)
    return entry


async def start_reauth(
    hass: HomeAssistant, entry: MockConfigEntry, choice: str
) -> ConfigFlowResult:
    menu = await entry.start_reauth_flow(hass)
    assert menu["type"] is FlowResultType.MENU
    assert menu["step_id"] == "reauth_confirm"
    return await submit(hass, menu, {"next_step_id": choice})


async def test_reauth_with_a_pasted_key(
    hass: HomeAssistant,
    openssh: OpenSSHServer,
    stale_entry: MockConfigEntry,
    user_input: dict[str, Any],
) -> None:
    form = await start_reauth(hass, stale_entry, "reauth_paste_key")
    garbled = await submit(hass, form, {CONF_PRIVATE_KEY: "-----BEGIN nothing"})
    assert garbled["errors"] == {CONF_PRIVATE_KEY: "invalid_key"}
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    rejected = await submit(hass, garbled, {CONF_PRIVATE_KEY: stranger})
    assert rejected["step_id"] == "authorize"
    assert rejected["errors"] == {"base": "invalid_auth"}
    # The user gives up on that key and pastes the authorized one instead.
    form = await start_reauth(hass, stale_entry, "reauth_paste_key")
    done = await submit(hass, form, {CONF_PRIVATE_KEY: user_input[CONF_PRIVATE_KEY]})
    assert done["type"] is FlowResultType.ABORT
    assert done["reason"] == "reauth_successful"
    assert stale_entry.data[CONF_PRIVATE_KEY] == user_input[CONF_PRIVATE_KEY]
    # The new key has no passphrase: the old one must not linger in the entry.
    assert CONF_PASSPHRASE not in stale_entry.data
    assert stale_entry.data[CONF_HOST_KEY] == openssh.host_public_key
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(stale_entry.entry_id)


async def test_reauth_with_a_generated_key(
    hass: HomeAssistant, openssh: OpenSSHServer, stale_entry: MockConfigEntry
) -> None:
    authorize = await start_reauth(hass, stale_entry, "reauth_generate_key")
    assert authorize["step_id"] == "authorize"
    assert authorize["errors"] == {}
    line = (authorize["description_placeholders"] or {})["line"]
    not_yet = await submit(hass, authorize, {})
    assert not_yet["errors"] == {"base": "invalid_auth"}
    openssh.set_authorized_keys([line])
    done = await submit(hass, not_yet, {})
    assert done["reason"] == "reauth_successful"
    new_key = asyncssh.import_private_key(stale_entry.data[CONF_PRIVATE_KEY])
    assert new_key.get_algorithm() == "ssh-ed25519"
    assert " ".join(line.split()[1:3]) == new_key.export_public_key().decode().strip()
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(stale_entry.entry_id)


async def test_generated_key_loops_until_the_server_accepts_it(
    hass: HomeAssistant, openssh: OpenSSHServer, user_input: dict[str, Any]
) -> None:
    openssh.set_authorized_keys([])
    server_only = {k: v for k, v in user_input.items() if k != CONF_PRIVATE_KEY}
    form = await start(hass, "generate_key")
    assert form["step_id"] == "generate_key"
    bad = await submit(hass, form, {**server_only, CONF_HOST: "my server"})
    assert bad["errors"] == {CONF_HOST: "invalid_host"}
    confirm = await submit(hass, bad, server_only)
    assert confirm["step_id"] == "confirm"
    authorize = await submit(hass, confirm, {})
    assert authorize["step_id"] == "authorize"
    assert authorize["errors"] == {}
    line = (authorize["description_placeholders"] or {})["line"]
    assert line.startswith('restrict,port-forwarding,permitlisten="')
    assert " ssh-ed25519 AAAA" in line
    not_yet = await submit(hass, authorize, {})
    assert not_yet["errors"] == {"base": "invalid_auth"}
    # The same key is offered again: a retry must not replace a key already on the server.
    assert (not_yet["description_placeholders"] or {})["line"] == line
    openssh.stop()
    down = await submit(hass, not_yet, {})
    assert down["errors"] == {"base": "cannot_connect"}
    openssh.set_authorized_keys([line])
    openssh.start()
    created = await submit(hass, down, {})
    assert created.get("errors") is None
    assert created["type"] is FlowResultType.CREATE_ENTRY
    stored = asyncssh.import_private_key(created["data"][CONF_PRIVATE_KEY])
    assert stored.export_public_key().decode().split()[1] == line.split()[2]
    assert CONF_PASSPHRASE not in created["data"]
    await hass.config_entries.async_unload(created["result"].entry_id)


@pytest.mark.parametrize(
    ("algorithm", "size"), [("ssh-dss", 1024), ("ssh-rsa", 1024), ("ssh-rsa", 2047)]
)
async def test_weak_keys_are_refused(
    hass: HomeAssistant, user_input: dict[str, Any], algorithm: str, size: int
) -> None:
    if algorithm == "ssh-rsa":
        key = asyncssh.generate_private_key(algorithm, key_size=size)
    else:
        key = asyncssh.generate_private_key(algorithm)
    weak = key.export_private_key()
    form = await start(hass)
    result = await submit(hass, form, {**user_input, CONF_PRIVATE_KEY: weak.decode()})
    assert result["errors"] == {CONF_PRIVATE_KEY: "weak_key"}
    await finish(hass, result, user_input)


async def test_dropbear_gets_its_own_line_and_the_flow_completes(
    hass: HomeAssistant, dropbear: DropbearServer
) -> None:
    # Dropbear with only an ed25519 host key offers RSA too, and aborts a client that picks it.
    dropbear.set_authorized_keys([])
    remote_port = free_port()
    server = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: dropbear.port,
        CONF_USERNAME: dropbear.user,
        CONF_REMOTE_PORT: remote_port,
    }
    confirm = await submit(hass, await start(hass, "generate_key"), server)
    assert confirm["step_id"] == "confirm"
    placeholders = confirm["description_placeholders"] or {}
    assert placeholders["fingerprint"] == fingerprint(load_host_key(dropbear.host_public_key))
    assert placeholders["algorithm"] == "ssh-ed25519"

    authorize = await submit(hass, confirm, {})
    assert authorize["step_id"] == "authorize_dropbear"
    placeholders = authorize["description_placeholders"] or {}
    line = placeholders["line"]
    options, public_half = line.split(" ", 1)
    assert options == (
        f'no-pty,no-agent-forwarding,no-X11-forwarding,permitopen="127.0.0.1:{remote_port}",'
        'command="/bin/false"'
    )
    assert placeholders["settings"] == 'DROPBEAR_EXTRA_ARGS="-s -K 15 -a"'

    # The line written for OpenSSH: Dropbear rejects the key whole, and the error says why.
    dropbear.set_authorized_keys(
        [f'restrict,port-forwarding,permitlisten="{remote_port}" {public_half}']
    )
    rejected = await submit(hass, authorize, {})
    assert rejected["step_id"] == "authorize_dropbear"
    assert rejected["errors"] == {"base": "invalid_auth_dropbear"}
    assert "Bad public key options" in dropbear.log

    dropbear.set_authorized_keys([line])
    created = await submit(hass, rejected, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    assert created["data"][CONF_SERVER_SOFTWARE] == "dropbear"
    assert created["data"][CONF_HOST_KEY] == dropbear.host_public_key
    assert f"Pubkey auth succeeded for '{dropbear.user}'" in dropbear.log
    await hass.config_entries.async_unload(created["result"].entry_id)
