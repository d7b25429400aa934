"""aiohttp's private API, as the integration reaches into it: files through the tunnel are copied
in larger chunks, their headers sent with the first chunk, a small one read as it is opened (a
large one's first piece), and with another aiohttp they are sent as aiohttp does by itself, with
one warning."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.engine import aiohttp_internals, private_api
from custom_components.ssh_callhome.engine.aiohttp_internals import FIRST_PIECE
from custom_components.ssh_callhome.engine.bridge import ChannelTransport
from custom_components.ssh_callhome.targets import TUNNEL_FILE_CHUNK
from harness.ha_http import load_with_remote_view, serve_file, through, visitor

AIOHTTP_CHUNK = 256 * 1024  # what FileResponse copies at a time unless told otherwise
REST = 1234
BIG_SIZE = 3 * TUNNEL_FILE_CHUNK + REST
SMALL_SIZE = 1024
HEADERS_AT_MOST = 1024
VISITOR = "127.0.0.2"
VISITOR_AS_SEEN = "64:ff9b:1::7f00:2"  # as Home Assistant sees it


def off_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == private_api.__name__ and record.levelno == logging.WARNING
    ]


def written_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every write to the visitor's tunnelled connections from now on.

    Not the tunnel's own check (the Reachable sensor's request), which may come at any time.
    """
    sizes: list[int] = []
    write = ChannelTransport.write

    def recording_write(self: ChannelTransport, data: bytes | bytearray | memoryview) -> None:
        if self.get_extra_info("peername")[0] == VISITOR_AS_SEEN:
            sizes.append(len(data))
        write(self, data)

    monkeypatch.setattr(ChannelTransport, "write", recording_write)
    return sizes


async def writes_per_download(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[int, list[list[int]]]:
    """For a big and a small file, served as /local is: the writes of each of two downloads."""
    sizes = written_sizes(monkeypatch)
    files = {size: os.urandom(size) for size in (BIG_SIZE, SMALL_SIZE)}
    for size, content in files.items():
        (tmp_path / f"{size}.bin").write_bytes(content)
        serve_file(hass, f"/api/test_{size}", tmp_path / f"{size}.bin")
    await load_with_remote_view(hass, entry)
    writes: dict[int, list[list[int]]] = {size: [] for size in files}
    async with visitor(VISITOR) as session:
        for size, content in files.items():
            for _ in range(2):  # a second request on the same connection is handled alike
                sizes.clear()
                async with session.get(through(entry, f"/api/test_{size}")) as reply:
                    assert await reply.read() == content
                writes[size].append(list(sizes))
    return writes


async def test_home_assistants_server_makes_aiohttps_request_handlers(
    hass: HomeAssistant, ha_http_port: int
) -> None:
    """What the file responses' reach meets in Home Assistant (its own checks: tests/engine)."""
    assert hass.http.runner is not None
    server = hass.http.runner.server
    assert server is not None
    protocol = server()
    assert isinstance(protocol, aiohttp.web_protocol.RequestHandler)
    assert callable(protocol._request_handler)


def chunk_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(offset, size) of every first chunk aiohttp reads in an executor job of its own from now."""
    reads: list[tuple[int, int]] = []
    seek_and_read = web.FileResponse._seek_and_read

    def recording(self: web.FileResponse, fobj: IO[Any], offset: int, chunk_size: int) -> bytes:
        reads.append((offset, chunk_size))
        return seek_and_read(self, fobj, offset, chunk_size)

    monkeypatch.setattr(web.FileResponse, "_seek_and_read", recording)
    return reads


async def test_a_small_file_is_read_as_it_is_opened_a_part_of_it_as_aiohttp_reads_it(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = chunk_reads(monkeypatch)
    content = os.urandom(SMALL_SIZE)
    (tmp_path / "small.bin").write_bytes(content)
    serve_file(hass, "/api/test_small", tmp_path / "small.bin")
    await load_with_remote_view(hass, entry)
    url = through(entry, "/api/test_small")
    async with visitor(VISITOR) as session:
        async with session.get(url) as reply:
            assert await reply.read() == content
        assert reads == []  # no executor job of its own: read when it was opened
        async with session.get(url, headers={"Range": "bytes=10-19"}) as reply:
            assert reply.status == 206
            assert await reply.read() == content[10:20]
        assert reads == [(10, TUNNEL_FILE_CHUNK)]
        (tmp_path / "small.bin").write_bytes(content[:100])  # changed: read as it is now
        async with session.get(url) as reply:
            assert await reply.read() == content[:100]
        assert len(reads) == 1


async def test_files_through_the_tunnel_go_in_larger_chunks_headers_with_the_first(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writes = await writes_per_download(hass, entry, tmp_path, monkeypatch)
    for first, *rest in writes[BIG_SIZE]:
        # The first piece, read with the opening, goes out with the headers at once.
        assert FIRST_PIECE < first <= FIRST_PIECE + HEADERS_AT_MOST
        last = TUNNEL_FILE_CHUNK - FIRST_PIECE + REST
        assert rest == [TUNNEL_FILE_CHUNK, TUNNEL_FILE_CHUNK, last]
    for small in writes[SMALL_SIZE]:
        assert len(small) == 1  # headers and body in one write: one SSH packet
        assert SMALL_SIZE < small[0] <= SMALL_SIZE + HEADERS_AT_MOST
    assert off_warnings(caplog) == []


async def test_with_another_aiohttp_files_go_as_aiohttp_sends_them_and_one_warning_says_so(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(private_api, "_REPORTED_OFF", set())
    monkeypatch.delattr(aiohttp.web_protocol, "RequestHandler")  # renamed, in that aiohttp
    writes = await writes_per_download(hass, entry, tmp_path, monkeypatch)
    for download in writes[BIG_SIZE]:
        assert max(download) == AIOHTTP_CHUNK
    for small in writes[SMALL_SIZE]:
        assert len(small) == 2  # headers first, then the body
    # One warning for each reach that is off, whatever the number of connections.
    assert sorted(off_warnings(caplog)) == [
        f"{off} turned off: aiohttp {aiohttp.__version__} is not as expected "
        "(no aiohttp.web_protocol.RequestHandler)"
        for off in sorted([aiohttp_internals.FILE_RESPONSES, aiohttp_internals.REQUEST_BOUNDS])
    ]
