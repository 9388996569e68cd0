"""`master.pki.certificates` (issue 9): the CA, the master's TLS certificate, CSR signing, fingerprints."""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from partita.master.pki import certificates as certs
from partita.master.pki.errors import CertificateRequestError, PkiError
from partita.slap.errors import ValidationError


@pytest.fixture(scope="module")
def ca() -> certs.CertifiedKey:
    return certs.new_ca()


def make_csr(key, common_name: str = "attacker-chosen", *, sign_with=None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(sign_with or key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM)


def test_the_ca_is_a_self_signed_p256_ca_for_ten_years(ca: certs.CertifiedKey) -> None:
    cert = ca.certificate
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3650)
    assert cert.not_valid_before_utc <= datetime.datetime.now(datetime.timezone.utc)


def test_serial_numbers_are_random(ca: certs.CertifiedKey) -> None:
    first = certs.server_certificate(ca, ["a.example"], [])
    second = certs.server_certificate(ca, ["a.example"], [])
    assert first.certificate.serial_number != second.certificate.serial_number
    assert first.certificate.serial_number.bit_length() > 64


def test_the_server_certificate_names_the_master_and_chains_to_the_ca(ca: certs.CertifiedKey) -> None:
    master = certs.server_certificate(ca, ["master.example.org", "localhost"], ["127.0.0.1", "::1"], days=30)
    cert = master.certificate
    cert.verify_directly_issued_by(ca.certificate)
    assert certs.is_issued_by(cert, ca.certificate)
    assert certs.same_public_key(master.key, cert)
    names, addresses = certs.subject_alternative_names(cert)
    assert names == {"master.example.org", "localhost"}
    assert addresses == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=30)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "master.example.org"


def test_the_server_certificate_defaults_to_a_year_and_never_outlives_the_ca() -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = certs.new_ca(days=100, now=now)
    short = certs.server_certificate(ca, ["m.example"], [], now=now)
    assert short.certificate.not_valid_after_utc == ca.certificate.not_valid_after_utc
    long_ca = certs.new_ca(now=now)
    cert = certs.server_certificate(long_ca, ["m.example"], [], now=now).certificate
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=365)


def test_a_certificate_of_another_ca_is_not_issued_by_this_one(ca: certs.CertifiedKey) -> None:
    other = certs.server_certificate(certs.new_ca(), ["m.example"], [])
    assert not certs.is_issued_by(other.certificate, ca.certificate)


@pytest.mark.parametrize("name", ["bad name", "-lead.example", "a..b", "é.example", "", "x" * 64 + ".example"])
def test_bad_dns_names_are_refused(ca: certs.CertifiedKey, name: str) -> None:
    with pytest.raises(CertificateRequestError, match="not a DNS name"):
        certs.server_certificate(ca, [name], [])


def test_a_bad_address_is_refused(ca: certs.CertifiedKey) -> None:
    with pytest.raises(CertificateRequestError, match="not an IP address: '300.1.1.1'"):
        certs.server_certificate(ca, ["m.example"], ["300.1.1.1"])


@pytest.mark.parametrize("key", [
    ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
    rsa.generate_private_key(65537, 2048), ed25519.Ed25519PrivateKey.generate(),
], ids=["p256", "p384", "rsa2048", "ed25519"])
def test_a_csr_is_signed_with_the_subject_the_ca_sets(ca: certs.CertifiedKey, key) -> None:
    cert = certs.sign_csr(ca, make_csr(key, "admin"), "COMP-42", 7)
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "COMP-42")])
    assert cert.public_key() == key.public_key()
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=7)


def test_a_csr_with_extensions_gets_none_of_them(ca: certs.CertifiedKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("victim.example")]), critical=False)
           .sign(key, hashes.SHA256()))
    cert = certs.sign_csr(ca, csr.public_bytes(serialization.Encoding.PEM), "COMP-1", 1)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_a_csr_with_a_bad_signature_is_refused(ca: certs.CertifiedKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    good = x509.load_pem_x509_csr(make_csr(key))
    # The same request with its signature's last bytes changed.
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x55
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CertificateRequestError, match="signature does not verify"):
        certs.sign_csr(ca, tampered, "COMP-1", 1)


def test_a_csr_signed_by_another_key_is_refused(ca: certs.CertifiedKey) -> None:
    """A CSR carrying a key its sender does not hold (signed by another key) proves nothing."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
    good = builder.sign(key, hashes.SHA256())
    forged = builder.sign(other, hashes.SHA256())
    # Splice: key's public key info with other's signature.
    good_der, forged_der = (c.public_bytes(serialization.Encoding.DER) for c in (good, forged))
    good_info = x509.load_der_x509_csr(good_der).tbs_certrequest_bytes
    forged_info = forged.tbs_certrequest_bytes
    spliced = forged_der.replace(forged_info, good_info)
    csr = x509.load_der_x509_csr(spliced).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CertificateRequestError, match="signature does not verify"):
        certs.sign_csr(ca, csr, "COMP-1", 1)


def test_a_weak_rsa_key_is_refused(ca: certs.CertifiedKey) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(CertificateRequestError, match="1024-bit RSA key: use 2048"):
        certs.sign_csr(ca, make_csr(weak), "COMP-1", 1)


def test_an_unaccepted_curve_is_refused(ca: certs.CertifiedKey) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(CertificateRequestError, match="secp256k1: use P-256 or P-384"):
        certs.sign_csr(ca, make_csr(key), "COMP-1", 1)


@pytest.mark.parametrize("garbage", [b"", b"hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                     "-----END CERTIFICATE REQUEST-----\n", b"\xff" * 100])
def test_garbage_is_refused_as_a_validation_error(ca: certs.CertifiedKey, garbage) -> None:
    with pytest.raises(CertificateRequestError, match="not a certificate signing request") as caught:
        certs.sign_csr(ca, garbage, "COMP-1", 1)
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, PkiError)
    assert caught.value.status == 400 and caught.value.code == "INVALID"


def test_an_oversized_csr_is_refused(ca: certs.CertifiedKey) -> None:
    with pytest.raises(CertificateRequestError, match="over 16384 bytes"):
        certs.sign_csr(ca, b"A" * 20000, "COMP-1", 1)


@pytest.mark.parametrize("name", ["", "x" * 65, "line\nbreak"])
def test_a_bad_common_name_is_refused(ca: certs.CertifiedKey, name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CertificateRequestError, match="common name"):
        certs.sign_csr(ca, make_csr(key), name, 1)


def test_the_fingerprint_is_the_sha256_of_the_public_key_info(ca: certs.CertifiedKey) -> None:
    value = certs.fingerprint(ca.certificate)
    spki = ca.key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert value == "sha256:" + hashlib.sha256(spki).hexdigest()
    assert value == certs.fingerprint(ca.certificate)
    assert value != certs.fingerprint(certs.new_ca().certificate)


def test_the_fingerprint_agrees_with_openssl(ca: certs.CertifiedKey) -> None:
    pem = certs.certificate_pem(ca.certificate)
    public = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem, capture_output=True,
                            check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=public, capture_output=True,
                         check=True, timeout=30).stdout
    assert certs.fingerprint(ca.certificate) == "sha256:" + hashlib.sha256(der).hexdigest()
