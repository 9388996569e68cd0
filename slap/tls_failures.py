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
    the connection closed during the handshake   the same "refused ... expired on" line when we sent
    while our certificate is expired             a certificate whose notAfter is past (TLS 1.3 may
                                                 close before the alert reaches us)
    anything else                                None: the caller says "cannot reach the master"

The expiry is read from the certificate file itself, so the line is right even when the server's
alert is vague ("certificate unknown"). `explain` takes the current time as an argument.
"""
from __future__ import annotations

import re
from datetime import datetime

from cryptography import x509

from partita.slap.errors import AuthenticationFailed

RENEW_HINT = "renew it or enrol again (docs/operations.md)"

_SSL_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\] ([^(]*?)\s*\(_ssl\.c")
_VERIFY_FAILED = re.compile(r"certificate verify failed[^'\"()]*", re.IGNORECASE)
_REFUSED_ALERTS = ("alert unknown ca", "certificate unknown", "bad certificate", "certificate expired",
                   "certificate revoked")
_CLOSED = ("connection reset", "connection aborted", "eof occurred", "unexpected eof", "broken pipe")


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
    if alert is None and not (expired_on and any(word in lowered for word in _CLOSED)):
        return None
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
    """The notAfter (UTC) of the PEM certificate in `cert_file`; None if it cannot be read."""
    if not cert_file:
        return None
    try:
        with open(cert_file, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        return None
    return certificate.not_valid_after_utc


def expiry_if_past(cert_file: str | None, now: datetime) -> datetime | None:
    """The certificate's notAfter when it is before `now` (an aware UTC datetime), else None."""
    not_after = certificate_not_after(cert_file)
    return not_after if not_after is not None and not_after < now else None
