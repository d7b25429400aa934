"""Which cipher the connection offers first, chosen for the CPU Home Assistant runs on.

asyncssh's AES-GCM is about twice as fast as its ChaCha20-Poly1305 where the CPU has AES
instructions (x86's AES-NI, the `aes` feature of ARMv8). Without them (the Raspberry Pi 4 and the
Compute Module 4 of Home Assistant Yellow) AES falls back to constant-time software and
ChaCha20-Poly1305 is the faster one. Linux lists the instructions in /proc/cpuinfo, read once
when this module is imported (outside the event loop). No CBC mode is ever offered:
the packet code relies on that.
"""

from __future__ import annotations

import logging
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

_CPUINFO = Path("/proc/cpuinfo")
# The lines of /proc/cpuinfo that list a CPU's features: x86 says flags, ARM says Features.
_FEATURE_LINES = ("flags", "Features")

AES_GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
CHACHA = ("chacha20-poly1305@openssh.com",)
# Last resort for servers without AEAD ciphers.
_CTR = ("aes128-ctr", "aes256-ctr")


def has_aes_instructions(cpuinfo: str) -> bool | None:
    """Whether the CPU described by `cpuinfo` has AES instructions; None when it does not say."""
    listed = False
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in _FEATURE_LINES:
            listed = True
            if "aes" in value.split():
                return True
    return False if listed else None


def ciphers_for(aes_instructions: bool | None) -> tuple[str, ...]:
    """The cipher order for a CPU with (or without) AES instructions; unknown counts as with."""
    if aes_instructions is False:
        return (*CHACHA, *AES_GCM, *_CTR)
    return (*AES_GCM, *CHACHA, *_CTR)


def _read_cpuinfo() -> str:
    try:
        return _CPUINFO.read_text(encoding="ascii", errors="replace")
    except OSError as error:
        _LOGGER.debug("No CPU features to choose a cipher by: %s", error)
        return ""


PREFERRED_CIPHERS = ciphers_for(has_aes_instructions(_read_cpuinfo()))
