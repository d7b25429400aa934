"""The tunnel's own check with every place of the caps taken: real OpenSSH, Home Assistant's
real HTTP server. The check keeps a place of its own; when a visitor from its address takes that
place first, the refusal is the caps' verdict, not the path's: no self-healing reconnect. A
visitor from another address refused meanwhile leaves a failed check the path's failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from unittest.mock import patch

import asyncssh

from homeassistant.const import STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import (
    CONF_MAX_CONNECTIONS,
    CONF_MAX_CONNECTIONS_PER_VISITOR,
    CONF_PROBE_INTERVAL,
    CONF_REMOTE_PORT,
)
from custom_components.ssh_callhome.engine import tunnel as tunnel_module
from custom_components.ssh_callhome.engine.probe import (
    PROBE_ORIGINATOR,
    ProbeResult,
    ProbeSpec,
    probe_public_path,
)
from harness.ha_http import load_with_remote_view
from harness.integration import DEVICE, reachability, read_counters_now, tunnel_of
from harness.network import closed_at_once, connect_from, wait_until

ACTIVE = f"sensor.{DEVICE}_active_connections"
PLACES = 4
# Checks watched with every place taken: more than the 3 failures that make self-healing act.
CHECKS_WATCHED = 5
REQUEST = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\n\r\n"

type Probe = Callable[..., Awaitable[ProbeResult]]


class CheckSpy:
    """Wraps the check: records what each found; `before_each` runs just before each check.

    What the check found, before the engine makes a verdict of it (tunnel.py).
    """

    def __init__(self, probe: Probe) -> None:
        self._probe = probe
        self.results: list[ProbeResult] = []
        self.before_each: Callable[[], Awaitable[None]] | None = None
        # An answer to expect instead of the real one: the check then fails on its way.
        self.expected: bytes | None = None

    async def __call__(
        self, connection: asyncssh.SSHClientConnection, host: str, port: int, spec: ProbeSpec
    ) -> ProbeResult:
        if self.before_each is not None:
            await self.before_each()
        if self.expected is not None:
            spec = replace(spec, answer=self.expected)
        result = await self._probe(connection, host, port, spec)
        self.results.append(result)
        return result

    async def results_of_next(self, count: int) -> list[ProbeResult]:
        """The results of the next `count` checks."""
        start = len(self.results)
        await wait_until(lambda: len(self.results) >= start + count, 10, f"{count} checks")
        return self.results[start : start + count]


@asynccontextmanager
async def full_caps(
    hass: HomeAssistant, entry: MockConfigEntry
) -> AsyncIterator[tuple[CheckSpy, list[asyncio.StreamWriter]]]:
    """The entry loaded with a check every 0.2 s and every place taken by a visitor."""
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_MAX_CONNECTIONS: PLACES,
            CONF_MAX_CONNECTIONS_PER_VISITOR: PLACES,
            CONF_PROBE_INTERVAL: 0.2,
        },
    )
    spy = CheckSpy(probe_public_path)
    with patch.object(tunnel_module, "probe_public_path", spy):
        await load_with_remote_view(hass, entry)
        tunnel = tunnel_of(entry)
        await wait_until(lambda: tunnel.state.check_passed, 10, "check passes")
        port = entry.data[CONF_REMOTE_PORT]
        held = []
        for place in range(PLACES):
            _reader, writer = await connect_from(port, f"127.0.0.{place + 2}")
            writer.write(REQUEST[:20])  # a request under way
            held.append(writer)
        await wait_until(lambda: tunnel.stats.active_connections == PLACES, 5, "all held")
        assert await closed_at_once(port, "127.0.0.9")  # full: a visitor is refused
        yield spy, held
        for writer in held:
            writer.close()
        await wait_until(lambda: tunnel.stats.active_connections == 0, 5, "all closed")
        assert await hass.config_entries.async_unload(entry.entry_id)


async def caps_full_attribute(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    await read_counters_now(entry)
    state = hass.states.get(ACTIVE)
    assert state is not None
    return state.attributes["caps_full"]


async def test_the_check_keeps_its_place_when_every_place_is_taken(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, entry: MockConfigEntry
) -> None:
    async with full_caps(hass, entry) as (spy, held):
        tunnel = tunnel_of(entry)
        assert await caps_full_attribute(hass, entry) is True
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        assert diagnostics["caps_full"] is True
        results = await spy.results_of_next(CHECKS_WATCHED)
        print(f"checks with every place taken: {results}")
        assert set(results) == {ProbeResult.REACHABLE}
        assert reachability(hass) == (STATE_ON, "reachable")
        assert (tunnel.state.self_heals, tunnel.state.reconnects) == (0, 0)
        assert tunnel.stats.active_connections == PLACES  # nobody was dropped
        held.pop().close()
        await wait_until(lambda: tunnel.stats.active_connections < PLACES, 5, "a place free")
        assert await caps_full_attribute(hass, entry) is False


async def test_a_check_refused_at_full_caps_is_no_verdict(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """A visitor from the check's own address arrives just before each check and takes its place."""
    async with full_caps(hass, entry) as (spy, _held):
        tunnel = tunnel_of(entry)
        port = entry.data[CONF_REMOTE_PORT]
        impostors: list[asyncio.StreamWriter] = []

        def arrivals() -> int:
            return tunnel.stats.active_connections + tunnel.stats.connections_refused

        async def visitor_from_the_checks_address() -> None:
            before = arrivals()
            _reader, writer = await connect_from(port, PROBE_ORIGINATOR)
            writer.write(REQUEST[:20])
            impostors.append(writer)
            await wait_until(lambda: arrivals() > before, 5, "impostor in or refused")

        spy.before_each = visitor_from_the_checks_address
        results = await spy.results_of_next(CHECKS_WATCHED)
        spy.before_each = None
        print(f"checks that met a visitor in their place: {results}")
        assert set(results) == {ProbeResult.WRONG_ANSWER}  # refused: the server closed it
        assert tunnel.state.reachability is ProbeResult.CAPS_FULL  # what the engine makes of it
        assert reachability(hass) == (STATE_UNKNOWN, "caps_full")
        assert (tunnel.state.self_heals, tunnel.state.reconnects) == (0, 0)
        assert tunnel.state.failed_check is None  # the heartbeat goes on, no repair
        # The first impostor kept the check's place; the others met the caps like the check.
        assert tunnel.stats.active_connections == PLACES + 1
        for writer in impostors:
            writer.close()


