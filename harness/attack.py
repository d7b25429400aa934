"""Hostile visitors for the attack tests: raw bytes on a tunnelled connection, bounded.

Each helper sends what a hostile visitor would, within a byte and time bound of its own, and
reports what it managed (bytes sent, whether the server closed the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_EXPOSE, EXPOSE_WEBHOOKS

from .ha_http import load_with_remote_view

MiB = 1024 * 1024
# What one write of a flooding visitor carries: two SSH packets' worth.
BLOCK = b"x" * 65536


async def up(hass: HomeAssistant, entry: MockConfigEntry, exposure: str) -> None:
    """Load `entry` exposing Home Assistant (`home_assistant`) or webhooks only; tunnel up.

    The webhook component is set up either way: its handler is reachable without a login.
    """
    if exposure == EXPOSE_WEBHOOKS:
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_EXPOSE: EXPOSE_WEBHOOKS}
        )
    assert await async_setup_component(hass, "webhook", {})
    await load_with_remote_view(hass, entry)


async def stream_until_closed(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    at_most: int,
    seconds: float,
    block: bytes = BLOCK,
) -> int:
    """`block`s until the server closes, `at_most` bytes or `seconds` have gone; bytes sent.

    Each write waits at most `seconds` for the server to take it (a server that stops reading).
    """
    sent = 0
    deadline = time.monotonic() + seconds
    with contextlib.suppress(OSError, TimeoutError):
        while (
            sent < at_most
            and time.monotonic() < deadline
            and not reader.at_eof()
            and not writer.transport.is_closing()
        ):
            writer.write(block)
            sent += len(block)
            await asyncio.wait_for(writer.drain(), seconds)
    return sent


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds (reading what comes)."""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
            return True
    return False
