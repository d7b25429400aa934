"""Attack (held): spellings of Home Assistant's own server for an extra forward over TCP.

Every spelling that a TCP connection from this machine would take to Home Assistant's own
port must be recognised, so that the forward is delivered in process with the visitor's
address instead of as plain TCP (every visitor local). Tried against the real resolver.
(`ip6-localhost` and `fe80::1%lo` neither resolve nor connect on this machine: not tried.)
"""

from __future__ import annotations

import pytest

from homeassistant.core import HomeAssistant

from custom_components.ssh_callhome.own_server import async_is_home_assistant_http

SPELLINGS = [
    "0x7f000001",
    "0x7f.1",
    "0177.0.0.1",
    "127.000.000.001",
    "127.1",
    "2130706433",
    "127.0.0.1.",
    "LOCALHOST",
    "LocalHost.",
    "foo.localhost",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "0:0:0:0:0:0:0:1",
    "::",
    "0",
    "0.0.0.0",
    "127.255.255.254",
]


@pytest.mark.parametrize("host", SPELLINGS)
async def test_every_spelling_of_home_assistant_is_caught(
    hass: HomeAssistant, ha_http_port: int, host: str
) -> None:
    assert await async_is_home_assistant_http(hass, host, ha_http_port)
