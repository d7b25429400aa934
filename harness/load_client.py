"""The load and flood tests' visitors, in a process of their own so that Home Assistant's event
loop and memory are measured without them.

Load: N concurrent connections, each uploading and downloading random data with a SHA-256 check
both ways. Flood (`flood` as the first argument): visitors from given loopback addresses that
stream an endless request body, and silent ones that send nothing, for a given time. Heads
(`heads` as the first argument): visitors from given loopback addresses that send header lines
without end, after one complete request when asked, and connect again whenever closed. Each
prints one JSON line of results."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from urllib.parse import urlsplit

import aiohttp


async def one_visitor(session: aiohttp.ClientSession, url: str, size: int) -> str:
    """'ok', 'corrupt' or the error's name."""
    upload = os.urandom(size)
    try:
        async with session.post(url, data=upload) as reply:
            body = await reply.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        return type(error).__name__
    received_ok = reply.headers.get("X-Digest-In") == hashlib.sha256(upload).hexdigest()
    sent_ok = reply.headers.get("X-Digest-Out") == hashlib.sha256(body).hexdigest()
    return "ok" if received_ok and sent_ok and len(body) == size else "corrupt"


async def main(url: str, visitors: int, size: int) -> None:
    """All visitors at once; the result line goes to stdout."""
    connector = aiohttp.TCPConnector(limit=visitors, force_close=True)
    timeout = aiohttp.ClientTimeout(total=300)
    start = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(*(one_visitor(session, url, size) for _ in range(visitors)))
    outcome = {
        "seconds": round(time.monotonic() - start, 2),
        "ok": results.count("ok"),
        "corrupt": results.count("corrupt"),
        "errors": [result for result in results if result not in ("ok", "corrupt")],
    }
    print(json.dumps(outcome), flush=True)


_BLOCK = b"x" * 65536
# An upload that never ends, as far as the server can tell.
_ENDLESS_UPLOAD = (
    "POST {path} HTTP/1.1\r\nHost: flood\r\nContent-Type: application/octet-stream\r\n"
    "Content-Length: 1000000000000\r\n\r\n"
)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (what a visitor beyond the caps sees first)."""
    try:
        return await reader.read(1) == b""
    except OSError:
        return True


async def _stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> None:
    """Send the endless upload until the connection is closed or the task is cancelled."""
    writer.write(_ENDLESS_UPLOAD.format(path=path).encode())
    with contextlib.suppress(OSError):
        while not reader.at_eof():
            writer.write(_BLOCK)
            await writer.drain()


async def flood_visitor(
    host: str, port: int, source: str, path: str | None, stop: asyncio.Event
) -> str:
    """One visitor: streams to `path`, or says nothing when it is None. 'closed' or 'held'."""
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    except OSError:
        return "closed"
    sending = asyncio.create_task(_stream(reader, writer, path)) if path else None
    closing = asyncio.create_task(_closed(reader))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({closing, stopping}, return_when=asyncio.FIRST_COMPLETED)
    outcome = "closed" if closing.done() and closing.result() else "held"
    for task in (sending, closing, stopping):
        if task is not None:
            task.cancel()
    writer.transport.abort()
    return outcome


async def flood(
    url: str, streaming: list[str], silent: list[str], each: int, seconds: float
) -> None:
    """`each` visitors from every address of `streaming` and of `silent`, for `seconds`."""
    parts = urlsplit(url)
    host, port = str(parts.hostname), int(parts.port or 80)
    stop = asyncio.Event()
    visitors: list[tuple[str, str | None]] = [
        (source, parts.path) for source in streaming for _ in range(each)
    ]
    visitors += [(source, None) for source in silent for _ in range(each)]
    tasks = [
        asyncio.create_task(flood_visitor(host, port, source, path, stop))
        for source, path in visitors
    ]
    print(json.dumps({"started": len(tasks)}), flush=True)
    await asyncio.sleep(seconds)
    stop.set()
    results = await asyncio.gather(*tasks)
    print(json.dumps({"held": results.count("held"), "closed": results.count("closed")}))


# A request whose header lines never end, as far as the server can tell.
ENDLESS_HEAD_START = b"POST /api/webhook/x HTTP/1.1\r\nHost: flood\r\n"
_HEAD_LINES = b"X-A: b\r\n" * 8192  # 64 KiB a write
REQUEST = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\n\r\n"


async def send_endless_head(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    at_most: int,
    start: bytes = ENDLESS_HEAD_START,
) -> int:
    """`start`, then header lines until the server closes the connection or `at_most` bytes;
    bytes sent."""
    sent = len(start)
    writer.write(start)
    with contextlib.suppress(OSError):
        # Once the connection is lost asyncio takes writes without a word: stop then too.
        while sent < at_most and not reader.at_eof() and not writer.transport.is_closing():
            writer.write(_HEAD_LINES)
            sent += len(_HEAD_LINES)
            await writer.drain()
    return sent


async def answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """The head of the answer to REQUEST, sent on the connection (b"" when it is closed)."""
    writer.write(REQUEST)
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return head
    return b""


# Connections one head flooder opens at most, however fast they are closed.
_MAX_ROUNDS = 10_000


async def head_visitor(
    host: str, port: int, source: str, request_first: bool, stop: asyncio.Event
) -> dict[str, int]:
    """One address's visitor: connects, floods a head, connects again, until `stop`."""
    outcome = {"connections": 0, "sent": 0, "closed": 0}
    for _ in range(_MAX_ROUNDS):
        if stop.is_set():
            break
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.1)
            continue
        outcome["connections"] += 1
        if not request_first or await answered(reader, writer):
            flooding = asyncio.create_task(send_endless_head(reader, writer, 1 << 40))
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({flooding, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if flooding in done:
                outcome["sent"] += flooding.result()
                outcome["closed"] += 1
            for task in (flooding, stopping):
                task.cancel()
        writer.transport.abort()
    return outcome


async def heads(
    url: str, sources: list[str], each: int, request_first: bool, seconds: float
) -> None:
    """`each` head flooders from every address of `sources`, for `seconds`."""
    parts = urlsplit(url)
    host, port = str(parts.hostname), int(parts.port or 80)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(head_visitor(host, port, source, request_first, stop))
        for source in sources
        for _ in range(each)
    ]
    print(json.dumps({"started": len(tasks)}), flush=True)
    await asyncio.sleep(seconds)
    stop.set()
    results = await asyncio.gather(*tasks)
    print(json.dumps({key: sum(result[key] for result in results) for key in results[0]}))


if __name__ == "__main__":
    if sys.argv[1] == "heads":
        sources, each, request_first = sys.argv[3].split(","), int(sys.argv[4]), sys.argv[5] == "1"
        asyncio.run(heads(sys.argv[2], sources, each, request_first, float(sys.argv[6])))
    elif sys.argv[1] == "flood":
        streaming, silent = sys.argv[3].split(","), sys.argv[4].split(",")
        asyncio.run(flood(sys.argv[2], streaming, silent, int(sys.argv[5]), float(sys.argv[6])))
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
