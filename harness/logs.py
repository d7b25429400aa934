"""The log capture of a test."""

from __future__ import annotations

import logging

import pytest


def keep_log_capture_small(caplog: pytest.LogCaptureFixture) -> None:
    """For tests that move much data or measure memory: the capture keeps every DEBUG record,
    some per packet, which would be the harness's growth rather than the tunnel's."""
    caplog.set_level(logging.INFO)
    logging.getLogger("asyncssh").setLevel(logging.INFO)
