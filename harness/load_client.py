"""The load test's visitors, in a process of their own so that Home Assistant's event loop is
measured without them: N concurrent connections, each uploading and downloading random data
with a SHA-256 check both ways. Prints one JSON line of results."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time

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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
