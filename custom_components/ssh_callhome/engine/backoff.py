"""Exponential backoff with jitter between connection attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Past this many doublings the delay is at its cap anyway; stops 2**n growing without end.
_MAX_EXPONENT = 32


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait between attempts: initial, doubling up to maximum."""

    initial: float = 1.0
    maximum: float = 300.0
    # Spread of each delay around its nominal value, so many clients do not retry in step.
    jitter: float = 0.2
    # A connection that stayed up this long resets the delay to the initial value.
    stable_after: float = 60.0


class Backoff:
    """The delay sequence of one engine."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self._policy = policy
        self._failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the following one."""
        policy = self._policy
        nominal = min(policy.maximum, policy.initial * 2.0 ** min(self._failures, _MAX_EXPONENT))
        self._failures += 1
        spread = nominal * policy.jitter * (2 * random.random() - 1)  # noqa: S311 - not crypto
        return min(policy.maximum, max(0.0, nominal + spread))

    def reset(self) -> None:
        """Start again from the initial delay."""
        self._failures = 0
