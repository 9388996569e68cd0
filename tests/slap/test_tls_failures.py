"""slap.tls_failures.explain: requests' texts of failed handshakes as one line each."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from partita.slap.errors import AuthenticationFailed
from partita.slap.tls_failures import certificate_not_after, der_not_after, explain, ssl_reason
from tests.slap.tls_server import EXPIRED_ON, make_pki

URL = "https://master.example:8443"
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)

VERIFY_FAILED = ("HTTPSConnectionPool(host='127.0.0.1', port=4): Max retries exceeded with url: /x (Caused by "
                 "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                 "failed: self-signed certificate in certificate chain (_ssl.c:992)')))")
UNKNOWN_CA = ("HTTPSConnectionPool(host='127.0.0.1', port=4): Max retries exceeded with url: /x (Caused by "
              "SSLError(SSLError(1, '[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2546)')))")
CERT_EXPIRED = ("HTTPSConnectionPool(host='127.0.0.1', port=4): Max retries exceeded with url: /x (Caused by "
                "SSLError(SSLError(1, '[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert certificate expired "
                "(_ssl.c:2546)')))")
RESET = "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"


def explain_now(text: str, ca_file: str | None = "/etc/ca.crt", cert_file: str | None = None
                ) -> AuthenticationFailed | None:
    return explain(text, master_url=URL, ca_file=ca_file, cert_file=cert_file, now=NOW)


def test_server_certificate_that_does_not_verify_names_url_ca_file_and_reason() -> None:
    error = explain_now(VERIFY_FAILED)
    assert str(error) == (f"cannot verify the master at {URL} against the CA in /etc/ca.crt: "
                          "certificate verify failed: self-signed certificate in certificate chain")
    assert "the system's CAs" in str(explain_now(VERIFY_FAILED, ca_file=None))


def test_unknown_ca_alert_says_the_certificate_is_not_from_this_masters_ca() -> None:
    assert str(explain_now(UNKNOWN_CA, cert_file="/home/a/user.crt")) == (
        f"the master at {URL} refused the client certificate /home/a/user.crt: "
        "it was not issued by this master's CA")


def test_other_alerts_are_given_as_openssl_says_them() -> None:
    assert str(explain_now(CERT_EXPIRED, cert_file="/missing.crt")).endswith(
        "refused the client certificate /missing.crt: sslv3 alert certificate expired")


def test_expired_local_certificate_gives_its_date_and_what_to_do(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    for text in (CERT_EXPIRED, UNKNOWN_CA, RESET):
        error = explain_now(text, cert_file=pki.expired.cert_file)
        assert str(error) == (f"the master at {URL} refused the client certificate {pki.expired.cert_file}: "
                              f"it expired on {EXPIRED_ON:%Y-%m-%d}: renew it or enrol again (docs/operations.md)")


def test_a_reset_with_a_valid_certificate_may_be_a_refusal_and_without_one_is_not(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    assert str(explain_now(RESET, cert_file=pki.client.cert_file)) == (
        f"the master at {URL} closed the TLS connection without answering: it may have refused the client "
        f"certificate {pki.client.cert_file} (issued by another CA, or revoked) "
        "(('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer')))")
    assert explain_now(RESET) is None
    assert explain_now("Connection refused", cert_file=pki.client.cert_file) is None


def test_certificate_not_after_reads_the_file_or_gives_none(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    assert certificate_not_after(pki.expired.cert_file) == EXPIRED_ON
    assert certificate_not_after(str(tmp_path / "nope.crt")) is None
    assert certificate_not_after(pki.expired.key_file) is None
    assert certificate_not_after(None) is None
    broken = tmp_path / "broken.crt"
    broken.write_text("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n")
    assert certificate_not_after(str(broken)) is None


@pytest.mark.parametrize("not_after", [
    datetime(2049, 12, 31, 23, 59, 59, tzinfo=timezone.utc),  # UTCTime
    datetime(2050, 1, 1, tzinfo=timezone.utc),                # GeneralizedTime
    datetime(1999, 6, 1, 12, tzinfo=timezone.utc),
])
def test_der_reading_agrees_with_cryptography(not_after: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    der = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(datetime(1990, 1, 1))
           .not_valid_after(not_after).sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    assert der_not_after(der) == not_after
    with pytest.raises((ValueError, IndexError)):
        der_not_after(b"\x30\x03\x02\x01\x01")


def test_ssl_reason_without_openssl_text_keeps_the_end() -> None:
    assert ssl_reason(UNKNOWN_CA) == "tlsv1 alert unknown ca"
    assert ssl_reason("something else") == "something else"
