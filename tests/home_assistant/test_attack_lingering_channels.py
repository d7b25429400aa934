"""Attack: channels the bridge closed itself linger at sshd, outside every cap.

When the bridge closes a channel (its request stalled, evicted, a bound broken) it frees the
place at once, before sshd confirms. sshd then writes what it still holds to the visitor before
it closes that connection; a visitor that asked for a large answer and reads nothing never lets
it. Each such connection stays open at sshd, with what it buffered, while its place serves the
visitor's next one: one address holds far more connections at sshd than the per-visitor cap.
The stall bound is scaled down here (1 s instead of 120 s); at full caps eviction does the same
after 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from unittest.mock import patch

import pytest

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.engine.aiohttp_internals import MAX_QUEUED_REQUESTS
from custom_components.ssh_callhome.engine.limits import (
    DEFAULT_MAX_CONNECTIONS_PER_VISITOR,
    ConnectionLimits,
)
from harness.ha_http import load_with_remote_view, serve_file
from harness.integration import tunnel_of
from harness.logs import keep_log_capture_small
from harness.network import connect_from, wait_until
from harness.openssh import OpenSSHServer

STALL_TIMEOUT = 1.0
ATTACKER = "127.0.0.10"
# Three times the per-visitor cap, opened one after another: each closed by the stall bound.
ROUNDS = 3 * DEFAULT_MAX_CONNECTIONS_PER_VISITOR
# Larger than every window and socket buffer on the way: the answer never fits.
LARGE = 32 * 1024 * 1024
REQUEST = b"GET /api/test_large HTTP/1.1\r\nHost: x\r\n\r\n"
# Closed by the stall bound after STALL_TIMEOUT, or at once: more requests pipelined behind the
# first than the bridge queues.
WAYS = {"stalled": REQUEST, "pipelined": REQUEST * (MAX_QUEUED_REQUESTS + 2)}


@pytest.fixture
def stalls_soon() -> Iterator[None]:
    with patch.object(
        builder_module, "ConnectionLimits", partial(ConnectionLimits, stall_timeout=STALL_TIMEOUT)
    ):
        yield


def rss_kib(pids: list[int]) -> int:
    """Resident memory of `pids` together, in KiB (sshd's per-connection processes)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def still_open(reader: asyncio.StreamReader) -> bool:
    """Whether sshd still holds the visitor's connection: neither closed nor reset.

    sshd resets a connection whose channel was refused: it closes it with the request unread.
    """
    return not reader.at_eof() and reader.exception() is None


@pytest.mark.parametrize("way", ["stalled", "pipelined"])
async def test_a_visitor_holds_no_more_connections_at_sshd_than_its_cap(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    stalls_soon: None,
    way: str,
) -> None:
    keep_log_capture_small(caplog)
    large = tmp_path / "large"
    with large.open("wb") as file:
        file.truncate(LARGE)
    serve_file(hass, "/api/test_large", large)
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    port = entry.data["remote_port"]
    sshd_before = rss_kib(openssh.sessions())
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []
    try:
        for _ in range(ROUNDS):
            reader, writer = await connect_from(port, ATTACKER)
            writer.write(WAYS[way])
            readers.append(reader)
            writers.append(writer)
            # Its place freed by the bridge: the next one may come.
            await wait_until(lambda: stats.active_connections == 0, 10, "the place freed")
        await asyncio.sleep(2 * STALL_TIMEOUT)
        open_at_sshd = sum(still_open(reader) for reader in readers)
        sshd_after = rss_kib(openssh.sessions())
        each = (sshd_after - sshd_before) / ROUNDS
        print(
            f"{way}: {open_at_sshd} of {ROUNDS} connections open at sshd with no place; "
            f"sshd RSS {sshd_before} -> {sshd_after} KiB ({each:.0f} KiB each)"
        )
        assert open_at_sshd <= DEFAULT_MAX_CONNECTIONS_PER_VISITOR
    finally:
        for writer in writers:
            writer.transport.abort()
