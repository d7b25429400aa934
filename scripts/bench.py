"""Benchmark: OpenSSH's `ssh -N -R` against the integration, into real Home Assistants.

The add-on's way (`ssh -N -R`) and the integration (in process), side by side in each round,
with Home Assistant reached directly as the ceiling, into a Home Assistant serving plain HTTP
and one serving HTTPS itself. Prints every figure's median over the rounds, its spread and its
ratio to OpenSSH of the same scheme, then the targets. BENCH_MIB sets the size of the transfers
(256 by default), BENCH_ROUNDS the number of rounds (3), BENCH_SCHEMES the schemes (http,https);
BENCH_QUICK=1 leaves out the two slow figures (first request, dead link), BENCH_BASELINE adds
another checkout's integration beside this one (rig.py).

With --profile it measures nothing else: py-spy samples Home Assistant during downloads,
uploads, kept-alive requests and 50 clients' requests (BENCH_PROFILE_LOADS picks some of
down,up,kept,clients), in process over HTTP and HTTPS and through `ssh -N -R` over HTTPS, and
prints the main thread's top functions for each.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.network import wait_for_port
from harness.processes import signal_all
from scripts.benchmark import figures
from scripts.benchmark.head_bound import measure_head_bound
from scripts.benchmark.profile import PySpy, print_shares, top_functions, top_inclusive
from scripts.benchmark.report import Round, print_report
from scripts.benchmark.rig import IN_PROCESS, SCHEMES, SSH, Rig, Route, route_name

TRANSFER_MIB = int(os.environ.get("BENCH_MIB", "256"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BENCH_SCHEMES = tuple(os.environ.get("BENCH_SCHEMES", ",".join(SCHEMES)).split(","))
QUICK = os.environ.get("BENCH_QUICK") == "1"
# With --profile, the loads profiled: down, up, kept (kept-alive requests), clients.
PROFILE_LOADS = os.environ.get("BENCH_PROFILE_LOADS", "down,up,kept,clients").split(",")
BASELINE = os.environ.get("BENCH_BASELINE")
LATENCY_REQUESTS = 2000
FIRST_BYTE_REQUESTS = 20
# Profiled: HTTPS in process and through ssh -N -R (Home Assistant's thread either way), and
# HTTP in process.
PROFILED = (("https", IN_PROCESS), ("https", SSH), ("http", IN_PROCESS))
CLIENTS, REQUESTS_EACH = 50, 100
DEAD_LINK_LIMIT = 60.0
PY_SPY = Path(sys.executable).with_name("py-spy")
GiB = 1024**3


def main() -> int:
    """Start everything, measure each route in every round (or profile), report, stop."""
    if sys.argv[1:] == ["--head-bound"]:
        measure_head_bound()
        return 0
    profiling = sys.argv[1:] == ["--profile"]
    if sys.argv[1:] and not profiling:
        print(f"usage: {sys.argv[0]} [--profile | --head-bound]", file=sys.stderr)
        return 2
    rig = Rig(TRANSFER_MIB, BENCH_SCHEMES, Path(BASELINE) if BASELINE else None)
    try:
        rig.start()
        pids = ", ".join(f"{name} {site.ha.pid}" for name, site in rig.sites.items())
        print(f"Home Assistant pids: {pids}; {TRANSFER_MIB} MiB transfers")
        if profiling:
            profile(rig)
        else:
            print_report(run_rounds(rig))
    finally:
        rig.stop()
    return 0


def run_rounds(rig: Rig) -> list[Round]:
    """ROUNDS rounds, each reported done as it ends."""
    rounds = []
    for number in range(1, ROUNDS + 1):
        rounds.append(run_round(rig))
        print(f"round {number} of {ROUNDS} done", flush=True)
    return rounds


def profile(rig: Rig) -> None:
    """Home Assistant's main thread, sampled during each load on each profiled route."""
    print("(sampled: each figure is somewhat worse than without the profiler)")
    for scheme, kind in PROFILED:
        route = rig.routes.get(route_name(scheme, kind))
        if route is not None:
            profile_route(route)


def profile_route(route: Route) -> None:
    """The main thread's top functions during downloads, kept-alive requests, 50 clients."""
    base = route.base
    size = TRANSFER_MIB * figures.MiB
    small = f"{base}/local/small.json"

    async def downloads() -> str:
        speeds = [await figures.download(f"{base}/local/big.bin", size) for _ in range(5)]
        return "MB/s " + ", ".join(f"{speed:.0f}" for speed in speeds)

    async def uploads() -> str:
        url = f"{base}/api/bench_probe/sink"
        speeds = [await figures.upload(url, size) for _ in range(5)]
        return "MB/s " + ", ".join(f"{speed:.0f}" for speed in speeds)

    async def kept_alive() -> str:
        kept = await figures.latencies(small, LATENCY_REQUESTS, keep_alive=True)
        return f"p50 {kept.p50:.2f} ms"

    async def clients() -> str:
        return f"{await figures.requests_per_second(small, CLIENTS, REQUESTS_EACH):.0f} req/s"

    loads = {
        ("down", f"5 downloads of {TRANSFER_MIB} MiB"): downloads,
        ("up", f"5 uploads of {TRANSFER_MIB} MiB"): uploads,
        ("kept", f"{LATENCY_REQUESTS} requests on one kept-alive connection"): kept_alive,
        ("clients", f"{CLIENTS} clients x {REQUESTS_EACH} requests"): clients,
    }
    for (short, name), load in loads.items():
        if short not in PROFILE_LOADS:
            continue
        with PySpy(route.site.ha.pid, PY_SPY) as spy:
            result = asyncio.run(load())
        print(f"\n== {route.name}, {name}: {result}")
        print_shares("Main thread, by own time:", top_functions(spy.lines))
        print_shares("Main thread, with callees:", top_inclusive(spy.lines))


