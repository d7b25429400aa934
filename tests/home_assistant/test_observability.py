"""The tunnel explains itself: every entity and the events through connect, refused forward,
drop and recovery against a real OpenSSH server; the public-path probe three ways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncssh
import pytest

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT, EVENT_STATE_CHANGED
from harness.integration import (
    DEVICE,
    ENTRY_ID,
    REACHABLE,
    TUNNEL,
    load,
    reachability,
    read_counters_now,
    state_of,
)
from harness.network import LOOPBACK, serve_http, wait_until
from harness.openssh import OpenSSHServer

LAST_ERROR = f"sensor.{DEVICE}_last_error"
CONNECTED_SINCE = f"sensor.{DEVICE}_connected_since"
RECONNECTS = f"sensor.{DEVICE}_reconnects"
ACTIVE = f"sensor.{DEVICE}_active_connections"
RECEIVED = f"sensor.{DEVICE}_data_received"
SENT = f"sensor.{DEVICE}_data_sent"
ROUND_TRIP = f"sensor.{DEVICE}_round_trip_time"


@pytest.fixture
def round_trip_enabled(hass: HomeAssistant, entity_registry: er.EntityRegistry) -> None:
    """The round-trip sensor is disabled by default; the tests want to see it."""
    entity_registry.async_get_or_create(
        "sensor",
        "ssh_callhome",
        f"{ENTRY_ID}_round_trip_time",
        suggested_object_id=f"{DEVICE}_round_trip_time",
        disabled_by=None,
    )


async def test_every_entity_and_event_through_refusal_drop_and_recovery(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    port_thief: asyncssh.SSHClientConnection,
    round_trip_enabled: None,
    hass_access_token: str,
) -> None:
    events: list[Event[Any]] = async_capture_events(hass, EVENT_STATE_CHANGED)
    await load(hass, entry)

    # The remote port is held by another session: the forward is refused and retried.
    await wait_until(lambda: state_of(hass, LAST_ERROR) == "forward_refused", 10, "refusal")
    assert state_of(hass, TUNNEL) == STATE_OFF
    assert state_of(hass, REACHABLE) == STATE_OFF
    assert state_of(hass, CONNECTED_SINCE) == STATE_UNKNOWN

    port_thief.close()
    await wait_until(lambda: state_of(hass, TUNNEL) == STATE_ON, 10, "tunnel up")
    await wait_until(lambda: state_of(hass, REACHABLE) == STATE_ON, 10, "probe answered")
    assert state_of(hass, CONNECTED_SINCE) != STATE_UNKNOWN
    assert state_of(hass, LAST_ERROR) == "forward_refused"  # the last error, not a current one
    assert state_of(hass, RECONNECTS) == "0"

    url = f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}/api/"
    headers = {"Authorization": f"Bearer {hass_access_token}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        assert reply.status == 200
        await reply.read()
        await read_counters_now(entry)
        assert state_of(hass, ACTIVE) == "1"  # this very request, still open
    await asyncio.sleep(0.1)
    await read_counters_now(entry)
    assert state_of(hass, ACTIVE) == "0"
    assert float(state_of(hass, RECEIVED)) > 0
    assert float(state_of(hass, SENT)) > 0
    assert 0 < float(state_of(hass, ROUND_TRIP)) < 1000

    openssh.stop()
    await wait_until(lambda: state_of(hass, TUNNEL) == STATE_OFF, 3, "drop seen")
    assert state_of(hass, LAST_ERROR) == "connection_lost"
    assert state_of(hass, REACHABLE) == STATE_OFF
    assert state_of(hass, CONNECTED_SINCE) == STATE_UNKNOWN
    await read_counters_now(entry)
    assert state_of(hass, ROUND_TRIP) == STATE_UNKNOWN

    openssh.start()
    await wait_until(lambda: state_of(hass, TUNNEL) == STATE_ON, 10, "tunnel back")
    assert state_of(hass, RECONNECTS) == "1"

    assert [
        (event.data["old_status"], event.data["new_status"], event.data["reason"])
        for event in events
    ] == [
        ("disconnected", "disconnected", "forward_refused"),
        ("disconnected", "connected", None),
        ("connected", "disconnected", "connection_lost"),
        ("disconnected", "connected", None),
    ]
    assert {event.data["entry_id"] for event in events} == {entry.entry_id}


@pytest.fixture
async def impostor(socket_enabled: None, entry: MockConfigEntry) -> AsyncIterator[None]:
    """Something that is not Home Assistant, holding the remote port on IPv4 loopback."""

    runner = await serve_http(entry.data[CONF_REMOTE_PORT], b"not Home Assistant")
    yield
    await runner.cleanup()


async def test_probe_off_when_something_else_answers_on_the_port(
    hass: HomeAssistant, entry: MockConfigEntry, impostor: None
) -> None:
    # sshd binds the port on ::1 alone and reports success: the tunnel is "up" but visitors
    # on 127.0.0.1 reach the impostor. Exactly the case the probe is for.
    await load(hass, entry)
    await wait_until(lambda: state_of(hass, TUNNEL) == STATE_ON, 10, "tunnel up")
    await wait_until(
        lambda: reachability(hass) == (STATE_OFF, "wrong_answer"),
        10,
        "probe",
    )


async def test_probe_unknown_when_the_server_forbids_it(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    openssh.stop()
    openssh.allow_forwarding = "remote"
    openssh.start()
    await load(hass, entry)
    await wait_until(lambda: state_of(hass, TUNNEL) == STATE_ON, 10, "tunnel up")
    await wait_until(
        lambda: reachability(hass)[1] == "forbidden", 10, "probe refused by the server"
    )
    assert state_of(hass, REACHABLE) == STATE_UNKNOWN
