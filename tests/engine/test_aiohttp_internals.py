"""aiohttp's private API as the engine reaches into it for file responses: what the reach relies
on, and what it does with a copy or a file that is not as it expects.

Files through a real tunnel into Home Assistant: tests/home_assistant/test_aiohttp_internals.py.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from custom_components.ssh_callhome.engine import aiohttp_internals

AIOHTTP_CHUNK = 256 * 1024  # what FileResponse copies at a time unless told otherwise
# The tunnel's chunk is the Home Assistant layer's choice; any larger than the file does here.
CHUNK = 4 * AIOHTTP_CHUNK
SMALL_SIZE = 1024


def test_what_the_reach_relies_on_is_there() -> None:
    assert web.FileResponse(os.devnull)._chunk_size == AIOHTTP_CHUNK
    assert web.FileResponse._send_headers_immediately is True
    aiohttp_internals._file_response_problem.cache_clear()
    assert aiohttp_internals._file_response_problem() is None


def test_a_copy_that_takes_other_parameters_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    async def other_copy(self: web.FileResponse, writer: object, fobj: object) -> None: ...

    monkeypatch.setattr(web.FileResponse, "_sendfile_fallback", other_copy)
    aiohttp_internals._file_response_problem.cache_clear()
    try:
        problem = aiohttp_internals._file_response_problem()
    finally:
        aiohttp_internals._file_response_problem.cache_clear()
    assert problem == (
        "_sendfile_fallback(self, writer, fobj) is not "
        "_sendfile_fallback(self, writer, fobj, offset, count)"
    )


class _FailingReader(io.BufferedReader):
    """A file that opens and stats as any other, and fails when read (a disk error)."""

    def read(self, size: int | None = -1) -> bytes:
        raise OSError(errno.EIO, "Input/output error")


def test_a_file_that_fails_to_read_is_left_to_aiohttps_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"x" * SMALL_SIZE)
    monkeypatch.setattr(Path, "open", lambda self, mode="r": _FailingReader(io.FileIO(self)))
    response = web.FileResponse(path)
    reader = aiohttp_internals._ReadWithOpening(response, CHUNK)
    # The opening still succeeds (no 404 for a read error); aiohttp's copy then reads again
    # and fails the response as it would have.
    _, file, stat, _ = response._make_response(make_mocked_request("GET", "/"), "")
    assert file is not None
    assert stat.st_size == SMALL_SIZE
    assert reader._content is None
    file.close()
