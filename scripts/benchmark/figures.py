"""The measurements, each over one route into Home Assistant, from this (the visitor's) process."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp

from harness.processes import stat_fields

MiB = 1024 * 1024
SLOW_MS = 30.0
# The concurrent clients' own loopback addresses begin here (127.0.1.1, 127.0.1.2, ...): each
# is a visitor of its own to the integration's caps, as the clients of a household are.
CLIENT_ADDRESS_BASE = "127.0.1."
# And those of the connections closed after a large file's first bytes: until the SSH server
# has closed such a channel too, it counts against its visitor's cap.
FIRST_BYTE_ADDRESS_BASE = "127.0.2."


def _connector(**options: object) -> aiohttp.TCPConnector:
    """A connector that takes Home Assistant's throwaway self-signed certificate (ssl=False)."""
    return aiohttp.TCPConnector(ssl=False, **options)  # type: ignore[arg-type]


def _cpu_seconds(pid: int) -> float:
    """User and system time of a process and all its threads so far."""
    fields = stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
    return ticks / 100.0  # USER_HZ is 100 on Linux


class CpuMeter:
    """CPU seconds spent by some processes while a block runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._start = {name: _cpu_seconds(pid) for name, pid in self._pids.items()}
        return self

    def __exit__(self, *_exc: object) -> None:
        self.spent = {
            name: _cpu_seconds(pid) - self._start[name] for name, pid in self._pids.items()
        }


# Quiet: a process that used less than this share of a core over QUIET_WINDOW seconds.
QUIET_SHARE = 0.1
QUIET_WINDOW = 0.5
# Downloads cut short over HTTPS leave Home Assistant busy for seconds: asyncio's own sendfile
# copies the rest of the file into a TLS connection that is shutting down (and logs a warning
# for each piece). 256 MiB took about 25 s here; the bound leaves room for a slow machine.
QUIET_LIMIT = 120.0


async def until_quiet(pid: int) -> float:
    """Wait until the process is quiet; the seconds that took (at most QUIET_LIMIT)."""
    start = time.perf_counter()
    while time.perf_counter() - start < QUIET_LIMIT:
        before = _cpu_seconds(pid)
        await asyncio.sleep(QUIET_WINDOW)
        if _cpu_seconds(pid) - before < QUIET_SHARE * QUIET_WINDOW:
            break
    return time.perf_counter() - start


async def download(url: str, size: int) -> float:
    """MB/s of one GET of `size` bytes."""
    async with aiohttp.ClientSession(connector=_connector()) as session:
        start = time.perf_counter()
        async with session.get(url) as reply:
            received = 0
            async for chunk in reply.content.iter_chunked(MiB):
                received += len(chunk)
        took = time.perf_counter() - start
    if received != size:
        raise RuntimeError(f"{url}: {received} bytes instead of {size}")
    return size / took / 1e6


async def upload(url: str, size: int) -> float:
    """MB/s of one POST of `size` bytes to the sink."""
    block = bytes(MiB)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield block

    async with aiohttp.ClientSession(connector=_connector()) as session:
        start = time.perf_counter()
        async with session.post(url, data=body()) as reply:
            counted = (await reply.json())["bytes"]
        took = time.perf_counter() - start
    if counted != size:
        raise RuntimeError(f"{url}: the sink counted {counted} bytes instead of {size}")
    return size / took / 1e6


class Latencies:
    """Request times in ms, sorted."""

    def __init__(self, times_ms: list[float]) -> None:
        self.times = sorted(times_ms)

    @property
    def p50(self) -> float:
        """The median."""
        return statistics.median(self.times)

    @property
    def p99(self) -> float:
        """The 99th percentile."""
        return self.times[int(len(self.times) * 0.99)]

    @property
    def slow(self) -> int:
        """How many took longer than SLOW_MS."""
        return sum(1 for time_ms in self.times if time_ms > SLOW_MS)


async def latencies(url: str, count: int, keep_alive: bool) -> Latencies:
    """`count` small GETs one after the other, on one connection or each on a new one."""
    times = []
    connector = _connector(force_close=not keep_alive, limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(count):
            start = time.perf_counter()
            async with session.get(url) as reply:
                await reply.read()
            times.append((time.perf_counter() - start) * 1000)
    return Latencies(times)


async def first_byte_ms(small: str, large: str, count: int) -> float:
    """Median ms from asking for `large` to its body's first bytes, on a warm connection.

    Each time a new connection, warmed with a request for `small` (so that neither a new
    connection's set-up nor a TLS handshake counts), then closed after those first bytes; each
    from a loopback address of its own.
    """
    times = []
    for number in range(count):
        source = (f"{FIRST_BYTE_ADDRESS_BASE}{number + 1}", 0)
        async with aiohttp.ClientSession(
            connector=_connector(limit=1, local_addr=source)
        ) as session:
            async with session.get(small) as reply:
                await reply.read()
            start = time.perf_counter()
            async with session.get(large) as reply:
                await reply.content.readany()
                times.append((time.perf_counter() - start) * 1000)
                reply.close()
    return statistics.median(times)


async def requests_per_second(url: str, clients: int, each: int) -> float:
    """`clients` keep-alive clients each making `each` small GETs in turn; all requests/s.

    Each client comes from a loopback address of its own.
    """

    async def client(number: int) -> None:
        source = (f"{CLIENT_ADDRESS_BASE}{number + 1}", 0)
        connector = _connector(limit=1, local_addr=source)
        async with aiohttp.ClientSession(connector=connector) as session:
            await started.wait()
            for _ in range(each):
                async with session.get(url) as reply:
                    await reply.read()
                    reply.raise_for_status()

    started = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        for number in range(clients):
            group.create_task(client(number))
        await asyncio.sleep(0)  # every client has its session before the clock starts
        start = time.perf_counter()
        started.set()
    took = time.perf_counter() - start
    return clients * each / took


async def seconds_until_served(url: str, restart: Callable[[], Awaitable[None]]) -> float:
    """From `restart()` to the first GET of `url` answered with 200; polled every 10 ms."""
    deadline = 60.0
    start = time.perf_counter()
    await restart()
    timeout = aiohttp.ClientTimeout(total=1)
    async with aiohttp.ClientSession(connector=_connector(), timeout=timeout) as session:
        while time.perf_counter() - start < deadline:
            try:
                async with session.get(url) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - start
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.01)
    raise RuntimeError(f"{url} not served within {deadline} s")
