"""Coming from the SSH Call Home add-on: found through the Supervisor, imported by the config
flow against a real OpenSSH server, and stopped by a repair only when the user confirms.

The Supervisor's client is the one thing mocked (harness/supervisor.py): add-ons, states and
options as the Supervisor returns them. The tunnel runs against the real sshd.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import asyncssh
import pytest
from aiohasupervisor import SupervisorError

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY, SOURCE_USER
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util.dt import utcnow
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.addon import MAX_ADDONS_INSPECTED
from custom_components.ssh_callhome.const import (
    ADDON_SLUG,
    CONF_HOST_KEY,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
    DOMAIN,
    PERSISTENT_FAILURE_SECONDS,
)
from custom_components.ssh_callhome.engine.keys import fingerprint, load_host_key
from custom_components.ssh_callhome.engine.state import Reason, Status, TunnelState
from custom_components.ssh_callhome.flow_forms import MAX_KEY_TEXT
from harness.flows import submit, suggested_values
from harness.integration import DEVICE, load, state_of, tunnel_of
from harness.network import wait_until
from harness.openssh import OpenSSHServer
from harness.supervisor import (
    Addon,
    FakeSupervisor,
    addon_options,
    supervisor_client_replaced,
    supervisor_install,
)

pytestmark = pytest.mark.usefixtures("ha_http_port")

SLUG = "a0d7b954_ssh_callhome"
NAME = "SSH Call Home"
# Bounds of the waits on the real server, far above what they take (well under a second).
TUNNEL_WAIT = 10.0
# Refusals before the fix: the backoff then puts the next try of the forward at least
# 8 s x 0.8 (its jitter) away, about 7 s into the test.
REFUSALS_BEFORE_FIX = 4
# The tunnel is up this soon after the fix only because the fix asks it to try at once.
UP_AT_ONCE = 5.0
LAST_ERROR = f"sensor.{DEVICE}_last_error"
# Last error while the add-on holds the port: its state, and the add-on's name.
HELD_BY_THE_ADDON = ("port_held_by_addon", NAME)


@pytest.fixture
def addon(user_input: dict[str, Any]) -> Addon:
    """The add-on, stopped, with the options its users set: the same server, port and key."""
    options = addon_options(user_input)
    return Addon(SLUG, NAME, options)


@pytest.fixture
def supervisor(addon: Addon) -> FakeSupervisor:
    """A Supervisor with the add-on, and others beside it."""
    return FakeSupervisor(
        installed=[
            Addon("core_mosquitto", "Mosquitto broker", {"logins": [], "customize": {}}),
            addon,
            # Another tunnel with the same option names: not ours, by its name.
            Addon("local_autossh", "Autossh", dict(addon.options)),
        ]
    )


@pytest.fixture
def on_supervisor(hass: HomeAssistant, supervisor: FakeSupervisor) -> Iterator[FakeSupervisor]:
    with supervisor_install(hass, supervisor):
        yield supervisor


@pytest.fixture
def addon_running(addon: Addon, port_thief: asyncssh.SSHClientConnection) -> Addon:
    """The add-on running: its SSH session holds the remote port until it is stopped."""

    async def end_session() -> None:
        port_thief.close()
        await port_thief.wait_closed()

    addon.started = True
    addon.on_stop = end_session
    return addon


async def start(hass: HomeAssistant) -> dict[str, Any]:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert menu["type"] is FlowResultType.MENU
    return dict(menu)


async def import_through_the_menu(hass: HomeAssistant) -> Any:
    """The menu's import, the form submitted as filled in, the host key confirmed."""
    menu = await start(hass)
    assert menu["menu_options"] == ["import_addon", "paste_key", "generate_key"]
    form = await submit(hass, menu, {"next_step_id": "import_addon"})  # type: ignore[arg-type]
    assert form["step_id"] == "import_addon"
    confirm = await submit(hass, form, suggested_values(form))
    assert confirm["step_id"] == "confirm"
    return await submit(hass, confirm, {})


def changes_to_addons(supervisor: FakeSupervisor) -> list[str]:
    return [call for call in supervisor.calls if call.startswith(("stop", "options"))]


