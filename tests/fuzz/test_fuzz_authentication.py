"""Fuzzing an authenticated master: enrolment, tokens, users, certificates, the audit log, identity.

The app is the master with ``authentication`` on (`create_app` with a test CA), over a catalog on
SQLite, then PostgreSQL, seeded through the JSON API itself: the first admin (its enrolment token
made by `users.ensure_first_admin`, traded at ``slapos.post.v0.enrolment``), a user ``alice``, a
computer formatted with partitions and a certificate for one of them, a second computer whose
certificates were revoked, an expired certificate, API tokens (live, revoked, expired) and unused
enrolment tokens (a new computer, a new user, a computer enrolling again). Each example restores
that catalog first, so every call starts from the same rows and a failure replays.

A client certificate reaches the app as the server hands it over, its DER in the WSGI environ
(``partita.peer_certificate``); calls present one of: a real certificate (admin, user, computer,
partition, revoked, expired in the catalog), one of another CA, garbage or a truncated or mutated
real DER, a real or garbage ``Authorization: Bearer`` token, the front end's
``X-Partita-Client-Certificate`` header from an address that is not a front end (and, from the
front end's, a real, foreign or garbage PEM), or nothing.

Fuzzed: ``enrolment`` (real, used, mutated and truncated tokens, another CA's fingerprint; real,
mutated and truncated CSRs, weak or unsupported keys, a certificate instead of a CSR),
``compute_node_token`` (title, ttl, computer_guid), ``user`` (name, admin, ttl), ``api_token`` and
``remove.v0.api_token``, ``audit_event_list`` (since, limit), ``compute_node_certificate`` and
``compute_partition_certificate`` (csr), and identity alone on ``whoami``, an admin method and a
SLAP XML read. Every answer is under 500 without a traceback; a JSON error is ``{"status", "type",
"title", "code"}`` with a known code; a rejected call changes no row of any table except by adding
refused-call audit events; no garbage identity reaches a method (401/403); an accepted call was
allowed to its caller (admin methods by an admin, renewal by the computer itself, enrolment with a
live token), its answer matches ``openapi.yaml``, and the catalog still lists (tokens, computers,
audit) afterwards. Budgets and the shrink limit are those of `tests/fuzz/conftest.py`.
"""
from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from partita.master.api import openapi
from partita.master.api.authentication import FRONTEND_HEADER, PEER_CERTIFICATE
from partita.master.app import create_app
from partita.master.db import migrate
from partita.master.db.database import Database
from partita.master.db.models import Base, IssuedCertificate, Token
from partita.master.pki import certificates as certs
from partita.master.services import users
from partita.master.services.certificates import Authority
from partita.master.settings import AppSettings
from partita.slap import tokens
from tests.fuzz.conftest import (
    MAX_BODY_BYTES, SCALE, TRICKY_STRINGS, Rows, fuzz_settings, strict_json, throwaway_catalog_url,
)

FRONTEND = "192.0.2.7"  # the one TLS front end the app believes (TEST-NET-1: never routed)
LOOPBACK = "127.0.0.1"
ERROR_CODES = {"BAD_REQUEST", "BAD_ENCODING", "INVALID", "BAD_AUTHORIZATION", "TOO_LARGE", "FORBIDDEN",
               "NOT_FOUND", "CONFLICT", "METHOD_NOT_ALLOWED", "UNAUTHENTICATED", "REVOKED", "BAD_TOKEN",
               "BAD_CONTENT_TYPE", "QUOTA", "BAD_SLA",
               # the binary cache (master.services.binary_cache)
               "NOT_A_BUILDER", "NOT_CACHED", "ALREADY_CACHED", "UPLOAD_IN_PROGRESS", "DIGEST_MISMATCH"}
AUDIT = "audit_events"
PUBLIC_METHODS = {"slapos.post.v0.enrolment"}
LISTINGS = ("slapos.allDocs.v0.api_token_list", "slapos.allDocs.v0.compute_node_list",
            "slapos.allDocs.v0.audit_event_list")


# ---------------------------------------------------------------------------------------- keys

