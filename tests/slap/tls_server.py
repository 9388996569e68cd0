"""Test support: certificates made with `cryptography` and a tiny HTTPS server on 127.0.0.1.

`make_pki(directory)` writes two CAs (the master's and another one), a server certificate for
127.0.0.1 from the master's CA, and client certificates: valid from the master's CA, from the
other CA, and expired from the master's CA. `https_server(pki)` serves JSON over HTTPS in a
thread and, like the master, asks for a client certificate from its CA (CERT_OPTIONAL or
CERT_REQUIRED); a POST without one is answered 401 UNAUTHENTICATED.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
EXPIRED_ON = datetime.datetime(2020, 3, 4, 12, 0, tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class Pair:
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class Pki:
    ca_file: str          # the master's CA
    other_ca_file: str    # a CA the master does not know
    server: Pair
    client: Pair          # from the master's CA
    stranger: Pair        # from the other CA
    expired: Pair         # from the master's CA, expired on EXPIRED_ON


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey],
                 *, ca: bool = False, server: bool = False, not_before: datetime.datetime | None = None,
                 not_after: datetime.datetime | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer[0])
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - datetime.timedelta(days=1))
               .not_valid_after(not_after or NOW + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> Pair:
    cert_file = directory / f"{stem}.crt"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / f"{stem}.key"
    if key is not None:
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
    return Pair(str(cert_file), str(key_file))


def make_pki(directory: Path) -> Pki:
    """Write the CAs and certificates of `Pki` into `directory`."""
    keys = {name: ec.generate_private_key(ec.SECP256R1())
            for name in ("ca", "other", "server", "client", "stranger", "expired")}
    ca = _certificate("Master CA", keys["ca"], (_name("Master CA"), keys["ca"]), ca=True)
    other = _certificate("Other CA", keys["other"], (_name("Other CA"), keys["other"]), ca=True)
    by_ca = (ca.subject, keys["ca"])
    return Pki(
        ca_file=_write(directory, "ca", ca, None).cert_file,
        other_ca_file=_write(directory, "other-ca", other, None).cert_file,
        server=_write(directory, "server", _certificate("127.0.0.1", keys["server"], by_ca, server=True),
                      keys["server"]),
        client=_write(directory, "client", _certificate("user:alice", keys["client"], by_ca), keys["client"]),
        stranger=_write(directory, "stranger", _certificate("user:mallory", keys["stranger"],
                                                            (other.subject, keys["other"])), keys["stranger"]),
        expired=_write(directory, "expired", _certificate(
            "user:bob", keys["expired"], by_ca, not_before=EXPIRED_ON - datetime.timedelta(days=90),
            not_after=EXPIRED_ON), keys["expired"]),
    )


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        if peer:
            status, body = 200, {"ok": True, "authorization": self.headers.get("Authorization")}
        else:
            status, body = 401, {"status": 401, "type": "Unauthenticated", "code": "UNAUTHENTICATED",
                                 "title": "no client certificate or token"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _TlsServer(ThreadingHTTPServer):
    """Does the TLS handshake on accept; a refused handshake closes the connection cleanly.

    With TLS 1.3 the client sends its request before it learns that its certificate is refused;
    closing a socket with that request unread makes the kernel send a reset, which may reach the
    client before the alert. The server drains the connection first, so the alert always arrives.
    """

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        connection = self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        try:
            connection.settimeout(5)
            connection.do_handshake()
        except OSError:
            _close_after_draining(connection)
            raise
        connection.settimeout(None)
        return connection, address


def _close_after_draining(connection: ssl.SSLSocket) -> None:
    try:
        connection.shutdown(socket.SHUT_WR)  # drops the TLS layer: what follows reads raw bytes
        while connection.recv(65536):
            pass
    except OSError:
        pass
    finally:
        connection.close()


@contextmanager
def https_server(pki: Pki, *, require_client_certificate: bool = True) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with the master's server certificate; yields its URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert_file, pki.server.key_file)
    context.load_verify_locations(pki.ca_file)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    server = _TlsServer(context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
