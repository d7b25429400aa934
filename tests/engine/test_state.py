"""How failures map to reasons and how they are described in the log."""

from __future__ import annotations

import socket

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.state import Reason, describe, reason_for
from custom_components.ssh_callhome.engine.tunnel import ClosedByServer


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Reason.DNS),
        (ConnectionRefusedError(111, "Connection refused"), Reason.REFUSED),
        (TimeoutError(), Reason.TIMEOUT),
        (asyncssh.PermissionDenied("denied"), Reason.AUTH),
        (asyncssh.HostKeyNotVerifiable("mismatch"), Reason.HOST_KEY),
        (asyncssh.ChannelListenError("in use"), Reason.FORWARD_REFUSED),
        (asyncssh.ConnectionLost("keepalive"), Reason.CONNECTION_LOST),
        (asyncssh.ProtocolError("garbage"), Reason.CONNECTION_LOST),
        (ConnectionResetError(104, "reset"), Reason.CONNECTION_LOST),
        (ClosedByServer(), Reason.CONNECTION_LOST),
        (None, Reason.CONNECTION_LOST),
        (RuntimeError("bug"), Reason.UNKNOWN),
    ],
)
def test_reason_for(error: BaseException | None, reason: Reason) -> None:
    assert reason_for(error) is reason


def test_describe_is_one_line_with_the_type() -> None:
    assert describe(asyncssh.PermissionDenied("Permission denied")) == (
        "PermissionDenied: Permission denied"
    )
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(None) == "closed by the server"
