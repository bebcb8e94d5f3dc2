"""A throwaway PKI for the relay's TLS tests, made in the test with `cryptography`, and an
aiosmtpd server that speaks STARTTLS or implicit TLS with it and records what it was sent."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spartacus.anvil import free_port


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (PEM): what --smtp-ca-file takes
    cert: Path  # the server's certificate for "localhost", signed by the CA
    key: Path  # the server's key
    rogue_cert: Path  # a certificate for "localhost" signed by another (untrusted) CA
    rogue_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: list[x509.GeneralName]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("spartacus test smtp"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate it signs for ``localhost`` only (not 127.0.0.1), and a rogue pair."""
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca_key, ca = _ca("spartacus throwaway test CA")
    key, cert = _leaf(ca_key, ca, [x509.DNSName("localhost")])
    rogue_ca_key, rogue_ca = _ca("someone else's CA")
    rogue_key, rogue = _leaf(
        rogue_ca_key, rogue_ca, [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    out = Pki(
        folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "rogue.pem", folder / "rogue.key"
    )
    out.ca.write_bytes(ca.public_bytes(pem))
    out.cert.write_bytes(cert.public_bytes(pem))
    _write_key(out.key, key)
    out.rogue_cert.write_bytes(rogue.public_bytes(pem))
    _write_key(out.rogue_key, rogue_key)
    return out


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@dataclass
class Seen:
    """What the server was sent, and whether over TLS."""

    commands: list[tuple[str, bool]] = field(default_factory=list)  # (MAIL | RCPT | DATA, over TLS)
    messages: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, command: str) -> list[bool]:
        with self.lock:
            return [tls for c, tls in self.commands if c == command]


class _Handler:
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def _note(self, server: Any, command: str) -> None:
        tls = server.transport.get_extra_info("ssl_object") is not None
        with self.seen.lock:
            self.seen.commands.append((command, tls))

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        self._note(server, "MAIL")
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        self._note(server, "RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self._note(server, "DATA")
        with self.seen.lock:
            self.seen.messages.append(bytes(envelope.content))
        return "250 2.0.0 accepted"


class TlsServer:
    """aiosmtpd on 127.0.0.1: ``starttls`` (offered, not required: a client that went on in clear
    would be heard), ``ssl`` (implicit TLS) or ``plain`` (no STARTTLS offered)."""

    def __init__(self, mode: str, cert: Path | None = None, key: Path | None = None) -> None:
        self.port = free_port()
        self.seen = Seen()
        kwargs: dict[str, Any] = {}
        if mode == "starttls":
            assert cert and key
            kwargs = {"tls_context": server_context(cert, key), "require_starttls": False}
        elif mode == "ssl":
            assert cert and key
            kwargs = {"ssl_context": server_context(cert, key)}
        self.controller = Controller(_Handler(self.seen), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> TlsServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
