"""Where the tunnel delivers connections: Home Assistant's own HTTP server, as configured."""

from __future__ import annotations

import pytest

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.ssh_callhome.targets import http_target


@pytest.mark.parametrize(
    ("server_host", "expected_host"),
    [
        (None, "127.0.0.1"),
        (["0.0.0.0", "::"], "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1"),
        (["192.0.2.10"], "192.0.2.10"),
    ],
)
async def test_target_follows_http_config(
    hass: HomeAssistant, server_host: list[str] | None, expected_host: str
) -> None:
    config: dict[str, object] = {"server_port": 8300}
    if server_host is not None:
        config["server_host"] = server_host
    assert await async_setup_component(hass, "http", {"http": config})
    assert http_target(hass) == (expected_host, 8300)