def csr_pem(key: Any, algorithm: Any = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    csr = builder.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else algorithm or hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def der_of(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(serialization.Encoding.DER)


#: Valid CSRs made once (key generation is the slow part); each accepted enrolment may reuse one.
GOOD_CSRS = [csr_pem(certs.new_key()) for _ in range(4)] + [csr_pem(ed25519.Ed25519PrivateKey.generate())]
_OTHER_CA = certs.new_ca(common_name="Another master CA")
_FOREIGN = certs.sign_csr(_OTHER_CA, GOOD_CSRS[0], "intruder", 1)
#: CSRs the CA must refuse, each for its own reason.
BAD_CSRS = [
    csr_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # weak key
    csr_pem(ec.generate_private_key(ec.SECP521R1())),                          # a curve not accepted
    certs.certificate_pem(_FOREIGN).decode("ascii"),                           # a certificate
    GOOD_CSRS[0] + GOOD_CSRS[1],                                               # two blocks
    GOOD_CSRS[0].replace("CERTIFICATE REQUEST", "CERTIFICATE"),
    GOOD_CSRS[0][:-60] + GOOD_CSRS[1][-60:],                                   # signature of another
    "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n",
    GOOD_CSRS[0] + "x" * 17_000,                                              # over the size limit
]
FOREIGN_DER = _FOREIGN.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------- the world

@dataclass(frozen=True)
class Identity:
    """Something a caller presents: WSGI environ entries (the certificate, the address) and headers."""

    label: str
    environ: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class AuthWorld:
    backend: str
    db: Database
    app: Flask
    authority: Authority
    client: FlaskClient
    who: dict[str, Identity] = field(default_factory=dict)          # real identities by label
    pems: dict[str, str] = field(default_factory=dict)              # their certificates
    texts: dict[str, str] = field(default_factory=dict)             # token texts by label
    ids: dict[str, str] = field(default_factory=dict)               # token ids by label
    names: dict[str, str] = field(default_factory=dict)             # label -> user name or computer_guid
    serials: dict[str, int] = field(default_factory=dict)           # label -> certificate serial
    seed_rows: Rows = field(default_factory=dict)

    def examples(self, sqlite: int, postgresql: int) -> int:
        return max(1, int((sqlite if self.backend == "sqlite" else postgresql) * SCALE))

    # ------------------------------------------------------------------------ calls

    def post(self, method: str, who: Identity | None, body: Any = None, *, raw: bytes | None = None) -> Any:
        environ = {"REMOTE_ADDR": LOOPBACK, **(who.environ if who else {})}
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        return self.client.post(f"/{method}", data=data, content_type="application/json",
                                headers=who.headers if who else {}, environ_base=environ)

    def ok(self, method: str, who: Identity | None, body: Any = None) -> dict[str, Any]:
        response = self.post(method, who, body)
        assert response.status_code == 200, (method, body, response.status_code, response.get_data(as_text=True))
        document = strict_json(response.data)
        openapi.validate_response(method, 200, document)
        return document

    def enrol(self, label: str, token: str, csr: str | None = None) -> Identity:
        answer = self.ok("slapos.post.v0.enrolment", None, {"token": token, "csr": csr or csr_pem(certs.new_key())})
        self.pems[label], self.names[label] = answer["certificate"], answer["name"]
        self.who[label] = certificate_identity(label, der_of(answer["certificate"]))
        return self.who[label]

    # ------------------------------------------------------------------------ seeding

    def seed(self) -> None:
        _owner, admin_token = self.db.run_write(lambda session: users.ensure_first_admin(
            session, "admin", 3600, self.authority.fingerprint, False))
        assert admin_token is not None
        self.texts["used"] = admin_token
        admin = self.enrol("admin", admin_token)
        alice = self.enrol("alice", self.ok("slapos.post.v0.user", admin, {"name": "alice"})["token"])
        computer = self.enrol("computer", self.ok("slapos.post.v0.compute_node_token", admin,
                                                  {"title": "node one"})["token"])
        guid = self.names["computer"]
        self.ok("slapos.put.v0.compute_node_format", computer, {"computer_guid": guid, "compute_partition_list": [
            {"partition_id": f"slappart{i}", "ip_list": [{"ip-address": f"127.0.3.{i + 1}", "network-interface": "lo"}]}
            for i in range(3)]})
        answer = self.ok("slapos.post.v0.compute_partition_certificate", computer,
                         {"computer_guid": guid, "compute_partition_id": "slappart0", "csr": GOOD_CSRS[1]})
        self.who["partition"] = certificate_identity("partition", der_of(answer["certificate"]))
        self.enrol("revoked", self.ok("slapos.post.v0.compute_node_token", admin, {})["token"])
        self.ok("slapos.post.v0.compute_node_revocation", admin, {"computer_guid": self.names["revoked"]})
        self.enrol("expired", self.ok("slapos.post.v0.user_token", admin, {"name": "alice"})["token"])
        self._expire_certificate("expired")
        self._tokens(admin, alice, guid)
        self.serials = {label: x509.load_der_x509_certificate(who.environ[PEER_CERTIFICATE]).serial_number
                        for label, who in self.who.items() if PEER_CERTIFICATE in who.environ}
        self.seed_rows = self.rows()

    def _expire_certificate(self, label: str) -> None:
        serial = format(x509.load_pem_x509_certificate(self.pems[label].encode()).serial_number, "x")
        self.db.run_write(lambda session: session.execute(
            update(IssuedCertificate).where(IssuedCertificate.serial == serial).values(not_after=time.time() - 60)))

    def _tokens(self, admin: Identity, alice: Identity, guid: str) -> None:
        def keep(label: str, answer: dict[str, Any]) -> None:
            self.texts[label], self.ids[label] = answer["token"], answer["token_id"]

        keep("computer-enrolment", self.ok("slapos.post.v0.compute_node_token", admin, {"title": "new node"}))
        keep("re-enrolment", self.ok("slapos.post.v0.compute_node_token", admin, {"computer_guid": guid}))
        keep("user-enrolment", self.ok("slapos.post.v0.user", admin, {"name": "bob", "admin": False}))
        keep("api", self.ok("slapos.post.v0.api_token", alice, {"title": "alice's script"}))
        keep("admin-api", self.ok("slapos.post.v0.api_token", admin, {"title": "admin's script", "ttl": 86400}))
        keep("revoked-api", self.ok("slapos.post.v0.api_token", alice, {}))
        self.ok("slapos.remove.v0.api_token", alice, {"token_id": self.ids["revoked-api"]})
        keep("expired-api", self.ok("slapos.post.v0.api_token", alice, {"ttl": 60}))
        self.db.run_write(lambda session: session.execute(
            update(Token).where(Token.id == self.ids["expired-api"]).values(expires_at=time.time() - 1)))
        self.ids["used"] = tokens.parse_token(self.texts["used"], enrolment=True).id
        for label in ("api", "admin-api", "revoked-api", "expired-api"):
            self.who[f"bearer {label}"] = Identity(f"bearer {label}", headers={
                "Authorization": f"Bearer {self.texts[label]}"})
        self.who["frontend admin"] = Identity("frontend admin", environ={"REMOTE_ADDR": FRONTEND},
                                              headers={FRONTEND_HEADER: quote(self.pems["admin"])})

    # ------------------------------------------------------------------------ the catalog

    def rows(self) -> Rows:
        with self.db.read() as session:
            return {table.name: [dict(row._mapping) for row in
                                 session.execute(select(table).order_by(*table.primary_key.columns))]
                    for table in Base.metadata.sorted_tables}

    def restore(self) -> None:
        with self.db.write() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
            for table in Base.metadata.sorted_tables:
                if self.seed_rows[table.name]:
                    session.execute(table.insert(), self.seed_rows[table.name])

    def assert_unchanged(self, why: str) -> None:
        """No row changed, none added or removed, but for audit events of refused calls and the
        note of an API token's last use (the token did authenticate the call)."""
        now, seed = _without_last_use(self.rows()), _without_last_use(self.seed_rows)
        problems = [f"table {name}: rows before {[r for r in seed[name] if r not in rows]!r}; "
                    f"after {[r for r in rows if r not in seed[name]]!r}"[:3000]
                    for name, rows in now.items() if name != AUDIT and rows != seed[name]]
        kept = now[AUDIT][:len(seed[AUDIT])]
        if kept != seed[AUDIT]:
            problems.append("audit events of the seed changed or vanished")
        added = now[AUDIT][len(seed[AUDIT]):]
        problems += [f"audit event of an accepted change: {event!r}" for event in added if event["outcome"] != "refused"]
        assert not problems, f"{why}, but it changed the catalog:\n" + "\n".join(problems)

    def assert_listable(self, why: str) -> None:
        """After an accepted call, the admin still lists tokens, computers and the audit log."""
        for method in LISTINGS:
            response = self.post(method, self.who["admin"], {})
            assert response.status_code == 200, (f"{why} was accepted, then {method} answered "
                                                 f"{response.status_code}: {response.get_data(as_text=True)[:1000]}")
            openapi.validate_response(method, 200, strict_json(response.data))


def certificate_identity(label: str, der: bytes) -> Identity:
    return Identity(label, environ={PEER_CERTIFICATE: der})


def make_world(backend: str, url: str) -> AuthWorld:
    db = Database(url)
    migrate.upgrade(db.engine)
    authority = Authority(certs.new_ca())
    app = create_app(db, AppSettings(mode="master", authentication=True, tls_frontends=(FRONTEND,),
                                     max_body_bytes=MAX_BODY_BYTES, max_wait_seconds=0.0), authority)
    world = AuthWorld(backend, db, app, authority, app.test_client())
    world.seed()
    return world


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthWorld]:
    with throwaway_catalog_url(request, tmp_path_factory, "fuzz-auth") as url:
        world = make_world(request.param, url)
        try:
            yield world
        finally:
            world.db.dispose()


# ---------------------------------------------------------------------------------------- values

#: Header text an HTTP client lets through (printable Latin-1, no line breaks).
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=120)
#: Any JSON value, for a field of the wrong type.
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=10), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
HEX_AND_DOTS = st.sampled_from("0123456789abcdefABCDEF.: \n-=/+xg\x00é")
#: Numbers at the edges: of a JSON parser, a double, SQLite's and PostgreSQL's integers, a date.
EDGE_NUMBERS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -2**63 - 1, 2**64, 10**11, 10**12, 10**30, 10**400,
                -10**400, 1e308, -1e308, 5e-324, 0.5, 3600, 604800, 604801, 1000, 1001]
