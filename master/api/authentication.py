"""Who is calling, on an authenticated master: from the TLS client certificate or a bearer token.

The server (`master.server`) puts the DER of the verified client certificate into the WSGI
environ as ``partita.peer_certificate`` (gunicorn does not pass it on by itself). The identity is::

    client certificate ──► its serial in the catalog: not revoked, not expired ──► user / computer /
                                                                                   partition
    Authorization: Bearer <API token> ──► the token's user
    X-Partita-Client-Certificate (URL-escaped PEM) ──► only from a configured TLS front end
                                                      ([slapmaster] tls_frontends), checked
                                                      against the CA here too
    nothing ──► 401 (only the CA certificate and enrolment are open to anonymous callers)

Headers and form fields naming a partition (X-SlapPartition, computer_id/computer_partition_id)
never establish an identity: they only narrow it (`Caller.acting_as`). The proxy (no
authentication) believes them, as slapproxy does.
"""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import current_app, g, request

from partita.master.pki import certificates as certs
from partita.master.services import certificates, credentials
from partita.master.services.certificates import Authority
from partita.master.services.identity import Caller
from partita.slap.errors import Forbidden, Unauthenticated

PEER_CERTIFICATE = "partita.peer_certificate"
FRONTEND_HEADER = "X-Partita-Client-Certificate"
AUTHORITY = "partita.authority"
PUBLIC_PATHS = frozenset({"/partita/ca.crt", "/slapos.post.v0.enrolment", "/openapi.yaml", "/openapi.json"})
NO_IDENTITY = ("this master requires a client certificate or an API token "
               "(enrol with `slapos configure client --token …`; see docs/operations.md)")


def authority() -> Authority:
    return current_app.extensions[AUTHORITY]


def address() -> str:
    return request.remote_addr or ""


def identify() -> Caller:
    """The authenticated caller of this request (computed once per request)."""
    found = g.get("partita_identity")
    if found is None:
        found = _identify()
        g.partita_identity = found
    return found


def _identify() -> Caller:
    db, settings = current_app.extensions["partita.db"], current_app.extensions["partita.settings"]
    der = _presented_certificate(settings.tls_frontends)
    if der is not None:
        serial = _serial(der)
        with db.read() as session:
            return certificates.identify(session, serial, address())
    bearer = _bearer()
    if bearer is not None:
        with db.read() as session:
            caller, stale_token = credentials.authenticate_api(session, bearer, address())
        if stale_token is not None:
            db.run_write(lambda session: credentials.touch(session, stale_token))
        return caller
    header = request.headers.get("Authorization", "")
    if header.strip().startswith("X-SlapPartition"):
        raise Unauthenticated("X-SlapPartition is not an identity on this master: a partition presents "
                              "its certificate (key-file/cert-file of [slap-connection])")
    raise Unauthenticated(NO_IDENTITY)


def _presented_certificate(frontends: tuple[str, ...]) -> bytes | None:
    """The DER of the client certificate: from the TLS connection, or from a trusted front end."""
    header = request.headers.get(FRONTEND_HEADER)
    if header is not None:
        if address() not in frontends:
            raise Forbidden(f"{FRONTEND_HEADER} is accepted only from the TLS front ends named in "
                            "[slapmaster] tls_frontends")
        return _frontend_certificate(header)
    der = request.environ.get(PEER_CERTIFICATE)
    return der or None


def _frontend_certificate(header: str) -> bytes:
    """The certificate a front end passed on, which must have been signed by this master's CA."""
    try:
        certificate = x509.load_pem_x509_certificate(unquote(header).encode("ascii"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion):
        raise Unauthenticated(f"{FRONTEND_HEADER} does not hold a PEM certificate") from None
    if not certs.is_issued_by(certificate, authority().ca.certificate):
        raise Unauthenticated(f"the certificate in {FRONTEND_HEADER} was not issued by this master's CA")
    return certificate.public_bytes(Encoding.DER)


@lru_cache(maxsize=4096)
def _serial(der: bytes) -> str:
    """The serial of a DER certificate (parsed once per distinct certificate and worker)."""
    try:
        return certificates.serial_hex(x509.load_der_x509_certificate(der))
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is not a ValueError
        raise Unauthenticated("the client certificate cannot be read") from None


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    if not value.strip():
        raise Unauthenticated("an empty bearer token")
    return value.strip()