async def test_import_fills_in_the_addon_and_shows_the_restricted_line(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    openssh: OpenSSHServer,
    user_input: dict[str, Any],
) -> None:
    menu = await start(hass)
    assert menu["menu_options"] == ["import_addon", "paste_key", "generate_key"]
    form = await submit(hass, menu, {"next_step_id": "import_addon"})  # type: ignore[arg-type]
    assert form["description_placeholders"] == {"addon": NAME}
    # Everything but the key, which never goes to the browser.
    server_fields = {key: value for key, value in user_input.items() if key != CONF_PRIVATE_KEY}
    assert suggested_values(form) == server_fields

    confirm = await submit(hass, form, suggested_values(form))
    placeholders = confirm["description_placeholders"]
    assert placeholders is not None
    assert placeholders["fingerprint"] == fingerprint(load_host_key(openssh.host_public_key))

    restrict = await submit(hass, confirm, {})
    assert restrict["step_id"] == "addon_authorize"
    shown = restrict["description_placeholders"]
    assert shown is not None
    assert f'permitlisten="{user_input[CONF_REMOTE_PORT]}"' in shown["line"]
    assert f"PermitListen {user_input[CONF_REMOTE_PORT]}" in shown["settings"]
    assert shown["line"] in shown["script"]  # the one paste puts it in place of the add-on's

    created = await submit(hass, restrict, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    assert created["data"] == {
        **user_input,
        CONF_HOST_KEY: openssh.host_public_key,
        CONF_SERVER_SOFTWARE: "openssh",
    }
    await hass.async_block_till_done()
    await wait_until(lambda: state_of(hass) == STATE_ON, TUNNEL_WAIT, "tunnel up")
    assert changes_to_addons(on_supervisor) == []
    assert await hass.config_entries.async_unload(created["result"].entry_id)


async def test_discovered_flow_offers_the_addon(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, user_input: dict[str, Any]
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_INTEGRATION_DISCOVERY]
    assert flows[0]["context"]["title_placeholders"] == {"name": NAME}
    assert flows[0]["step_id"] == "import_addon"
    form = await hass.config_entries.flow.async_configure(flows[0]["flow_id"])
    assert suggested_values(form)[CONF_REMOTE_PORT] == user_input[CONF_REMOTE_PORT]


async def test_no_discovery_once_the_addon_is_imported(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    await hass.async_block_till_done()
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    menu = await start(hass)
    form = await submit(hass, menu, {"next_step_id": "import_addon"})  # type: ignore[arg-type]
    aborted = await submit(hass, form, suggested_values(form))
    assert aborted["reason"] == "already_configured"


async def test_without_a_supervisor_nothing_appears(
    hass: HomeAssistant, supervisor: FakeSupervisor
) -> None:
    """Container and Core: the Supervisor's client is never asked, the menu stays as it was."""
    with supervisor_client_replaced(supervisor):
        assert await async_setup_component(hass, DOMAIN, {})
        await hass.async_block_till_done()
        assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
        menu = await start(hass)
    assert menu["menu_options"] == ["paste_key", "generate_key"]
    assert supervisor.calls == []


@pytest.mark.parametrize("other", ["another add-on", "our name only", "our options only"])
async def test_other_addons_are_not_offered(
    hass: HomeAssistant, addon: Addon, supervisor: FakeSupervisor, other: str
) -> None:
    supervisor.installed = [
        {
            "another add-on": Addon("core_mosquitto", "Mosquitto broker", {"logins": []}),
            "our name only": Addon("local_ssh_callhome", NAME, {"server": "example.org"}),
            "our options only": Addon("local_autossh", "Autossh", addon.options),
        }[other]
    ]
    with supervisor_install(hass, supervisor):
        menu = await start(hass)
    assert menu["menu_options"] == ["paste_key", "generate_key"]


async def test_only_addons_with_our_name_are_asked_for_their_options(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    strangers = [Addon(f"repo{n}_ssh_call_home", "ssh-call-home", {}) for n in range(10)]
    on_supervisor.installed[:0] = strangers
    menu = await start(hass)
    assert menu["menu_options"] == ["paste_key", "generate_key"]
    asked = {call.partition(" ")[2] for call in on_supervisor.calls if call != "list"}
    print(f"add-ons asked for their options: {len(asked)} of {len(on_supervisor.installed)}")
    assert asked == {addon.slug for addon in strangers[:MAX_ADDONS_INSPECTED]}


async def test_a_supervisor_error_offers_nothing_and_breaks_nothing(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    on_supervisor.error = SupervisorError("Supervisor is restarting")
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    menu = await start(hass)
    assert menu["menu_options"] == ["paste_key", "generate_key"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_discovered_addon_gone_since_ends_the_flow(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    on_supervisor.installed = []
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_INTEGRATION_DISCOVERY}, data={ADDON_SLUG: SLUG}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "addon_not_found"


@pytest.mark.parametrize(
    ("key_text", "error"),
    [
        (lambda key: "not a key", "addon_key_unusable"),
        # asyncssh would load it, ignoring what follows the END line: the cap refuses it.
        (lambda key: key + "\n" + "x" * MAX_KEY_TEXT, "addon_key_too_long"),
    ],
    ids=["not_a_key", "padded_past_the_cap"],
)
async def test_an_unusable_key_in_the_addon_is_the_forms_error(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    addon: Addon,
    key_text: Callable[[str], str],
    error: str,
) -> None:
    addon.options["private_key"] = key_text(addon.options["private_key"])
    menu = await start(hass)
    form = await submit(hass, menu, {"next_step_id": "import_addon"})  # type: ignore[arg-type]
    result = await submit(hass, form, suggested_values(form))
    assert result["errors"] == {"base": error}


def refusals(history: Iterable[TunnelState]) -> int:
    return sum(
        state.status is Status.DISCONNECTED and state.last_error is Reason.FORWARD_REFUSED
        for state in history
    )


def addon_issue(hass: HomeAssistant, entry_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"addon_holds_port_{entry_id}")


def last_error(hass: HomeAssistant) -> tuple[str, str | None]:
    """The Last error sensor: its state, and the add-on it names."""
    state = hass.states.get(LAST_ERROR)
    assert state is not None, LAST_ERROR
    return state.state, state.attributes.get("addon")


async def fix_the_addon_issue(hass_client: ClientSessionGenerator, entry_id: str) -> Any:
    """The repair's fix as the frontend runs it: started, then confirmed; its last answer."""
    http = await hass_client()
    started = await http.post(
        "/api/repairs/issues/fix",
        json={"handler": DOMAIN, "issue_id": f"addon_holds_port_{entry_id}"},
    )
    form = await started.json()
    assert form["step_id"] == "confirm"
    assert form["description_placeholders"]["addon"] == NAME
    return await (await http.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})).json()


async def test_running_addon_gives_way_when_the_user_confirms(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    on_supervisor: FakeSupervisor,
    addon_running: Addon,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    # The flow's check finds the port taken: by the add-on, which is no reason to stop.
    restrict = await import_through_the_menu(hass)
    assert restrict["step_id"] == "addon_authorize"
    created = await submit(hass, restrict, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    entry_id = created["result"].entry_id

    await wait_until(lambda: addon_issue(hass, entry_id) is not None, TUNNEL_WAIT, "repair")
    tunnel = hass.config_entries.async_get_entry(entry_id).runtime_data.tunnel  # type: ignore[union-attr]
    assert tunnel.state.last_error == "forward_refused"
    await wait_until(
        lambda: refusals(tunnel.history) >= REFUSALS_BEFORE_FIX, 3 * TUNNEL_WAIT, "refusals"
    )
    issue = addon_issue(hass, entry_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["addon"] == NAME
    # Nothing done to the add-on without the user's word.
    assert changes_to_addons(on_supervisor) == []
    # The state says it too, through every retry of the forward.
    assert last_error(hass) == HELD_BY_THE_ADDON
    assert state_of(hass) == STATE_OFF

    done = await fix_the_addon_issue(hass_client, entry_id)
    assert done["type"] == "create_entry"

    waited = await wait_until(lambda: state_of(hass) == STATE_ON, UP_AT_ONCE, "tunnel up")
    print(f"tunnel up {waited:.2f} s after the add-on stopped")
    assert addon_issue(hass, entry_id) is None
    # Why it was last down, with nothing holding the port any more.
    assert last_error(hass) == ("forward_refused", None)
    # Boot set to manual, then stopped; its options untouched, nothing removed.
    assert changes_to_addons(on_supervisor) == [f"options {SLUG}", f"stop {SLUG}"]
    assert on_supervisor.changes == [(SLUG, {"boot": "manual"})]
    assert not addon_running.started
    assert await hass.config_entries.async_unload(entry_id)


async def test_stopping_fails_the_fix_says_so(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    on_supervisor: FakeSupervisor,
    addon_running: Addon,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, entry)
    await wait_until(lambda: addon_issue(hass, entry.entry_id) is not None, TUNNEL_WAIT, "repair")

    # The Supervisor still names the add-on when the fix looks again; only the change fails.
    async def busy(slug: str, options: object) -> None:
        raise SupervisorError("App is busy")

    monkeypatch.setattr(on_supervisor.addons, "set_addon_options", busy)
    done = await fix_the_addon_issue(hass_client, entry.entry_id)
    assert done["type"] == "abort"
    assert done["reason"] == "addon_stop_failed"
    assert addon_running.started
    assert last_error(hass) == HELD_BY_THE_ADDON
    failures = [record for record in caplog.records if "Could not stop" in record.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is None
    assert "App is busy" in failures[0].getMessage()


async def test_a_supervisor_that_does_not_answer_the_fixs_look_stops_nothing(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    on_supervisor: FakeSupervisor,
    addon_running: Addon,
    entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, entry)
    await wait_until(lambda: addon_issue(hass, entry.entry_id) is not None, TUNNEL_WAIT, "repair")
    on_supervisor.error = SupervisorError("Supervisor restarting")
    done = await fix_the_addon_issue(hass_client, entry.entry_id)
    print(done, on_supervisor.calls)
    assert done["type"] == "abort"
    assert done["reason"] == "addon_stop_failed"
    assert addon_running.started
    assert on_supervisor.changes == []
    assert addon_issue(hass, entry.entry_id) is not None, "a repair still true was removed"


@pytest.mark.parametrize("held_by", ["stopped add-on", "add-on on another port"])
async def test_no_addon_repair_when_something_else_holds_the_port(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    addon: Addon,
    port_thief: asyncssh.SSHClientConnection,
    entry: MockConfigEntry,
    held_by: str,
) -> None:
    if held_by == "add-on on another port":
        addon.started = True
        addon.options["remote_port"] += 1
    await load(hass, entry)
    await wait_until(
        lambda: entry.runtime_data.tunnel.state.last_error == "forward_refused",
        TUNNEL_WAIT,
        "forward refused",
    )
    await hass.async_block_till_done()
    assert any(call.startswith("info") for call in on_supervisor.calls)
    assert addon_issue(hass, entry.entry_id) is None
    assert last_error(hass) == ("forward_refused", None)


async def test_the_addon_repair_stands_in_for_the_general_one(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    addon_running: Addon,
    entry: MockConfigEntry,
) -> None:
    """The general repair of a lasting refusal would only guess what the add-on's one knows."""
    await load(hass, entry)
    await wait_until(lambda: addon_issue(hass, entry.entry_id) is not None, TUNNEL_WAIT, "repair")
    async_fire_time_changed(hass, utcnow() + timedelta(seconds=PERSISTENT_FAILURE_SECONDS + 1))
    await hass.async_block_till_done()
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, f"forward_refused_{entry.entry_id}") is None
    assert addon_issue(hass, entry.entry_id) is not None


async def test_the_state_stops_naming_the_addon_once_the_forward_is_taken(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, addon_running: Addon, entry: MockConfigEntry
) -> None:
    """The add-on stopped in the Supervisor's own page: the next try takes the forward."""
    await load(hass, entry)
    await wait_until(lambda: last_error(hass) == HELD_BY_THE_ADDON, TUNNEL_WAIT, "add-on shown")
    assert addon_running.on_stop is not None
    addon_running.started = False
    await addon_running.on_stop()
    tunnel_of(entry).request_reconnect()  # rather than wait for the backoff
    await wait_until(lambda: state_of(hass) == STATE_ON, TUNNEL_WAIT, "tunnel up")
    assert last_error(hass) == ("forward_refused", None)


async def test_the_state_stops_naming_the_addon_when_the_reason_changes(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    addon_running: Addon,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
) -> None:
    await load(hass, entry)
    await wait_until(lambda: last_error(hass) == HELD_BY_THE_ADDON, TUNNEL_WAIT, "add-on shown")
    openssh.stop()
    tunnel_of(entry).request_reconnect()
    await wait_until(lambda: last_error(hass)[0] != HELD_BY_THE_ADDON[0], TUNNEL_WAIT, "reason")
    assert last_error(hass) == ("refused", None)


async def test_after_the_fix_another_holder_of_the_port_is_not_the_addon(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    on_supervisor: FakeSupervisor,
    addon_running: Addon,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    client_key: asyncssh.SSHKey,
) -> None:
    """The add-on stops, and another session takes the port before the tunnel's next try."""
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, entry)
    await wait_until(lambda: last_error(hass) == HELD_BY_THE_ADDON, TUNNEL_WAIT, "add-on shown")
    stop_the_addon = addon_running.on_stop
    assert stop_the_addon is not None
    async with AsyncExitStack() as other_holder:

        async def stop_and_let_another_take_the_port() -> None:
            await stop_the_addon()
            await other_holder.enter_async_context(
                openssh.holding_remote_port(client_key, entry.data[CONF_REMOTE_PORT])
            )

        addon_running.on_stop = stop_and_let_another_take_the_port
        done = await fix_the_addon_issue(hass_client, entry.entry_id)
        assert done["type"] == "create_entry"
        tunnel = tunnel_of(entry)
        refused_before = refusals(tunnel.history)
        await wait_until(
            lambda: refusals(tunnel.history) > refused_before, TUNNEL_WAIT, "refused again"
        )
        await hass.async_block_till_done()
        assert last_error(hass) == ("forward_refused", None)