async def test_another_visitor_refused_during_a_failing_check_leaves_the_failure(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Every place taken, a visitor from another address is refused just before each check,
    and the check fails on its way (it expects another answer)."""
    async with full_caps(hass, entry) as (spy, _held):
        tunnel = tunnel_of(entry)
        port = entry.data[CONF_REMOTE_PORT]
        verdicts: list[ProbeResult | None] = []
        tunnel.add_listener(lambda state: verdicts.append(state.reachability))

        async def another_visitor_refused() -> None:
            refused = tunnel.stats.connections_refused
            assert await closed_at_once(port, "127.0.0.9")  # not the check's address
            await wait_until(
                lambda: tunnel.stats.connections_refused > refused, 5, "visitor refused"
            )

        spy.expected = b"another home"  # what this Home Assistant does not answer
        spy.before_each = another_visitor_refused
        results = await spy.results_of_next(2)
        spy.before_each = spy.expected = None  # the check passes again: no self-healing
        await wait_until(lambda: len(set(verdicts)) > 1, 5, "a verdict after the checks")
        print(f"checks failing while another visitor was refused: {results}, {set(verdicts)}")
        assert set(results) == {ProbeResult.WRONG_ANSWER}
        assert ProbeResult.CAPS_FULL not in verdicts
        assert ProbeResult.WRONG_ANSWER in verdicts
