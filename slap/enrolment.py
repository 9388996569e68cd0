"""Enrolment: how a user or a node turns a one-time token into a certificate of the master's CA.

::

    new_key()                     EC P-256, made here; it never leaves this machine
    csr_pem(key)                  the request the master signs (the master sets the subject)
    fetch_ca(url, token)          GET <url>/partita/ca.crt, unverified, then checked against the
                                  token's CA fingerprint: FingerprintMismatch if it differs
    enrol(url, token_text, key)   fetch_ca, then POST slapos.post.v0.enrolment {token, csr} over a
                                  session that verifies the master against that CA -> Enrolled

The pure parts (keys, requests, fingerprints, reading certificates) take and return bytes; the IO
edges are `fetch_ca`, `enrol`, `request_certificate` and the file writers at the bottom, which
create keys owner-only (0600) from the start and directories 0700 (`partita.slap.fileio`).

Errors (all `PartitaError`, one line): `FingerprintMismatch` (the CA served is not the token's: a
man in the middle or a token of another master; the secret is not sent), `ClientError` for a
master that cannot be reached or answers something that is not a certificate of our key,
`RemoteError` for the master's own refusals (``BAD_TOKEN``: unknown, expired, revoked or used
token), `ValidationError` for text that is not a token.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from partita.slap.client import MasterClient
from partita.slap.errors import ClientError, ValidationError
from partita.slap.fileio import atomic_write
from partita.slap.tokens import FINGERPRINT_PREFIX, Token, TokenFormatError, parse_token

CA_PATH = "/partita/ca.crt"
ENROLMENT_METHOD = "slapos.post.v0.enrolment"
FETCH_TIMEOUT = 30.0
MAX_CA_BYTES = 64 * 1024
KINDS = ("user", "computer")
PrivateKey = ec.EllipticCurvePrivateKey


class FingerprintMismatch(ClientError):
    """The CA certificate a master serves is not the one the token names."""

    code = "FINGERPRINT_MISMATCH"


@dataclass(frozen=True)
class Enrolled:
    """What the master answered to an enrolment: who we are now and the certificates (PEM)."""

    kind: str                       # "user" | "computer"
    name: str                       # the user's name or the computer's id
    certificate_pem: bytes
    ca_pem: bytes
    not_after: datetime.datetime    # UTC, read from the certificate itself


# -- keys, requests and certificates (pure) ----------------------------------------------------

def new_key() -> PrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (the file holding it is owner-only)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> PrivateKey:
    """The EC private key in `pem` (a ValidationError for anything else)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValidationError("not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValidationError("not an EC private key")
    return key


def csr_pem(key: PrivateKey, common_name: str = "partita-enrolment") -> str:
    """A certificate signing request for `key` (the master replaces the subject with its own)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate(pem: bytes | str, what: str = "certificate") -> x509.Certificate:
    """The first certificate of `pem` (a ClientError naming `what` if there is none)."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ClientError(f"the {what} is not a PEM certificate") from None


def fingerprint(certificate: x509.Certificate) -> str:
    """``sha256:`` + hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as the token
    carries it (the master computes the same; slap may not import it)."""
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return FINGERPRINT_PREFIX + hashlib.sha256(spki).hexdigest()


def check_ca(ca_pem: bytes, expected: str, master_url: str) -> x509.Certificate:
    """The CA certificate in `ca_pem` if its fingerprint is `expected`; FingerprintMismatch
    naming both otherwise."""
    certificate = load_certificate(ca_pem, f"CA served by {master_url}")
    found = fingerprint(certificate)
    if found != expected:
        raise FingerprintMismatch(
            f"the CA served by {master_url} has the fingerprint {found}, but the token names {expected}: "
            "refusing to send the token (wrong master, or someone in between)")
    return certificate


def matches_key(key: PrivateKey, certificate: x509.Certificate) -> bool:
    """Whether `certificate` certifies the public key of `key`."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == certificate.public_key().public_bytes(serialization.Encoding.DER, spki))


def validity(certificate: x509.Certificate) -> tuple[datetime.datetime, datetime.datetime]:
    """The certificate's not-before and not-after, in UTC."""
    return certificate.not_valid_before_utc, certificate.not_valid_after_utc


def check_issued(answer: Any, key: PrivateKey, ca_fingerprint: str | None, what: str) -> tuple[bytes, bytes]:
    """The certificate and CA (PEM) of a master's answer ``{"certificate", "ca_certificate", ...}``,
    checked: the certificate is of `key`, the CA is the expected one (when `ca_fingerprint` is
    given) and signed the certificate. A ClientError naming `what` otherwise."""
    if not isinstance(answer, dict):
        raise ClientError(f"the master's answer to {what} is not a JSON object")
    cert_text, ca_text = answer.get("certificate"), answer.get("ca_certificate")
    if not isinstance(cert_text, str) or not isinstance(ca_text, str):
        raise ClientError(f"the master's answer to {what} has no certificate and ca_certificate")
    certificate = load_certificate(cert_text, f"certificate answered to {what}")
    ca = load_certificate(ca_text, f"CA certificate answered to {what}")
    if not matches_key(key, certificate):
        raise ClientError(f"the certificate answered to {what} is not of the key this request sent")
    if ca_fingerprint is not None and fingerprint(ca) != ca_fingerprint:
        raise ClientError(f"the CA answered to {what} is not the master's CA ({fingerprint(ca)})")
    try:
        certificate.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - any failure means "not signed by it"
        raise ClientError(f"the certificate answered to {what} was not signed by the CA answered") from None
    return cert_text.encode("ascii"), ca_text.encode("ascii")


# -- talking to the master (IO) ------------------------------------------------------------

def check_master_url(master_url: str) -> str:
    """The master's URL without a trailing slash; it must be https (an enrolment sends a secret)."""
    url = master_url.strip().rstrip("/")
    if not url.startswith("https://") or len(url) <= len("https://") or any(c.isspace() for c in url):
        raise ValidationError(f"--master-url must be an https:// URL, not {master_url!r}")
    return url


def parse_enrolment_token(text: str) -> Token:
    """The enrolment token in `text`; a ValidationError (one line) if it is not one."""
    try:
        return parse_token(text, enrolment=True)
    except TokenFormatError as error:
        raise ValidationError(f"--token: {error}") from None


def fetch_ca(master_url: str, token: Token, *, timeout: float = FETCH_TIMEOUT) -> bytes:
    """The master's CA certificate (PEM), checked against the token's fingerprint."""
    url = master_url.rstrip("/") + CA_PATH
    # The one request of Partita that does not verify the server: we do not have the CA yet, it
    # is what we are downloading. Nothing secret is sent, and what comes back is trusted only
    # once its fingerprint equals the one in the token, which reached us out of band.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning: deliberate here
            response = requests.get(url, verify=False, timeout=timeout, stream=True,
                                    headers={"Accept": "application/x-pem-file"})
            try:
                data = response.raw.read(MAX_CA_BYTES + 1, decode_content=True)
            finally:
                response.close()
    except requests.RequestException as error:
        raise ClientError(f"cannot download the CA certificate from {url}: {_reason(error)}") from None
    if response.status_code != 200:
        raise ClientError(f"cannot download the CA certificate from {url}: HTTP {response.status_code}")
    if len(data) > MAX_CA_BYTES:
        raise ClientError(f"the CA certificate at {url} is over {MAX_CA_BYTES} bytes")
    check_ca(data, token.ca_fingerprint or "", master_url)
    return data


def enrol(master_url: str, token_text: str, key: PrivateKey, *, timeout: float = FETCH_TIMEOUT) -> Enrolled:
    """Trade the enrolment token for a certificate of `key` (see the module docstring).

    Nothing is written to disk but a temporary copy of the CA (removed before returning)."""
    token = parse_enrolment_token(token_text)
    ca_pem = fetch_ca(master_url, token, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="partita-enrol-") as directory:
        ca_file = os.path.join(directory, "ca.crt")
        atomic_write(ca_file, ca_pem, mode=0o600)
        with MasterClient(master_url, timeout=timeout, ca_file=ca_file) as client:
            answer = client.call(ENROLMENT_METHOD, {"token": token.text(), "csr": csr_pem(key)})
    certificate_pem, answered_ca = check_issued(answer, key, token.ca_fingerprint, "the enrolment")
    kind, name = answer.get("kind"), answer.get("name")
    if kind not in KINDS or not isinstance(name, str) or not name:
        raise ClientError(f"the master's answer to the enrolment has no kind ({'|'.join(KINDS)}) and name")
    not_after = validity(load_certificate(certificate_pem))[1]
    return Enrolled(kind, name, certificate_pem, answered_ca, not_after)


def request_certificate(client: MasterClient, method: str, body: dict[str, Any], key: PrivateKey,
                        ca_fingerprint: str | None = None) -> tuple[bytes, bytes]:
    """Ask `client`'s master for a certificate of `key` (`method` is one of the computer's calls
    ``slapos.post.v0.compute_node_certificate``, ``…compute_partition_certificate``); the
    certificate and the CA (PEM), checked as `check_issued` does."""
    answer = client.call(method, {**body, "csr": csr_pem(key)})
    return check_issued(answer, key, ca_fingerprint, method)


def _reason(error: BaseException) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return text if len(text) < 200 else type(error).__name__


# -- files -------------------------------------------------------------------------------------

def private_directory(path: str | os.PathLike[str], mode: int = 0o700) -> Path:
    """Make `path` (and missing parents) a directory of mode `mode`, owner-only by default."""
    directory = Path(path)
    directory.mkdir(mode=mode, parents=True, exist_ok=True)
    if directory.is_symlink() or not directory.is_dir():
        raise ClientError(f"{directory} is not a directory")
    os.chmod(directory, mode)
    return directory


def write_key(path: str | os.PathLike[str], key: PrivateKey) -> None:
    """Write `key` to `path`, owner-only (0600) from creation, atomically."""
    atomic_write(path, key_pem(key), mode=0o600)


def write_certificate(path: str | os.PathLike[str], pem: bytes) -> None:
    """Write a certificate (public) to `path`, atomically."""
    atomic_write(path, pem, mode=0o644)
