"""The benchmark's own parts that can be wrong quietly: the loop-lag timer, the verdicts and the
profile's counting."""

from __future__ import annotations

import asyncio
import time

import pytest

from scripts.benchmark.bench_probe import LoopLag
from scripts.benchmark.profile import top_functions, top_inclusive
from scripts.benchmark.report import Round, print_report
from scripts.benchmark.rig import BASELINE, DIRECT, IN_PROCESS, SSH, route_name


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
        "first byte ms": 1.0,
        "new-conn p50 ms": 1.0,
        "new-conn > 30 ms": 0,
        "loop lag p99 ms": lag,
        "HA CPU s/GiB": cpu,
        "ssh CPU s/GiB": 1.0,
    }


def a_round(ssh: dict[str, float], mine: dict[str, float], direct: dict[str, float]) -> Round:
    """The same figures over both schemes."""
    return {
        route_name(scheme, kind): values
        for scheme in ("http", "https")
        for kind, values in ((SSH, ssh), (IN_PROCESS, mine), (DIRECT, direct))
    }


def test_report_takes_medians_and_says_what_is_missed(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [
        a_round(figures(800, 0.1, 1), figures(400, 2.0, 1), figures(500, 0, 0)),
        a_round(figures(900, 0.1, 1), figures(1000, 2.0, 1), figures(500, 0, 0)),
        a_round(figures(1000, 0.1, 1), figures(450, 2.0, 30), figures(500, 0, 0)),
    ]
    print_report(rounds)
    out = capsys.readouterr().out
    down = next(line for line in out.splitlines() if line.startswith("down MB/s"))
    assert "450 [400-1e+03] (0.50x)" in down  # medians 450 and 900
    assert "MISSED  http down MB/s >= 0.8x ssh -N -R: 0.50x (38 % below the bound)" in out
    assert "MISSED  https down MB/s >= 1x ssh -N -R: 0.50x (50 % below the bound)" in out
    assert "MISSED  http HA CPU s/GiB <= 1.5x ssh -N -R: 2.00x (33 % above the bound)" in out
    # Over HTTP requests/s against Home Assistant's own, with no tunnel: 450 of 500.
    assert "met     http 50x100 req/s >= 0.8x no tunnel: 0.90x" in out
    # Over HTTPS against ssh -N -R's: 450 of 900.
    assert "MISSED  https 50x100 req/s >= 1x ssh -N -R: 0.50x" in out
    assert "met     https keep-alive p50 ms <= 1x ssh -N -R: 1.00x" in out
    assert "met     http first byte ms <= 1.5x ssh -N -R: 1.00x" in out
    assert "met     https loop lag p99 ms <= 20: 1" in out
    assert "met     http new-conn > 30 ms <= 0: 0" in out


def test_a_baseline_is_judged_beside(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [a_round(figures(800, 0.1, 1), figures(800, 0.1, 1), figures(500, 0, 0))]
    rounds[0][route_name("https", BASELINE)] = figures(400, 0.1, 1)
    print_report(rounds)
    out = capsys.readouterr().out
    assert "met     https down MB/s >= 1x ssh -N -R: 1.00x" in out
    assert "(baseline: MISSED  https down MB/s >= 1x ssh -N -R: 0.50x" in out


def test_a_reference_that_measured_nothing_is_no_division(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # BENCH_MIB=1: ssh's CPU per GiB can round to zero.
    ssh = {**figures(800, 0.1, 1), "ssh CPU s/GiB": 0.0}
    print_report([a_round(ssh, figures(400, 2.0, 1), figures(500, 0, 0))])
    assert (
        "n/a     http HA CPU s/GiB <= 1.5x ssh -N -R: the reference measured 0"
        in capsys.readouterr().out
    )


# py-spy's raw output: the stack root first, the thread as its first frame, then the samples.
RAW_PROFILE = """\
thread (0x1): MainThread;run_forever (asyncio/base_events.py:680);select (selectors.py:452) 50
thread (0x1): MainThread;run_forever (asyncio/base_events.py:680);write (selector_events.py:1080) 20
thread (0x1): MainThread;run_forever (asyncio/base_events.py:681);write (selector_events.py:1095) 10
thread (0x1): MainThread;run_forever (asyncio/base_events.py:680);walk (a.py:1);walk (a.py:2) 19
thread (0x1): MainThread;walk (a.py:1) 1
thread (0x2): SyncWorker_0;_worker (thread.py:90);read (file.py:3) 900
thread (0x1): MainThread 5
"""


def test_profile_counts_the_main_thread_alone_by_function() -> None:
    lines = RAW_PROFILE.splitlines()
    shares = {share.function: share for share in top_functions(lines)}
    # 100 samples of the main thread (the rootless line has no frame to count); no worker's.
    assert list(shares) == [
        "select (selectors.py)", "write (selector_events.py)", "walk (a.py)"
    ]  # fmt: skip
    assert shares["select (selectors.py)"].own == pytest.approx(50)
    # One function at two lines of it is one function.
    assert shares["write (selector_events.py)"].own == pytest.approx(30)
    # A recursive call counts once per sample.
    assert shares["walk (a.py)"].with_callees == pytest.approx(20)
    inclusive = top_inclusive(lines, top=2)
    # run_forever, on 99 % of the stacks, says nothing: left out.
    assert [(s.function, round(s.own), round(s.with_callees)) for s in inclusive] == [
        ("select (selectors.py)", 50, 50),
        ("write (selector_events.py)", 30, 30),
    ]
    assert top_functions(lines, thread="nobody") == []
