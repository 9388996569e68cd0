"""A small HTTPS stand-in for the master's enrolment and certificate calls, for unit tests of the
client and node sides (the real master is tested in tests/master and end to end).

`EnrolmentServer` makes a CA with `partita.master.pki.certificates`, serves on 127.0.0.1 in a
thread, asks for a client certificate of its CA (CERT_OPTIONAL, as the master) and answers:

- ``GET /partita/ca.crt``: its CA, or another one when ``serve_ca`` is replaced (a man in the middle);
- ``POST /slapos.post.v0.enrolment``: a token of `tokens` (single use) -> a certificate for its
  (kind, name); 403 BAD_TOKEN otherwise;
- ``POST /slapos.post.v0.compute_node_certificate`` and ``…compute_partition_certificate``: a new
  certificate, for a caller with a client certificate only (401 otherwise).

Certificates are valid `days` days from `issued_at` (now by default): set ``issued_at`` in the
past to hand out certificates that are due for renewal. Every request is kept in `calls`.
"""
from __future__ import annotations

import datetime
import json
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from partita.master.pki import certificates as pki
from partita.slap.tokens import new_token


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any]
    peer: str | None     # the common name of the client certificate


@dataclass
class EnrolmentServer:
    days: int = 30
    issued_at: datetime.datetime | None = None
    ca: pki.CertifiedKey = field(default_factory=pki.new_ca)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fail_renewals: bool = False

    def __post_init__(self) -> None:
        self.serve_ca = pki.certificate_pem(self.ca.certificate)
        self.directory = Path(tempfile.mkdtemp(prefix="enrol-server-"))
        self.ca_file = self.directory / "ca.crt"
        self.ca_file.write_bytes(self.serve_ca)
        server = pki.server_certificate(self.ca, [], ["127.0.0.1"])
        (self.directory / "server.crt").write_bytes(pki.certificate_pem(server.certificate))
        (self.directory / "server.key").write_bytes(pki.key_pem(server.key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.directory / "server.crt", self.directory / "server.key")
        context.load_verify_locations(self.ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def fingerprint(self) -> str:
        return pki.fingerprint(self.ca.certificate)

    def token(self, kind: str, name: str, fingerprint: str | None = None) -> str:
        """A fresh enrolment token for (kind, name), naming `fingerprint` (this CA's by default)."""
        token = new_token(fingerprint or self.fingerprint)
        self.tokens[token.text()] = (kind, name)
        return token.text()

    def posts(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == "POST" and call.path == "/" + method]

    def sign(self, csr: str, name: str) -> dict[str, str]:
        certificate = pki.sign_csr(self.ca, csr, name, self.days, now=self.issued_at)
        return {"certificate": pki.certificate_pem(certificate).decode(),
                "ca_certificate": pki.certificate_pem(self.ca.certificate).decode(),
                "not_after": certificate.not_valid_after_utc.isoformat()}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> EnrolmentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _handler(server: EnrolmentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def peer(self) -> str | None:
            cert = self.connection.getpeercert()  # type: ignore[attr-defined]
            if not cert:
                return None
            return dict(item[0] for item in cert["subject"]).get("commonName")

        def answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status: int, code: str, title: str) -> None:
            self.answer(status, {"status": status, "type": "error", "code": code, "title": title})

        def do_GET(self) -> None:
            server.calls.append(Call("GET", self.path, {}, self.peer()))
            if self.path == "/partita/ca.crt":
                self.answer(200, server.serve_ca, "application/x-pem-file")
            else:
                self.error(404, "NOT_FOUND", "no such page")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            peer = self.peer()
            server.calls.append(Call("POST", self.path, body, peer))
            method = self.path.lstrip("/")
            if method == "slapos.post.v0.enrolment":
                found = server.tokens.pop(body.get("token", ""), None)
                if found is None:
                    return self.error(403, "BAD_TOKEN", "the enrolment token is unknown, expired, revoked or already used")
                kind, name = found
                return self.answer(200, {"kind": kind, "name": name, **server.sign(body["csr"], name)})
            if method in ("slapos.post.v0.compute_node_certificate", "slapos.post.v0.compute_partition_certificate"):
                if peer is None:
                    return self.error(401, "UNAUTHENTICATED", "a client certificate is needed")
                if server.fail_renewals:
                    return self.error(503, "UNAVAILABLE", "try again later")
                name = body["computer_guid"] + "/" + body.get("compute_partition_id", "") if "compute_partition_id" in body \
                    else body["computer_guid"]
                return self.answer(200, server.sign(body["csr"], name))
            self.error(404, "NOT_FOUND", f"unknown method {method}")

    return Handler
