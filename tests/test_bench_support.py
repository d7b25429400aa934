"""The benchmark's own parts that can be wrong quietly: the loop-lag timer and the verdicts."""

from __future__ import annotations

import asyncio
import time

import pytest

from scripts.benchmark.bench_probe import LoopLag
from scripts.benchmark.report import print_report
from scripts.benchmark.rig import IN_PROCESS, SSH


async def test_loop_lag_sees_a_blocked_loop() -> None:
    lag = LoopLag(asyncio.get_running_loop())
    lag.start()
    await asyncio.sleep(0.05)
    quiet = lag.take()
    time.sleep(0.1)  # noqa: ASYNC251 - blocking the loop is the point: a tick runs ~100 ms late
    await asyncio.sleep(0.02)
    blocked = lag.take()
    lag.stop()
    await asyncio.sleep(0.02)
    assert quiet["samples"] > 0
    assert quiet["max"] < 50
    assert blocked["max"] >= 90
    assert lag.take()["samples"] == 0  # stopped: no more ticks


def figures(down: float, cpu: float, lag: float) -> dict[str, float]:
    return {
        "down MB/s": down,
        "up MB/s": down,
        "50x100 req/s": down,
        "keep-alive p50 ms": 1.0,
        "new-conn p50 ms": 1.0,
        "new-conn > 30 ms": 0,
        "loop lag p99 ms": lag,
        "HA CPU s/GiB": cpu,
        "ssh CPU s/GiB": 1.0,
    }


def test_report_takes_medians_and_says_what_is_missed(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [
        {SSH: figures(800, 0.1, 1), IN_PROCESS: figures(400, 2.0, 1)},
        {SSH: figures(900, 0.1, 1), IN_PROCESS: figures(1000, 2.0, 1)},
        {SSH: figures(1000, 0.1, 1), IN_PROCESS: figures(450, 2.0, 30)},
    ]
    print_report(rounds)
    out = capsys.readouterr().out
    down = next(line for line in out.splitlines() if line.startswith("down MB/s"))
    assert "450 [400-1e+03] (0.50x)" in down  # medians 450 and 900
    assert "MISSED  down MB/s >= 1x ssh -N -R: 0.50x (50 % below the bound)" in out
    assert "MISSED  HA CPU s/GiB <= 1.5x ssh -N -R: 2.00x (33 % above the bound)" in out
    assert "met     loop lag p99 ms <= 20: 1" in out
    assert "met     new-conn > 30 ms <= 0: 0" in out
