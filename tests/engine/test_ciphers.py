"""The cipher offered first follows the CPU: AES-GCM with AES instructions, ChaCha20 without."""

from __future__ import annotations

from unittest.mock import patch

import asyncssh
import pytest

from custom_components.ssh_callhome.engine import connection as connection_module
from custom_components.ssh_callhome.engine.ciphers import (
    CHACHA,
    PREFERRED_CIPHERS,
    ciphers_for,
    has_aes_instructions,
)
from custom_components.ssh_callhome.engine.connection import open_connection
from custom_components.ssh_callhome.engine.settings import TunnelSettings

# Trimmed from real /proc/cpuinfo files.
X86_WITH_AES_NI = "processor\t: 0\nflags\t\t: fpu vme sse2 ssse3 aes avx2 sha_ni\n"
X86_WITHOUT_AES_NI = "processor\t: 0\nflags\t\t: fpu vme sse2 ssse3\n"
RASPBERRY_PI_4 = (
    "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
    "CPU implementer\t: 0x41\nCPU part\t: 0xd08\n"
)
ARMV8_WITH_CRYPTO = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
NO_FEATURES = "processor\t: 0\nmodel name\t: something else\n"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (X86_WITH_AES_NI, True),
        (ARMV8_WITH_CRYPTO, True),
        (X86_WITHOUT_AES_NI, False),
        (RASPBERRY_PI_4, False),
        (NO_FEATURES, None),
        ("", None),
    ],
)
def test_aes_instructions_are_read_from_cpuinfo(cpuinfo: str, expected: bool | None) -> None:
    assert has_aes_instructions(cpuinfo) is expected


def test_aes_gcm_first_where_the_cpu_has_aes_instructions() -> None:
    assert ciphers_for(True)[0] == "aes128-gcm@openssh.com"
    # A CPU that does not say keeps the order that is fastest on most machines.
    assert ciphers_for(None) == ciphers_for(True)


def test_chacha20_first_on_a_raspberry_pi_4() -> None:
    assert ciphers_for(has_aes_instructions(RASPBERRY_PI_4))[0] == CHACHA[0]


@pytest.mark.parametrize("aes_instructions", [True, False, None])
def test_both_orders_offer_the_same_ciphers_and_no_cbc(aes_instructions: bool | None) -> None:
    # Leaving out asyncssh's empty IGNORE packets is safe only without CBC.
    offered = ciphers_for(aes_instructions)
    assert sorted(offered) == sorted(PREFERRED_CIPHERS)
    assert [cipher for cipher in offered if "cbc" in cipher] == []


@pytest.mark.parametrize("aes_instructions", [True, False])
async def test_a_real_server_agrees_to_the_first_cipher(
    settings: TunnelSettings, aes_instructions: bool
) -> None:
    order = ciphers_for(aes_instructions)
    with patch.object(connection_module, "PREFERRED_CIPHERS", order):
        connection = await open_connection(settings)
    async with connection:
        assert connection.get_extra_info("send_cipher") == order[0]
        assert connection.get_extra_info("recv_cipher") == order[0]


def test_chacha20_is_a_cipher_asyncssh_has() -> None:
    assert CHACHA[0].encode() in asyncssh.encryption.get_encryption_algs()
