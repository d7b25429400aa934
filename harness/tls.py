"""Self-signed certificates, a test CA and the certificates it issues, and Home Assistant's real
HTTP server serving HTTPS with one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from homeassistant.core import HomeAssistant

from .ha_http import start_home_assistant_http


def self_signed(directory: Path, name: str = "home.example") -> tuple[Path, Path]:
    """A new key and a certificate for `name` signed by it, as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _valid_for_a_month(x509.CertificateBuilder())
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .sign(key, hashes.SHA256())
    )
    return _write_pair(directory, certificate, key)


def _write_pair(
    directory: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    """The certificate and its key as PEM files in `directory`."""
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


def certificate_authority(directory: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """A new CA: its certificate (PEM file in `directory`, for a client to trust) and key."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    certificate = (
        _valid_for_a_month(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path, key


def issued(
    directory: Path, ca: tuple[Path, ec.EllipticCurvePrivateKey], host: str
) -> tuple[Path, Path]:
    """A server certificate for `host` (a name or an IP address) signed by `ca`, and its key."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_certificate = x509.load_pem_x509_certificate(ca[0].read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    certificate = (
        _valid_for_a_month(x509.CertificateBuilder())
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False
        )
        .sign(ca[1], hashes.SHA256())
    )
    return _write_pair(directory, certificate, key)


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _valid_for_a_month(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
