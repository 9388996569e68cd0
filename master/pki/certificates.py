"""Certificates of the master's CA, as pure functions: keys and certificates in, objects out, no IO.

What each certificate is::

    certificate   key          signed by  validity         extensions
    CA            EC P-256     itself     10 years         basicConstraints CA:true pathlen:0 (critical),
                                                           keyUsage keyCertSign+cRLSign (critical)
    master (TLS)  EC P-256     the CA     365 days (opt.)  SAN = DNS names + IP addresses, EKU serverAuth
    from a CSR    the CSR's    the CA     `days`           subject CN = `common_name`, EKU clientAuth

A certificate never outlives its CA (its end is clamped to the CA's), starts five minutes in the
past (clock skew between master and nodes), and has a random serial number. The subject of a
certificate signed from a CSR is set by the CA: nothing but the public key is taken from the CSR,
and only after the CSR's signature has been verified with that key.

`fingerprint` is the SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as kubeadm's
discovery hash: ``sha256:`` followed by 64 hex digits. It names the CA's key, so it survives a
re-issue of the CA certificate with the same key.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from partita.master.pki.errors import CertificateRequestError
# The key, its PEM and the CA fingerprint are the same for the master and for a node or user
# that enrols (`slap.enrolment`, which may not import the master): defined there once.
from partita.slap.enrolment import fingerprint, key_pem, new_key  # noqa: F401  (re-exported)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PrivateKey = ec.EllipticCurvePrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

CA_DAYS = 3650
SERVER_DAYS = 365
CA_COMMON_NAME = "Partita master CA"
CLOCK_SKEW = datetime.timedelta(minutes=5)
MAX_CSR_BYTES = 16 * 1024
RSA_MIN_BITS, RSA_MAX_BITS = 2048, 8192
ACCEPTED_CURVES = (ec.SECP256R1, ec.SECP384R1)
USAGES = {"client": ExtendedKeyUsageOID.CLIENT_AUTH}

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class CertifiedKey:
    """A private key and the certificate of its public key (the CA, the master)."""

    key: PrivateKey
    certificate: x509.Certificate


def new_ca(*, common_name: str = CA_COMMON_NAME, days: int = CA_DAYS,
           now: datetime.datetime | None = None) -> CertifiedKey:
    """A fresh self-signed CA that signs end-entity certificates only (pathlen 0)."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _common_name(common_name))])
    start = _now(now) - CLOCK_SKEW
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=_days(days)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return CertifiedKey(key, builder.sign(key, hashes.SHA256()))


def server_certificate(ca: CertifiedKey, names: Iterable[str], addresses: Iterable[IPAddress | str], *,
                       days: int = SERVER_DAYS, now: datetime.datetime | None = None) -> CertifiedKey:
    """A new key and its TLS server certificate for `names` (DNS) and `addresses` (IP)."""
    dns = [check_dns_name(name) for name in names]
    ips = [parse_address(address) for address in addresses]
    if not dns and not ips:
        raise CertificateRequestError("a server certificate needs at least one DNS name or IP address")
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else str(ips[0]))])
    san = [x509.DNSName(name) for name in dns] + [x509.IPAddress(ip) for ip in ips]
    builder = _end_entity(ca, subject, key.public_key(), days, now, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return CertifiedKey(key, builder.sign(ca.key, hashes.SHA256()))


def sign_csr(ca: CertifiedKey, csr_pem: bytes | str, common_name: str, days: int, *, usage: str = "client",
             now: datetime.datetime | None = None) -> x509.Certificate:
    """The certificate of the key in `csr_pem`, for `common_name`, signed by `ca`.

    Refused (`CertificateRequestError`): a CSR that is not PEM, is over 16 KiB, whose signature does
    not verify, or whose key is not EC P-256/P-384, RSA 2048–8192 bits or Ed25519."""
    if usage not in USAGES:
        raise ValueError(f"unknown certificate usage {usage!r} (known: {', '.join(USAGES)})")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _common_name(common_name))])
    csr = parse_csr(csr_pem)
    builder = _end_entity(ca, subject, _accepted_key(csr), days, now, USAGES[usage])
    return builder.sign(ca.key, hashes.SHA256())


