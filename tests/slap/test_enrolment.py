"""slap.enrolment: keys and requests, the CA checked against the token before the secret is sent,
the enrolment exchange against a real local HTTPS server, and the owner-only files."""
from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from partita.master.pki import certificates as master_pki
from partita.slap import enrolment
from partita.slap.errors import ClientError, RemoteError, ValidationError
from partita.slap.tokens import new_token
from tests.support.enrolment_server import EnrolmentServer


@pytest.fixture
def server() -> Iterator[EnrolmentServer]:
    with EnrolmentServer() as running:
        yield running


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_csr_is_of_the_key_and_signed_by_it() -> None:
    key = enrolment.new_key()
    csr = x509.load_pem_x509_csr(enrolment.csr_pem(key).encode())
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    assert key.curve.name == "secp256r1"
    assert enrolment.load_key(enrolment.key_pem(key)).private_numbers() == key.private_numbers()


def test_the_fingerprint_is_the_masters() -> None:
    ca = master_pki.new_ca()
    assert enrolment.fingerprint(ca.certificate) == master_pki.fingerprint(ca.certificate)


def test_a_ca_of_another_fingerprint_is_refused_naming_both() -> None:
    served, expected = master_pki.new_ca(), master_pki.new_ca()
    wanted = master_pki.fingerprint(expected.certificate)
    with pytest.raises(enrolment.FingerprintMismatch) as refused:
        enrolment.check_ca(master_pki.certificate_pem(served.certificate), wanted, "https://m.example")
    message = str(refused.value)
    assert "\n" not in message
    assert master_pki.fingerprint(served.certificate) in message and wanted in message


def test_text_that_is_not_a_token_is_one_line() -> None:
    with pytest.raises(ValidationError, match="not an enrolment token"):
        enrolment.parse_enrolment_token("abc.def")


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "https://", "ftp://x", "https://a b"])
def test_only_https_master_urls_are_taken(url: str) -> None:
    with pytest.raises(ValidationError, match="https://"):
        enrolment.check_master_url(url)


def test_fetch_ca_checks_the_fingerprint_of_what_it_downloads(server: EnrolmentServer) -> None:
    token = enrolment.parse_enrolment_token(server.token("user", "alice"))
    assert enrolment.fetch_ca(server.url, token) == server.serve_ca


def test_enrol_returns_a_certificate_of_the_key(server: EnrolmentServer) -> None:
    key = enrolment.new_key()
    enrolled = enrolment.enrol(server.url, server.token("user", "alice"), key)
    assert (enrolled.kind, enrolled.name) == ("user", "alice")
    certificate = enrolment.load_certificate(enrolled.certificate_pem)
    assert enrolment.matches_key(key, certificate)
    assert enrolled.not_after == certificate.not_valid_after_utc
    assert enrolled.ca_pem.strip() == server.serve_ca.strip()
    (post,) = server.posts("slapos.post.v0.enrolment")
    assert "PRIVATE" not in str(post.body) and post.body["csr"].startswith("-----BEGIN CERTIFICATE REQUEST")


def test_a_token_naming_another_ca_is_refused_before_the_secret_is_sent(server: EnrolmentServer) -> None:
    other = master_pki.fingerprint(master_pki.new_ca().certificate)
    with pytest.raises(enrolment.FingerprintMismatch) as refused:
        enrolment.enrol(server.url, server.token("user", "alice", fingerprint=other), enrolment.new_key())
    assert other in str(refused.value) and server.fingerprint in str(refused.value)
    assert server.posts("slapos.post.v0.enrolment") == []


def test_a_master_serving_another_ca_gets_no_secret(server: EnrolmentServer) -> None:
    token = server.token("user", "alice")
    server.serve_ca = master_pki.certificate_pem(master_pki.new_ca().certificate)  # someone in between
    with pytest.raises(enrolment.FingerprintMismatch):
        enrolment.enrol(server.url, token, enrolment.new_key())
    assert server.posts("slapos.post.v0.enrolment") == []


def test_a_used_token_is_the_masters_refusal(server: EnrolmentServer) -> None:
    token = server.token("user", "alice")
    enrolment.enrol(server.url, token, enrolment.new_key())
    with pytest.raises(RemoteError) as refused:
        enrolment.enrol(server.url, token, enrolment.new_key())
    assert refused.value.code == "BAD_TOKEN"


def test_an_unreachable_master_is_one_line() -> None:
    token = new_token("sha256:" + "0" * 64)
    with pytest.raises(ClientError, match="cannot download the CA certificate from https://127.0.0.1:9/"):
        enrolment.fetch_ca("https://127.0.0.1:9", token, timeout=5)


def test_a_certificate_of_another_key_is_refused() -> None:
    ca = master_pki.new_ca()
    certificate = master_pki.sign_csr(ca, enrolment.csr_pem(enrolment.new_key()), "x", 1)
    answer = {"certificate": master_pki.certificate_pem(certificate).decode(),
              "ca_certificate": master_pki.certificate_pem(ca.certificate).decode()}
    with pytest.raises(ClientError, match="not of the key"):
        enrolment.check_issued(answer, enrolment.new_key(), None, "the test")


def test_keys_are_owner_only_and_directories_0700(tmp_path: Path) -> None:
    directory = enrolment.private_directory(tmp_path / "a" / ".slapos")
    assert mode(directory) == 0o700
    enrolment.write_key(directory / "k.key", enrolment.new_key())
    assert mode(directory / "k.key") == 0o600
    enrolment.write_certificate(directory / "c.crt", b"-----BEGIN CERTIFICATE-----\n")
    assert mode(directory / "c.crt") == 0o644