EDGES = st.sampled_from(EDGE_NUMBERS)
TTLS = st.one_of(st.none(), EDGES, EDGES, st.integers(-10, 10**6), st.integers(),
                 st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=5))
SINCES = st.one_of(st.none(), EDGES, EDGES, st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=5))
LIMITS = st.one_of(EDGES, st.integers(-5, 2000), st.floats(allow_nan=False, allow_infinity=False), st.booleans())
TITLES = st.one_of(st.text(max_size=300), st.sampled_from(TRICKY_STRINGS), st.just("a node"))
NAMES = st.one_of(st.from_regex(r"[a-z][a-z0-9._-]{0,12}", fullmatch=True),
                  st.sampled_from(["alice", "admin", "bob", "local", "Alice", "a" * 63, "a" * 64, "-a", "a b"]),
                  st.sampled_from(TRICKY_STRINGS), st.text(max_size=70))


def mutated(texts: list[str]) -> st.SearchStrategy[str]:
    """One of `texts` cut short, with a character changed, inserted or removed, re-cased or padded."""
    @st.composite
    def build(draw: Any) -> str:
        text = draw(st.sampled_from(texts))
        at = draw(st.integers(0, max(0, len(text) - 1)))
        how = draw(st.sampled_from(["cut", "change", "insert", "delete", "upper", "pad", "twice"]))
        if how == "cut":
            return text[:at]
        if how in ("change", "insert"):
            return text[:at] + draw(HEX_AND_DOTS) + text[at + (how == "change"):]
        if how == "delete":
            return text[:at] + text[at + 1:]
        if how == "upper":
            return text.upper()
        return f" \t{text}\n " if how == "pad" else text + text
    return build()


