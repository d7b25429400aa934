"""The delays between attempts."""

from __future__ import annotations

from custom_components.ssh_callhome.engine.backoff import Backoff, BackoffPolicy


def test_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(BackoffPolicy(initial=1, maximum=300, jitter=0))
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[:9] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert delays[9:] == [300, 300, 300]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_jitter_stays_within_its_spread_and_the_cap() -> None:
    backoff = Backoff(BackoffPolicy(initial=10, maximum=15, jitter=0.2))
    first = backoff.next_delay()
    assert 8 <= first <= 12
    later = [backoff.next_delay() for _ in range(200)]
    assert all(12 <= delay <= 15 for delay in later)
    assert len(set(later)) > 1


def test_many_failures_do_not_overflow() -> None:
    backoff = Backoff(BackoffPolicy(initial=1, maximum=300, jitter=0))
    for _ in range(5000):
        backoff.next_delay()
    assert backoff.next_delay() == 300
