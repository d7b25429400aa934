"""Self-signed certificates, and Home Assistant's real HTTP server serving HTTPS with one."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from homeassistant.core import HomeAssistant

from .ha_http import start_home_assistant_http


def self_signed(directory: Path, name: str = "home.example") -> tuple[Path, Path]:
    """A new key and a certificate for `name` signed by it, as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """What a TLS server with this certificate and key serves with."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def der_of(cert_path: Path) -> bytes:
    """The certificate in a PEM file, in the binary form a TLS peer presents it."""
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return certificate.public_bytes(serialization.Encoding.DER)


async def start_https(hass: HomeAssistant, directory: Path) -> Path:
    """Home Assistant's own HTTP server serving HTTPS on loopback; returns its certificate.

    The caller stops it with `hass.http.stop()`.
    """
    cert_path, key_path = self_signed(directory)
    await start_home_assistant_http(hass, ssl_certificate=str(cert_path), ssl_key=str(key_path))
    return cert_path
