"""The one-command demo: a real OpenSSH server and a real Home Assistant, the tunnel between them.

Everything lives in a throwaway directory and on loopback; Ctrl-C stops all of it.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.home_assistant import (
    DEMO_PASSWORD,
    DEMO_USER,
    HomeAssistantProcess,
    add_tunnel_entry,
)
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer

TUNNEL_TIMEOUT = 60.0


def step(text: str) -> None:
    """Progress, one line a step."""
    print(f"==> {text}", flush=True)


def wait_for_tunnel(ha: HomeAssistantProcess) -> None:
    """Until the Tunnel sensor is on, as the UI would show it."""
    deadline = time.monotonic() + TUNNEL_TIMEOUT
    while ha.state("binary_sensor.root_127_0_0_1_tunnel") != "on":
        if time.monotonic() > deadline:
            raise RuntimeError("the tunnel did not come up")
        time.sleep(0.5)


def main() -> int:
    """Start, show, wait for Ctrl-C, stop."""
    workdir = Path(tempfile.mkdtemp(prefix="ssh-callhome-demo-"))
    sshd = OpenSSHServer(workdir / "sshd", [])
    ha = HomeAssistantProcess(workdir / "config")
    stopping = False

    def stop_on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        step(f"starting an OpenSSH server on {LOOPBACK}:{sshd.port} (config in {sshd.directory})")
        sshd.start()
        step(f"starting Home Assistant on {ha.url} (config in {ha.directory}); this takes a while")
        ha.start()
        step(f"onboarding Home Assistant with the user {DEMO_USER!r}")
        ha.onboard()
        remote_port = free_port()
        step("adding SSH Call Home through the config flow: generated key, pinned host key")
        add_tunnel_entry(ha, sshd, remote_port)
        step("waiting for the Tunnel sensor to turn on")
        wait_for_tunnel(ha)
        print(
            f"\nThe tunnel is up.\n"
            f"  Home Assistant through the tunnel: http://{LOOPBACK}:{remote_port}\n"
            f"  (directly: {ha.url})\n"
            f"  Log in as {DEMO_USER} / {DEMO_PASSWORD}\n"
            f"Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not stopping:
            time.sleep(0.2)
    finally:
        step("stopping Home Assistant and the SSH server")
        ha.stop()
        sshd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        step("stopped; nothing is left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
