"""aiohttp's private API, as the integration reaches into it: file downloads through the tunnel
are copied in larger chunks, and with another aiohttp they are copied as aiohttp does by itself,
with one warning."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import aiohttp_internals, asyncssh_internals
from custom_components.ssh_callhome.bridge import ChannelTransport
from custom_components.ssh_callhome.targets import TUNNEL_FILE_CHUNK

from .test_bridge import serve_file, through, up, visitor

AIOHTTP_CHUNK = 256 * 1024  # what FileResponse copies at a time unless told otherwise
FILE_SIZE = 3 * TUNNEL_FILE_CHUNK + 1234


def off_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == asyncssh_internals.__name__ and record.levelno == logging.WARNING
    ]


def written_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every write to a tunnelled connection from now on."""
    sizes: list[int] = []
    write = ChannelTransport.write

    def recording_write(self: ChannelTransport, data: bytes | bytearray | memoryview) -> None:
        sizes.append(len(data))
        write(self, data)

    monkeypatch.setattr(ChannelTransport, "write", recording_write)
    return sizes


async def download_through(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path
) -> tuple[bytes, bytes]:
    """A file served as Home Assistant serves /local, fetched through the tunnel twice."""
    content = os.urandom(FILE_SIZE)
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    serve_file(hass, "/api/test_chunks", path)
    await up(hass, entry)
    async with visitor("127.0.0.2") as session:
        for _ in range(2):  # a second request on the same connection is handled alike
            async with session.get(through(entry, "/api/test_chunks")) as reply:
                assert await reply.read() == content
    return content, path.read_bytes()


async def test_what_the_reach_relies_on_is_there(hass: HomeAssistant, ha_http_port: int) -> None:
    assert hass.http.runner is not None
    server = hass.http.runner.server
    assert server is not None
    protocol = server()
    assert isinstance(protocol, aiohttp.web_protocol.RequestHandler)
    assert callable(protocol._request_handler)
    assert web.FileResponse(os.devnull)._chunk_size == AIOHTTP_CHUNK


async def test_files_through_the_tunnel_go_in_larger_chunks(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sizes = written_sizes(monkeypatch)
    await download_through(hass, entry, tmp_path)
    file_chunks = [size for size in sizes if size > AIOHTTP_CHUNK // 2]  # not headers, not the rest
    assert file_chunks == [TUNNEL_FILE_CHUNK] * 3 * 2  # three whole chunks a download
    assert off_warnings(caplog) == []


async def test_with_another_aiohttp_files_go_in_its_own_chunks_and_one_warning_says_so(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(asyncssh_internals, "_REPORTED_OFF", set())
    monkeypatch.delattr(aiohttp.web_protocol, "RequestHandler")  # renamed, in that aiohttp
    sizes = written_sizes(monkeypatch)
    await download_through(hass, entry, tmp_path)
    assert max(sizes) == AIOHTTP_CHUNK
    warnings = off_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{aiohttp_internals.FILE_CHUNKS} turned off: aiohttp ")
