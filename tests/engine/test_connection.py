"""Reading what asyncssh negotiated, from the two KEXINIT messages it keeps."""

from __future__ import annotations

from typing import cast

import asyncssh

from custom_components.ssh_callhome.engine.connection import negotiated_kex


def kexinit(*methods: str) -> bytes:
    names = ",".join(methods).encode()
    return bytes([20]) + bytes(16) + len(names).to_bytes(4, "big") + names + bytes(40)


class FakeConnection:
    def __init__(self, client: bytes, server: bytes) -> None:
        self._client_kexinit = client
        self._server_kexinit = server


def negotiated(client: bytes, server: bytes) -> str:
    return negotiated_kex(cast(asyncssh.SSHClientConnection, FakeConnection(client, server)))


def test_the_clients_first_method_the_server_offers_wins() -> None:
    client = kexinit("mlkem768x25519-sha256", "curve25519-sha256", "ecdh-sha2-nistp256")
    server = kexinit("ecdh-sha2-nistp256", "curve25519-sha256")
    assert negotiated(client, server) == "curve25519-sha256"


def test_nothing_known_is_unknown() -> None:
    assert negotiated(b"", kexinit("curve25519-sha256")) == "unknown"
    assert negotiated(kexinit("a"), kexinit("b")) == "unknown"
