"""Repairs for failures that last, the logbook's words, and a long outage's log lines."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest

from homeassistant.const import STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import DOMAIN, EVENT_STATE_CHANGED
from custom_components.ssh_callhome.engine.backoff import BackoffPolicy
from custom_components.ssh_callhome.engine.state import Reason
from custom_components.ssh_callhome.logbook import REASON_WORDS, async_describe_events
from harness.integration import load, state_of
from harness.network import wait_until
from harness.openssh import OpenSSHServer

# Five minutes in production; a second here, with the rest of the timing unchanged.
WAIT = 1.0


@pytest.fixture(autouse=True)
def short_wait() -> Iterator[None]:
    with patch("custom_components.ssh_callhome.repairs.PERSISTENT_FAILURE_SECONDS", WAIT):
        yield


async def break_and_load(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer, broken: str
) -> None:
    """Restart the server without forwarding, or without the key, and load the entry."""
    openssh.stop()
    if broken == "forward_refused":
        openssh.allow_forwarding = "no"
    else:
        openssh.set_authorized_keys([])
    openssh.start()
    await load(hass, entry)
    await wait_until(lambda: entry.runtime_data.tunnel.state.last_error == broken, 10, broken)


async def mend(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer, authorized_line: str
) -> None:
    openssh.stop()
    openssh.allow_forwarding = "yes"
    openssh.set_authorized_keys([authorized_line])
    openssh.start()
    entry.runtime_data.tunnel.request_reconnect()
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel up")


@pytest.mark.parametrize(
    ("broken", "issue"), [("forward_refused", "forward_refused"), ("auth", "auth_failing")]
)
async def test_a_lasting_failure_raises_a_repair_until_it_is_gone(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    authorized_line: str,
    broken: str,
    issue: str,
) -> None:
    await break_and_load(hass, entry, openssh, broken)
    registry = ir.async_get(hass)
    issue_id = f"{issue}_{entry.entry_id}"
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    await wait_until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, 5, "issue")
    raised = registry.async_get_issue(DOMAIN, issue_id)
    assert raised is not None
    assert raised.translation_placeholders == {
        "title": entry.title,
        "remote_port": str(entry.data["remote_port"]),
        "minutes": "0",
    }
    await mend(hass, entry, openssh, authorized_line)
    assert registry.async_get_issue(DOMAIN, issue_id) is None


async def test_a_brief_refusal_raises_nothing(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer, authorized_line: str
) -> None:
    await break_and_load(hass, entry, openssh, "forward_refused")
    await mend(hass, entry, openssh, authorized_line)
    await asyncio.sleep(WAIT * 1.5)
    assert ir.async_get(hass).issues == {}


def describe(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, str]:
    described: dict[str, Any] = {}

    def register(domain: str, event_type: str, describer: Any) -> None:
        described[event_type] = describer

    async_describe_events(hass, register)
    return described[EVENT_STATE_CHANGED](Event(EVENT_STATE_CHANGED, data))  # type: ignore[no-any-return]


async def test_logbook_lines(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    up = {
        "entry_id": entry.entry_id,
        "old_status": "disconnected",
        "new_status": "connected",
        "reason": None,
    }
    down = {**up, "old_status": "connected", "new_status": "disconnected", "reason": "host_key"}
    assert describe(hass, up) == {"name": entry.title, "message": "tunnel connected"}
    assert describe(hass, down) == {
        "name": entry.title,
        "message": "tunnel disconnected because the server presented a different host key",
    }
    gone = {**down, "entry_id": "removed", "reason": None}
    assert describe(hass, gone) == {
        "name": "SSH Call Home",
        "message": "tunnel disconnected because it was closed",
    }


def test_every_reason_has_logbook_words() -> None:
    assert set(REASON_WORDS) == set(Reason)


def quick_backoff(maximum: float) -> BackoffPolicy:
    """The default policy's shape, compressed: a long outage's retries in a few seconds."""
    return BackoffPolicy(initial=0.01, maximum=0.05, jitter=0.2, stable_after=60)


async def test_a_long_outage_is_two_log_lines(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with patch("custom_components.ssh_callhome.builder.BackoffPolicy", quick_backoff):
        await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    attempts: list[str] = []
    entry.runtime_data.tunnel.add_listener(lambda state: attempts.append(state.status))
    caplog.clear()
    openssh.stop()
    # At the 300 s cap a 2-hour outage is 24 retries (plus the first, shorter ones): make 60.
    await wait_until(lambda: attempts.count("connecting") >= 60, 20, "60 retries")
    openssh.start()
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel back")
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.ssh_callhome")
        and record.levelno >= logging.INFO
    ]
    assert len(lines) == 2, lines
    assert "is down (connection_lost)" in lines[0]
    assert "is up again after" in lines[1]
