"""Attack, round 2, through the tunnel: where the head bound ends a real client's chunked upload.

curl uploads through a real OpenSSH server into Home Assistant's real HTTP server twice on one
connection: first to a view that answers after 64 bytes, as Home Assistant's webhooks do (aiohttp
reads the rest of the body itself: its lingering), then to one that reads it all. The bound must
take neither body for a head (too soon: the channel closed) and end the first where curl did, so
that the second request is parsed on the same connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.engine import bridge
from harness.ha_http import load_with_remote_view, through

VISITOR = "127.0.0.2"
MiB = 1024 * 1024
# 3 MiB of what looks like a chunked body's end and a request's head.
UPLOAD = (b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n" + b"\r\n" * 100 + bytes(range(256))) * (3 * MiB // 500)
DIGEST = hashlib.sha256(UPLOAD).hexdigest()


class EarlyAnswer(HomeAssistantView):
    """Answers after the first 64 bytes of the body, as a webhook nobody registered does."""

    url = "/api/test_early"
    name = "api:test_early"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        await request.content.read(64)
        return web.Response(text="early ")


class Digest(HomeAssistantView):
    """Reads the whole body and answers its digest."""

    url = "/api/test_digest"
    name = "api:test_digest"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        async for data in request.content.iter_any():
            digest.update(data)
        return web.Response(text=digest.hexdigest())


async def test_curls_chunked_uploads_answered_early_then_late_share_their_connection(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=bridge.__name__)
    hass.http.register_view(EarlyAnswer())
    hass.http.register_view(Digest())
    await load_with_remote_view(hass, entry)
    upload = tmp_path / "upload"
    upload.write_bytes(UPLOAD)
    chunked = ["-sS", "--interface", VISITOR, "--max-time", "60", "--data-binary", f"@{upload}"]
    chunked += ["-H", "Transfer-Encoding: chunked"]
    process = await asyncio.create_subprocess_exec(
        "curl", *chunked, through(entry, EarlyAnswer.url),
        "--next", *chunked, "-w", " %{num_connects}", through(entry, Digest.url),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    answer, _ = await process.communicate()
    # The second transfer's count of new connections: 0 where it reused the first's.
    assert answer.decode() == f"early {DIGEST} 0"
    assert "beyond the bounds" not in caplog.text
