"""One line for a TLS handshake with the master that failed, from requests' nested error text.

requests reports a failed handshake as a long chain (``HTTPSConnectionPool(...): Max retries
exceeded ... (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED]
certificate verify failed: ... (_ssl.c:1006)')))``). `explain` reads which side refused and says
it in one line (an `AuthenticationFailed`)::

    what the text shows                          the line
    ───────────────────────────────────────────  ──────────────────────────────────────────────────
    certificate verify failed (our side refused  cannot verify the master at URL against the CA in
    the master's certificate)                    FILE: <reason>   (without a CA file: "against the
                                                 system's CAs")
    an alert about our certificate (unknown ca,  the master at URL refused the client certificate
    certificate unknown, bad certificate,        FILE: <why>, where <why> is
    certificate expired, certificate revoked)      - "it expired on YYYY-MM-DD: renew it or enrol
                                                     again (docs/operations.md)" when the local
                                                     certificate's notAfter is past,
                                                   - "it was not issued by this master's CA" for
                                                     unknown ca,
                                                   - else the alert itself
    the connection closed during the exchange    with our certificate expired: the same "refused
    (EOF, reset) and we sent a certificate       ... expired on" line; else "the master at URL
                                                 closed the TLS connection without answering: it
                                                 may have refused the client certificate FILE
                                                 (...)". With TLS 1.3 the client sends its request
                                                 before it learns that its certificate is refused;
                                                 a server that closes with that request unread
                                                 resets the connection, and the reset may overtake
                                                 the alert
    anything else                                None: the caller says "cannot reach the master"

The expiry is read from the certificate file itself, so the line is right even when the server's
alert is vague ("certificate unknown"). It is read with a few lines of DER, not `cryptography`:
the client also runs in the node's toolchain (recipes), which has only requests and buildout.
`explain` takes the current time as an argument.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone

from partita.slap.errors import AuthenticationFailed

RENEW_HINT = "renew it or enrol again (docs/operations.md)"

_SSL_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\] ([^(]*?)\s*\(_ssl\.c")
_VERIFY_FAILED = re.compile(r"certificate verify failed[^'\"()]*", re.IGNORECASE)
_REFUSED_ALERTS = ("alert unknown ca", "certificate unknown", "bad certificate", "certificate expired",
                   "certificate revoked")
_CLOSED = ("connection reset", "eof occurred", "unexpected eof", "broken pipe")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")


def explain(error_text: str, *, master_url: str, ca_file: str | None, cert_file: str | None,
            now: datetime) -> AuthenticationFailed | None:
    """The one-line error for a failed TLS exchange, or None when the text is not one."""
    lowered = error_text.lower()
    if "certificate verify failed" in lowered:
        match = _VERIFY_FAILED.search(error_text)
        reason = match.group(0).strip() if match else ssl_reason(error_text)
        against = f"the CA in {ca_file}" if ca_file else "the system's CAs"
        return AuthenticationFailed(f"cannot verify the master at {master_url} against {against}: {reason}")
    expired_on = expiry_if_past(cert_file, now)
    alert = next((alert for alert in _REFUSED_ALERTS if alert in lowered), None)
    closed = bool(cert_file) and any(word in lowered for word in _CLOSED)
    if alert is None and not closed:
        return None
    if alert is None and expired_on is None:
        return AuthenticationFailed(
            f"the master at {master_url} closed the TLS connection without answering: it may have refused "
            f"the client certificate {cert_file} (issued by another CA, or revoked) ({ssl_reason(error_text)})")
    if expired_on is not None:
        why = f"it expired on {expired_on:%Y-%m-%d}: {RENEW_HINT}"
    elif alert == "alert unknown ca":
        why = "it was not issued by this master's CA"
    else:
        why = ssl_reason(error_text)
    name = cert_file or "(none)"
    return AuthenticationFailed(f"the master at {master_url} refused the client certificate {name}: {why}")


def ssl_reason(error_text: str) -> str:
    """The OpenSSL reason in requests' text ("tlsv1 alert unknown ca"), else the text's end."""
    match = _SSL_REASON.search(error_text)
    if match:
        return match.group(1).strip()
    return error_text.strip().splitlines()[-1][-200:] if error_text.strip() else "TLS failure"


def certificate_not_after(cert_file: str | None) -> datetime | None:
    """The notAfter (UTC) of the first PEM certificate in `cert_file`; None if it cannot be read."""
    if not cert_file:
        return None
    try:
        with open(cert_file, "rb") as handle:
            pem = handle.read()
    except OSError:
        return None
    match = _PEM.search(pem)
    if match is None:
        return None
    try:
        return der_not_after(base64.b64decode(match.group(1)))
    except (binascii.Error, ValueError, IndexError):
        return None


def der_not_after(der: bytes) -> datetime:
    """The notAfter of a DER certificate: Certificate > tbsCertificate > ([0] version), serial,
    signature, issuer, validity > notBefore, notAfter (RFC 5280 §4.1). ValueError if it is not one."""
    certificate = _children(der, *_value(der, 0))
    tbs = _children(der, *_value(der, certificate[0]))
    fields = tbs[1:] if der[tbs[0]] == 0xA0 else tbs
    validity = _children(der, *_value(der, fields[3]))
    return _time(der, validity[1])


def _value(der: bytes, pos: int) -> tuple[int, int]:
    """Where the value of the DER element at `pos` starts and ends."""
    length = der[pos + 1]
    start = pos + 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[start:start + size], "big")
        start += size
    if start + length > len(der):
        raise ValueError("truncated DER")
    return start, start + length


def _children(der: bytes, start: int, end: int) -> list[int]:
    """The positions of the elements between `start` and `end`."""
    positions = []
    while start < end:
        positions.append(start)
        start = _value(der, start)[1]
    return positions


def _time(der: bytes, pos: int) -> datetime:
    start, end = _value(der, pos)
    text = der[start:end].decode("ascii")
    if der[pos] == 0x17:  # UTCTime YYMMDDHHMMSSZ: years 50-99 are 19xx (RFC 5280 §4.1.2.5.1)
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    elif der[pos] != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("not a time")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)


def expiry_if_past(cert_file: str | None, now: datetime) -> datetime | None:
    """The certificate's notAfter when it is before `now` (an aware UTC datetime), else None."""
    not_after = certificate_not_after(cert_file)
    return not_after if not_after is not None and not_after < now else None
