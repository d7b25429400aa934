"""Benchmark: OpenSSH's `ssh -N -R` against the integration, into one real Home Assistant.

The add-on's way (`ssh -N -R`), the integration's TCP mode and its in-process mode, in one run;
prints a table with ratios. Everything runs on loopback: an OpenSSH server, a Home Assistant
2026.2.3 process with a large file under /local, one `ssh -R` client, and two entries of the
integration (one per mode).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.home_assistant import HomeAssistantProcess, add_tunnel_entry
from tests.helpers.network import LOOPBACK, free_port, port_accepts
from tests.helpers.openssh import OpenSSHServer

DOWNLOAD_MIB = int(os.environ.get("BENCH_MIB", "256"))
REQUESTS = 300
MiB = 1024 * 1024


async def download_rate(url: str) -> float:
    """MB/s for the big file."""
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        async with session.get(url) as reply:
            size = 0
            async for chunk in reply.content.iter_chunked(MiB):
                size += len(chunk)
        took = time.perf_counter() - start
    assert size == DOWNLOAD_MIB * MiB, size
    return size / took / 1e6


async def latencies(url: str, keep_alive: bool) -> tuple[float, float]:
    """p50 and p99 in ms of small requests, on one connection or a new one each."""
    connector = aiohttp.TCPConnector(force_close=not keep_alive, limit=1)
    times = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(REQUESTS):
            start = time.perf_counter()
            async with session.get(url) as reply:
                await reply.read()
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


async def measure(base: str) -> dict[str, float]:
    """Every figure for one path into Home Assistant."""
    down = await download_rate(f"{base}/local/big.bin")
    keep50, keep99 = await latencies(f"{base}/manifest.json", keep_alive=True)
    new50, new99 = await latencies(f"{base}/manifest.json", keep_alive=False)
    return {
        "down MB/s": down,
        "keep-alive p50 ms": keep50,
        "keep-alive p99 ms": keep99,
        "new-conn p50 ms": new50,
        "new-conn p99 ms": new99,
    }


def ssh_reverse(
    sshd: OpenSSHServer, key_path: Path, remote_port: int, ha_port: int
) -> subprocess.Popen[bytes]:
    """OpenSSH's client holding the same kind of forward, as the add-on ran it."""
    known = key_path.with_name("known_hosts")
    known.write_text(f"[{LOOPBACK}]:{sshd.port} {sshd.host_public_key}\n")
    return subprocess.Popen(
        [
            "ssh",
            "-N",
            "-F",
            "/dev/null",
            "-i",
            str(key_path),
            "-p",
            str(sshd.port),
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "Ciphers=aes128-gcm@openssh.com",
            "-o",
            "ServerAliveInterval=30",
            "-R",
            f"{LOOPBACK}:{remote_port}:{LOOPBACK}:{ha_port}",
            f"{sshd.user}@{LOOPBACK}",
        ]
    )


async def wait_port(port: int) -> None:
    """Until something accepts connections on the port (the forward is up)."""
    for _ in range(200):
        if await port_accepts(port):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> int:
    """Start everything, measure each path, print the table, stop everything."""
    workdir = Path(tempfile.mkdtemp(prefix="ssh-callhome-bench-"))
    sshd = OpenSSHServer(workdir / "sshd", [])
    ha = HomeAssistantProcess(workdir / "config")
    ssh_client = None
    try:
        sshd.start()
        www = ha.directory / "www"
        www.mkdir(parents=True)
        with (www / "big.bin").open("wb") as file:
            for _ in range(DOWNLOAD_MIB):
                file.write(os.urandom(MiB))
        ha.start()
        ha.onboard()
        routes = {"no tunnel": ha.url}
        in_process, tcp = free_port(), free_port()
        add_tunnel_entry(ha, sshd, in_process)
        tcp_entry = add_tunnel_entry(ha, sshd, tcp)
        flow = ha.request("POST", "/api/config/config_entries/options/flow", {"handler": tcp_entry})
        ha.request(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            {
                "keepalive_interval": 30,
                "keepalive_count": 3,
                "bind": "all",
                "backoff_max": 300,
                "probe_interval": 3600,
                "mode": "tcp",
            },
        )
        key_path = workdir / "ssh-key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True
        )
        sshd.add_authorized_key(key_path.with_suffix(".pub").read_text().strip())
        ssh_port = free_port()
        ssh_client = ssh_reverse(sshd, key_path, ssh_port, ha.port)
        for port in (in_process, tcp, ssh_port):
            asyncio.run(wait_port(port))
        routes |= {
            "ssh -N -R": f"http://{LOOPBACK}:{ssh_port}",
            "integration, TCP mode": f"http://{LOOPBACK}:{tcp}",
            "integration, in process": f"http://{LOOPBACK}:{in_process}",
        }
        results = {name: asyncio.run(measure(base)) for name, base in routes.items()}
        report(results)
    finally:
        if ssh_client is not None:
            ssh_client.terminate()
        ha.stop()
        sshd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(results: dict[str, dict[str, float]]) -> None:
    """The table, each figure with its ratio to ssh -N -R."""
    reference = results["ssh -N -R"]
    columns = list(reference)
    print(f"{'path':26}" + "".join(f"{column:>22}" for column in columns))
    for name, figures in results.items():
        cells = "".join(f"{figures[c]:>12.1f} ({figures[c] / reference[c]:4.2f}x)" for c in columns)
        print(f"{name:26}{cells}")
    print("(ratios against ssh -N -R; for MB/s higher is better, for latencies lower)")


if __name__ == "__main__":
    sys.exit(main())