def mutated_ders(world: AuthWorld, names: list[str]) -> st.SearchStrategy[Identity]:
    """A real certificate with one byte changed, named as the app must see it: unreadable
    (garbage), another serial (unknown), or the same serial (the same caller: the app trusts the
    server to have verified the certificate, so a changed signature or name is not its business)."""
    @st.composite
    def build(draw: Any) -> Identity:
        name = draw(st.sampled_from(names))
        blob = bytearray(world.who[name].environ[PEER_CERTIFICATE])
        blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
        try:
            serial = x509.load_der_x509_certificate(bytes(blob)).serial_number
        except (ValueError, x509.InvalidVersion):  # InvalidVersion is not a ValueError
            label = "garbage DER (one byte changed)"
        else:
            label = name if serial == world.serials[name] else "foreign DER (one byte changed)"
        return Identity(label, environ={PEER_CERTIFICATE: bytes(blob)})
    return build()


def frontend_pem(world: AuthWorld, text: str) -> Identity:
    """A (mutated) PEM passed on by the front end, named as the app must see it."""
    environ, headers = {"REMOTE_ADDR": FRONTEND}, {FRONTEND_HEADER: text}
    try:
        certificate = x509.load_pem_x509_certificate(unquote(text).encode("ascii"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion):
        return Identity("front end, garbage PEM", environ, headers)
    known = {serial: label for label, serial in world.serials.items()}
    if certs.is_issued_by(certificate, world.authority.ca.certificate) and certificate.serial_number in known:
        return Identity(known[certificate.serial_number], environ, headers)
    return Identity("front end, foreign PEM (one character changed)", environ, headers)


def header_safe(text: str) -> str:
    """`text` without what no HTTP header carries (line breaks, NUL)."""
    return text.replace("\r", "").replace("\n", "").replace("\x00", "")


def truncated_bytes(blobs: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(blobs).flatmap(lambda blob: st.integers(1, len(blob) - 1).map(lambda n: blob[:n]))


def body_of(fields: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """A JSON object of `fields` (each optional one present or not, now and then of a wrong type or
    missing though required, sometimes with an unknown key), or a few raw bytes."""
    @st.composite
    def build(draw: Any) -> Any:
        body = {}
        for name, values in fields.items():
            present = draw(st.integers(0, 19)) > 0 if name in required else draw(st.booleans())
            if present:
                body[name] = draw(values) if draw(st.integers(0, 9)) else draw(JSON_VALUES)
        if not draw(st.integers(0, 19)):
            body[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        return body
    return st.one_of(*[build()] * 9, st.binary(max_size=120).map(RawBody),
                     st.sampled_from([b"", b"[]", b"null", b"{", b'{"a": 1e400}', b'{"token": "\\ud800"}']).map(RawBody))


class RawBody(bytes):
    """A body sent as these bytes, not as JSON text."""


# ---------------------------------------------------------------------------------------- identities

ADMINS = {"admin", "bearer admin-api", "frontend admin"}
USERS = ADMINS | {"alice", "bearer api"}
VALID = USERS | {"computer", "partition"}
#: Presented identities that must never reach a method (every non-public call: 401 or 403).
REFUSED_PREFIXES = ("garbage DER", "truncated DER", "foreign DER", "bearer garbage", "bearer mutated",
                    "bearer enrolment", "bearer revoked", "bearer expired", "revoked", "expired",
                    "front-end header from", "front end, garbage", "front end, foreign", "front end, mutated")


def _without_last_use(rows: Rows) -> Rows:
    return {**rows, "tokens": [{**row, "last_used_at": None} for row in rows["tokens"]]}


def must_be_refused(who: Identity | None) -> bool:
    return who is not None and who.label.startswith(REFUSED_PREFIXES)


def real_identities(world: AuthWorld, labels: set[str] | None = None) -> st.SearchStrategy[Identity | None]:
    names = sorted(VALID if labels is None else labels)
    return st.sampled_from([world.who[name] for name in names])


def garbage_identities(world: AuthWorld) -> st.SearchStrategy[Identity]:
    certified = ["admin", "alice", "computer", "partition"]
    ders = [world.who[name].environ[PEER_CERTIFICATE] for name in certified]
    pems = [quote(world.pems[name]) for name in ("admin", "alice", "computer")]
    api = [world.texts["api"], world.texts["admin-api"]]
    enrolment = [world.texts[name] for name in ("computer-enrolment", "user-enrolment", "used")]

    def cert(label: str) -> Callable[[bytes], Identity]:
        return lambda der: Identity(label, environ={PEER_CERTIFICATE: der})

    def bearer(label: str) -> Callable[[str], Identity]:
        return lambda text: Identity(label, headers={"Authorization": f"Bearer {text}"})

    def from_frontend(label: str) -> Callable[[str], Identity]:
        return lambda text: Identity(label, environ={"REMOTE_ADDR": FRONTEND}, headers={FRONTEND_HEADER: text})

    elsewhere = st.tuples(st.sampled_from([LOOPBACK, "10.0.0.1", "::1", "192.0.2.8"]),
                          st.one_of(HEADER_TEXT, st.sampled_from(pems))).map(lambda pair: Identity(
                              f"front-end header from {pair[0]}", environ={"REMOTE_ADDR": pair[0]},
                              headers={FRONTEND_HEADER: pair[1]}))
    return st.one_of(
        st.binary(min_size=1, max_size=200).map(cert("garbage DER")),
        truncated_bytes(ders).map(cert("truncated DER")),
        st.just(FOREIGN_DER).map(cert("foreign DER")),
        mutated_ders(world, certified),
        st.sampled_from([world.who["revoked"], world.who["expired"],
                         world.who["bearer revoked-api"], world.who["bearer expired-api"]]).map(
            lambda who: Identity(who.label.replace("-api", ""), who.environ, who.headers)),
        HEADER_TEXT.map(bearer("bearer garbage")),
        mutated(api).map(header_safe).filter(lambda text: text.strip().lower() not in api).map(bearer("bearer mutated")),
        st.sampled_from(enrolment).map(bearer("bearer enrolment token")),
        HEADER_TEXT.map(lambda text: Identity("authorization garbage", headers={"Authorization": text})),
        elsewhere,
        HEADER_TEXT.map(from_frontend("front end, garbage")),
        st.just(quote(certs.certificate_pem(_FOREIGN).decode())).map(from_frontend("front end, foreign")),
        mutated(pems).map(header_safe).map(lambda text: frontend_pem(world, text)),
    )


def identities(world: AuthWorld, natural: set[str]) -> st.SearchStrategy[Identity | None]:
    """Mostly the identity the method is for (none: an anonymous method); else any real one, none, or garbage."""
    usual = real_identities(world, natural) if natural else st.none()
    return st.one_of(*[usual] * 4, real_identities(world), st.none(), garbage_identities(world))


# ---------------------------------------------------------------------------------------- checks

def check(world: AuthWorld, method: str, who: Identity | None, body: Any, response: Any) -> Any:
    """What every answer must be (see the module docstring); the parsed document."""
    sent = bytes(body) if isinstance(body, RawBody) else json.dumps(body)
    why = f"POST /{method} {sent!r:.1500} as {who.label if who else 'nobody'}"
    status, raw = response.status_code, response.data
    assert status < 500, f"{why}: {status} {raw[:2000]!r}"
    assert b"Traceback" not in raw, f"{why}: {raw[:2000]!r}"
    try:
        document = strict_json(raw)
    except ValueError as error:
        raise AssertionError(f"{why}: the {status} answer is not strict JSON ({error}): {raw[:2000]!r}") from None
    if status >= 400:
        assert isinstance(document, dict) and set(document) == {"status", "type", "title", "code"}, (why, document)
        assert document["status"] == status and document["code"] in ERROR_CODES, (why, document)
        assert document["title"].strip() and "Traceback" not in document["title"], (why, document)
        if must_be_refused(who) and method not in PUBLIC_METHODS:
            assert status in (401, 403), f"{why}: a refused identity got {status} {document}"
        world.assert_unchanged(f"{why} was rejected ({status} {document['code']}: {document['title'][:300]})")
        return document
    assert status == 200, (why, status, raw[:2000])
    assert not must_be_refused(who) or method in PUBLIC_METHODS, f"{why}: a refused identity got through"
    openapi.validate_response(method, 200, document)
    world.assert_listable(why)
    return document


def accepted_by(world: AuthWorld, method: str, who: Identity | None, body: Any, document: Any) -> str | None:
    """Why an accepted call should not have been (None: it was allowed)."""
    label = who.label if who else "nobody"
    if method in ("slapos.post.v0.compute_node_token", "slapos.post.v0.user", "slapos.post.v0.user_token",
                  "slapos.post.v0.user_revocation"):
        return None if label in ADMINS else f"{label} is not an admin"
    if method == "slapos.post.v0.api_token":
        return None if label in USERS else f"{label} is not a user"
    if method == "slapos.remove.v0.api_token":
        own = {world.ids[name] for name in ("api", "revoked-api", "expired-api")}
        allowed = label in ADMINS or (label in ("alice", "bearer api") and body["token_id"] in own)
        return None if allowed else f"{label} may not revoke token {body['token_id']!r}"
    if method in ("slapos.post.v0.compute_node_certificate", "slapos.post.v0.compute_partition_certificate"):
        mine = label == "computer" and body["computer_guid"] == world.names["computer"]
        return None if mine else f"{label} got a certificate for {body['computer_guid']!r}"
    if method == "slapos.post.v0.enrolment":
        live = {world.ids[name] for name in ("computer-enrolment", "re-enrolment", "user-enrolment")}
        if tokens.parse_token(body["token"], enrolment=True).id not in live:
            return "a token that is not live was accepted"
        enrolled = certificate_identity("enrolled", der_of(document["certificate"]))
        whoami = world.ok("slapos.get.v0.whoami", enrolled)
        return None if (whoami["kind"], whoami["name"]) == (document["kind"], document["name"]) else \
            f"the new certificate identifies as {whoami}, not {document['kind']} {document['name']}"
    return None


def fuzz_method(world: AuthWorld, method: str, bodies: st.SearchStrategy[Any], natural: set[str],
                sqlite: int = 200, postgresql: int = 60) -> None:
    """`method` with `bodies` as `natural` identities mostly, else any identity."""
    @fuzz_settings(world.examples(sqlite=sqlite, postgresql=postgresql))
    @given(who=identities(world, natural), body=bodies)
    def run(who: Identity | None, body: Any) -> None:
        world.restore()
        if isinstance(body, RawBody):
            response = world.post(method, who, raw=bytes(body))
        else:
            response = world.post(method, who, body)
        document = check(world, method, who, body, response)
        if response.status_code == 200:
            refusal = accepted_by(world, method, who, body, document)
            assert refusal is None, f"POST /{method} {body!r:.1500}: {refusal}"

    run()


# ---------------------------------------------------------------------------------------- fields

def enrolment_tokens(world: AuthWorld) -> st.SearchStrategy[str]:
    """Live, used and API tokens, the same cut or mutated, with another CA's fingerprint, and text."""
    real = [world.texts[name] for name in ("computer-enrolment", "re-enrolment", "user-enrolment", "used")]
    api = [world.texts["api"], world.texts["admin-api"]]

    def other_master(text: str) -> str:
        token = tokens.parse_token(text, enrolment=True)
        return tokens.Token(token.id, token.secret, certs.fingerprint(_OTHER_CA.certificate)).text()

    return st.one_of(st.sampled_from(real), mutated(real), mutated(real), st.sampled_from(real).map(other_master),
                     st.sampled_from(real).map(lambda text: text.replace(".", ".sha256:", 2).replace(".sha256:", ".", 1)),
                     st.sampled_from(api), mutated(api), st.sampled_from(TRICKY_STRINGS), st.text(max_size=220))


def csrs() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(GOOD_CSRS), st.sampled_from(BAD_CSRS), mutated(GOOD_CSRS),
                     st.sampled_from(GOOD_CSRS).map(lambda pem: pem.replace("\n", "\r\n")),
                     st.sampled_from(TRICKY_STRINGS), st.text(max_size=100))


def computer_guids(world: AuthWorld) -> st.SearchStrategy[str]:
    known = [world.names["computer"], world.names["computer"], world.names["revoked"]]
    return st.one_of(st.sampled_from(known), st.sampled_from(["COMP-999", "local_computer", "COMP-0", "comp-1"]),
                     mutated(known), st.sampled_from(TRICKY_STRINGS))


def token_ids(world: AuthWorld) -> st.SearchStrategy[str]:
    known = sorted(world.ids.values())
    return st.one_of(st.sampled_from(known), st.sampled_from(known), mutated(known),
                     st.sampled_from(TRICKY_STRINGS), st.text(max_size=14))


# ---------------------------------------------------------------------------------------- tests

def test_enrolment(world: AuthWorld) -> None:
    """Tokens and CSRs: only a live token with a good CSR gets a certificate; nothing else burns it."""
    fuzz_method(world, "slapos.post.v0.enrolment",
                body_of({"token": enrolment_tokens(world), "csr": csrs()}, required=("token", "csr")),
                natural=set(), sqlite=300, postgresql=100)


def test_compute_node_token(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.post.v0.compute_node_token",
                body_of({"title": TITLES, "ttl": TTLS, "computer_guid": computer_guids(world)}), natural=ADMINS)


def test_user(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.post.v0.user",
                body_of({"name": NAMES, "admin": st.booleans(), "ttl": TTLS}, required=("name",)), natural=ADMINS)


def test_user_token(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.post.v0.user_token", body_of({"name": NAMES, "ttl": TTLS}, required=("name",)),
                natural=ADMINS, sqlite=80, postgresql=30)


def test_user_revocation(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.post.v0.user_revocation", body_of({"name": NAMES}, required=("name",)),
                natural=ADMINS, sqlite=80, postgresql=30)


def test_api_token(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.post.v0.api_token", body_of({"title": TITLES, "ttl": TTLS}),
                natural={"alice", "bearer api", "admin"})


def test_remove_api_token(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.remove.v0.api_token", body_of({"token_id": token_ids(world)}, required=("token_id",)),
                natural={"alice", "bearer api", "admin"})


def test_audit_event_list(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.allDocs.v0.audit_event_list", body_of({"since": SINCES, "limit": LIMITS}),
                natural={"admin", "alice", "computer"})


def test_compute_node_certificate(world: AuthWorld) -> None:
    fuzz_method(world, "slapos.post.v0.compute_node_certificate",
                body_of({"computer_guid": computer_guids(world), "csr": csrs()}, required=("computer_guid",)),
                natural={"computer"})


def test_compute_partition_certificate(world: AuthWorld) -> None:
    partitions = st.one_of(st.sampled_from(["slappart0", "slappart1", "slappart2", "slappart9", "../slappart0",
                                            "slappart0/../slappart1", "SLAPPART0"]), st.sampled_from(TRICKY_STRINGS))
    fuzz_method(world, "slapos.post.v0.compute_partition_certificate",
                body_of({"computer_guid": computer_guids(world), "compute_partition_id": partitions, "csr": csrs()},
                        required=("computer_guid", "compute_partition_id", "csr")),
                natural={"computer"})


def test_identity(world: AuthWorld) -> None:
    """Garbage identities on a user method, an admin method, a node's method and a SLAP XML read:
    401 or 403 (never a 500, never through); real identities as themselves."""
    calls = st.sampled_from([("slapos.get.v0.whoami", {}), ("slapos.post.v0.compute_node_token", {}),
                             ("slapos.allDocs.v0.audit_event_list", {"limit": 5}),
                             ("slapos.get.v0.compute_node_state", {"computer_guid": world.names["computer"]}),
                             ("getFullComputerInformation", {"computer_id": world.names["computer"]})])
    who_strategy = st.one_of(garbage_identities(world), garbage_identities(world), real_identities(world), st.none())

    @fuzz_settings(world.examples(sqlite=400, postgresql=120))
    @given(who=who_strategy, call=calls)
    def run(who: Identity | None, call: tuple[str, dict[str, Any]]) -> None:
        method, body = call
        world.restore()
        if method.startswith("slapos."):
            check(world, method, who, body, world.post(method, who, body))
            return
        environ = {"REMOTE_ADDR": LOOPBACK, **(who.environ if who else {})}
        response = world.client.get(f"/{method}", query_string=body, headers=who.headers if who else {},
                                    environ_base=environ)
        why = f"GET /{method} as {who.label if who else 'nobody'}"
        assert response.status_code < 500 and b"Traceback" not in response.data, \
            f"{why}: {response.status_code} {response.data[:2000]!r}"
        if must_be_refused(who) or who is None:
            assert response.status_code in (401, 403), f"{why}: {response.status_code} {response.data[:500]!r}"
        if response.status_code >= 400:
            world.assert_unchanged(f"{why} was rejected ({response.status_code})")

    run()


# ---------------------------------------------------------------------------------------- regressions

def bad_version(der: bytes) -> bytes:
    """`der` with its X.509 version out of range (cryptography raises InvalidVersion, not ValueError)."""
    at = der.index(b"\xa0\x03\x02\x01\x02") + 4
    return der[:at] + b"\x07" + der[at + 1:]


def test_unreadable_certificates_are_401_not_500(world: AuthWorld) -> None:
    """Issue 9: a certificate the app cannot parse, handed over by the server (environ) or by the
    front end (header), is no identity: 401, never a 500."""
    der = world.who["admin"].environ[PEER_CERTIFICATE]
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode("ascii")
    bad_pem = ("-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bad_version(der)).decode("ascii")
               + "-----END CERTIFICATE-----\n")
    presented = [Identity("garbage DER", environ={PEER_CERTIFICATE: blob})
                 for blob in (b"garbage", b"\x30\x03\x02\x01\x01", der[:100], bad_version(der))]
    presented += [Identity("front end, garbage PEM", {"REMOTE_ADDR": FRONTEND}, {FRONTEND_HEADER: quote(text)})
                  for text in ("garbage", pem[:200], bad_pem, certs.certificate_pem(_FOREIGN).decode("ascii"))]
    for who in presented:
        for method in ("slapos.get.v0.whoami", "slapos.post.v0.compute_node_token"):
            world.restore()
            answer = check(world, method, who, {}, world.post(method, who, {}))
            assert answer["status"] == 401, (who, answer)


def test_edge_numbers(world: AuthWorld) -> None:
    """Every number field of these methods with each edge number, as the admin: a clean 4xx, or a
    200 after which the catalog still lists (the deterministic floor under the random search)."""
    calls = [("slapos.post.v0.api_token", "ttl", {}), ("slapos.post.v0.compute_node_token", "ttl", {}),
             ("slapos.post.v0.user", "ttl", {"name": "carol"}), ("slapos.post.v0.user_token", "ttl", {"name": "alice"}),
             ("slapos.allDocs.v0.audit_event_list", "since", {}), ("slapos.allDocs.v0.audit_event_list", "limit", {})]
    failures = []
    for method, name, body in calls:
        for number in EDGE_NUMBERS:
            world.restore()
            sent = {**body, name: number}
            try:
                check(world, method, world.who["admin"], sent, world.post(method, world.who["admin"], sent))
            except AssertionError as error:
                failures.append(str(error)[:600])
    assert not failures, f"{len(failures)} calls failed:\n" + "\n".join(failures)