def run_round(rig: Rig) -> Round:
    """Every figure of every route once; each route begins with its Home Assistant quiet."""
    result = {}
    for route in rig.routes.values():
        asyncio.run(figures.until_quiet(route.site.ha.pid))
        result[route.name] = asyncio.run(traffic_figures(rig, route))
    if QUICK:
        return result
    for route in rig.tunnels():
        result[route.name]["first request s"] = asyncio.run(first_request(rig, route))
    for name, seconds in dead_link_detection(rig).items():
        result[name]["dead link s"] = seconds
    return result


async def traffic_figures(rig: Rig, route: Route) -> dict[str, float]:
    """Transfers, latencies and load through one route."""
    size = TRANSFER_MIB * figures.MiB
    ssh = route.site.ssh if route.kind == SSH else None
    pids = {"HA": route.site.ha.pid} | ({"ssh": ssh.pid} if ssh else {})
    await loop_lag(route)  # only what the download causes counts
    with figures.CpuMeter(pids) as cpu:
        down = await figures.download(f"{route.base}/local/big.bin", size)
    lag = await loop_lag(route)
    result = {
        "down MB/s": down,
        "HA CPU s/GiB": cpu.spent["HA"] * GiB / size,
        "loop lag p50 ms": lag["p50"],
        "loop lag p99 ms": lag["p99"],
        "loop lag max ms": lag["max"],
    }
    if "ssh" in cpu.spent:
        result["ssh CPU s/GiB"] = cpu.spent["ssh"] * GiB / size
    result["up MB/s"] = await figures.upload(f"{route.base}/api/bench_probe/sink", size)
    small = f"{route.base}/local/small.json"
    kept = await figures.latencies(small, LATENCY_REQUESTS, keep_alive=True)
    new = await figures.latencies(small, LATENCY_REQUESTS, keep_alive=False)
    result |= {
        "keep-alive p50 ms": kept.p50,
        "keep-alive p99 ms": kept.p99,
        "new-conn p50 ms": new.p50,
        "new-conn p99 ms": new.p99,
        "new-conn > 30 ms": new.slow,
    }
    result["50x100 req/s"] = await figures.requests_per_second(small, CLIENTS, REQUESTS_EACH)
    # Last: the downloads it cuts short end while the next figure would be measured.
    large = f"{route.base}/local/big.bin"
    result["first byte ms"] = await figures.first_byte_ms(small, large, FIRST_BYTE_REQUESTS)
    return result


async def loop_lag(route: Route) -> dict[str, float]:
    """The event-loop lateness of the route's Home Assistant since the last call.

    Asked directly, not tunnelled.
    """
    url = f"{route.site.ha.url}/api/bench_probe/lag"
    connector = aiohttp.TCPConnector(ssl=False)  # its throwaway self-signed certificate
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as reply:
        return dict(await reply.json())


async def first_request(rig: Rig, route: Route) -> float:
    """Seconds from starting the tunnel (ssh, or loading the entry) to a request served."""
    url = f"{route.base}/local/small.json"
    if route.entry_id is None:
        rig.stop_ssh(route.site)
        await wait_for_port(route.port, accepting=False, timeout=30)

        async def start() -> None:
            rig.start_ssh(route.site)

    else:

        async def start() -> None:
            await asyncio.to_thread(rig.reload_entry, route)

    seconds = await figures.seconds_until_served(url, start)
    if route.sensor is not None:
        await asyncio.to_thread(rig.wait_sensor, route, "on")
    return seconds


def dead_link_detection(rig: Rig) -> dict[str, float]:
    """Freeze every sshd session at once; seconds until each client notices; then recover.

    A stopped server process is a link that went silent: nothing is closed, nothing answers.
    ssh notices by exiting; an entry by turning its Tunnel sensor off.
    """
    frozen = signal_all(rig.sshd.sessions(), signal.SIGSTOP)
    start = time.monotonic()
    pending = {route.name: route for route in rig.tunnels()}
    noticed: dict[str, float] = {}
    while pending and time.monotonic() - start < DEAD_LINK_LIMIT:
        for name, route in list(pending.items()):
            ssh = route.site.ssh
            down = (
                ssh is not None and ssh.poll() is not None
                if route.sensor is None
                else (route.site.ha.state(route.sensor) != "on")
            )
            if down:
                noticed[name] = time.monotonic() - start
                del pending[name]
        time.sleep(0.02)
    signal_all(frozen, signal.SIGKILL)
    for site in rig.sites.values():
        rig.start_ssh(site)
    for route in rig.tunnels():
        if route.sensor is not None:
            rig.wait_sensor(route, "on")
    for site in rig.sites.values():
        asyncio.run(wait_for_port(site.ssh_port, accepting=True, timeout=60))
    if pending:
        raise RuntimeError(f"not noticed within {DEAD_LINK_LIMIT} s: {', '.join(pending)}")
    return noticed


if __name__ == "__main__":
    sys.exit(main())