def parse_csr(csr_pem: bytes | str) -> x509.CertificateSigningRequest:
    """A CSR whose signature verifies with its own key (`CertificateRequestError` otherwise)."""
    data = csr_pem.encode("ascii", "replace") if isinstance(csr_pem, str) else bytes(csr_pem)
    if len(data) > MAX_CSR_BYTES:
        raise CertificateRequestError(f"the certificate signing request is over {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        raise CertificateRequestError(
            "not a certificate signing request: expected one PEM block "
            "'-----BEGIN CERTIFICATE REQUEST-----'") from None
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise CertificateRequestError(
            "the certificate signing request's signature does not verify with the key it holds")
    return csr


def derivation_secret(ca_key: PrivateKey) -> bytes:
    """A secret only the CA's holder can compute, for `derived_key` (HKDF of the CA key)."""
    material = ca_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"partita partition keys").derive(material)


def derived_key(secret: bytes, label: str) -> PrivateKey:
    """The EC P-256 key named by `label` under `secret`: the same key every time, stored nowhere.

    SlapOS's nodes ask the master for a partition's key and certificate on every pass and expect
    the same answer while it is valid; deriving the key lets the master answer the same without
    keeping any private key (the catalog holds the label and the certificate only)."""
    digest = hmac.new(secret, label.encode("utf-8"), hashlib.sha512).digest()
    scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def subject_alternative_names(certificate: x509.Certificate) -> tuple[frozenset[str], frozenset[IPAddress]]:
    """The DNS names (lower case) and IP addresses a certificate is valid for."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    names = frozenset(name.lower() for name in san.get_values_for_type(x509.DNSName))
    return names, frozenset(san.get_values_for_type(x509.IPAddress))


def is_issued_by(certificate: x509.Certificate, ca_certificate: x509.Certificate) -> bool:
    """Whether `ca_certificate` signed `certificate` (names match and the signature verifies)."""
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def same_public_key(key: PrivateKey, certificate: x509.Certificate) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == certificate.public_key().public_bytes(serialization.Encoding.DER, spki))


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def check_dns_name(name: str) -> str:
    """`name` if it is a DNS name a certificate may carry (ASCII labels; a leading ``*.`` allowed)."""
    labels = name.rstrip(".").split(".") if isinstance(name, str) else []
    if labels and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if not labels or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise CertificateRequestError(f"not a DNS name for a certificate: {name!r}")
    return name.rstrip(".").lower()


def parse_address(address: IPAddress | str) -> IPAddress:
    if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return address
    try:
        return ipaddress.ip_address(str(address).strip().strip("[]"))
    except ValueError:
        raise CertificateRequestError(f"not an IP address: {address!r}") from None


def _accepted_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    try:
        key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise CertificateRequestError("the certificate signing request holds an unsupported key type") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ACCEPTED_CURVES):
            return key
        raise CertificateRequestError(
            f"the certificate signing request holds an EC key on {key.curve.name}: use P-256 or P-384")
    if isinstance(key, rsa.RSAPublicKey):
        if RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
            return key
        raise CertificateRequestError(
            f"the certificate signing request holds a {key.key_size}-bit RSA key: "
            f"use {RSA_MIN_BITS} to {RSA_MAX_BITS} bits (or an EC P-256 key)")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise CertificateRequestError(
        f"the certificate signing request holds a {type(key).__name__.removeprefix('_')}: "
        "use EC P-256/P-384, RSA of at least 2048 bits or Ed25519")


def _end_entity(ca: CertifiedKey, subject: x509.Name, public: PublicKey, days: int,
                now: datetime.datetime | None, usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    start = _now(now) - CLOCK_SKEW
    end = min(start + datetime.timedelta(days=_days(days)), ca.certificate.not_valid_after_utc)
    ca_public = ca.certificate.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca.certificate.subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False, rsa=isinstance(public, rsa.RSAPublicKey)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
    )


def _key_usage(*, cert_sign: bool, rsa: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=rsa,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False)


def _common_name(value: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise CertificateRequestError(f"a common name has 1 to 64 printable characters, not {value!r}")
    return value


def _days(days: int) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        raise ValueError(f"a validity is a positive number of days, not {days!r}")
    return days


def _now(now: datetime.datetime | None) -> datetime.datetime:
    return now if now is not None else datetime.datetime.now(datetime.timezone.utc)
