"""What each forwarded connection is handed to.

A module of its own, so that the settings and the extra forwards (which may carry their own
target) both import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable

from .channels import SessionFactory
from .limits import ChannelGate

# What each forwarded connection is handed to, given the gate that caps and counts them.
SessionTarget = Callable[[ChannelGate], SessionFactory]
