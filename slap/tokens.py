"""Tokens as text: enrolment tokens (which carry the CA's fingerprint) and API tokens.

::

    enrolment token   <id>.<secret>.<fingerprint>   e.g. 3f9a0c1b2d4e.<40 hex>.<64 hex>
    API token         <id>.<secret>

``id`` is 12 lower-case hex digits (public: it names the token in lists, audit and revocation),
``secret`` 40 lower-case hex digits (160 random bits; the master keeps only its SHA-256), and
``fingerprint`` the 64 hex digits of the master CA's ``sha256:`` fingerprint (kubeadm's discovery
hash): a new node or user checks the CA it downloads against it before sending the secret.

Pure functions: no IO, no clock.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

ID_HEX, SECRET_HEX, FINGERPRINT_HEX = 12, 40, 64
FINGERPRINT_PREFIX = "sha256:"

_TOKEN = re.compile(
    rf"^(?P<id>[0-9a-f]{{{ID_HEX}}})\.(?P<secret>[0-9a-f]{{{SECRET_HEX}}})"
    rf"(?:\.(?P<fingerprint>[0-9a-f]{{{FINGERPRINT_HEX}}}))?$"
)


class TokenFormatError(ValueError):
    """Text that is not a token (the message says what a token looks like)."""


@dataclass(frozen=True)
class Token:
    id: str
    secret: str
    ca_fingerprint: str | None = None  # "sha256:<64 hex>" for an enrolment token

    def text(self) -> str:
        """The token as it is given to a person or a script."""
        parts = [self.id, self.secret]
        if self.ca_fingerprint is not None:
            parts.append(self.ca_fingerprint.removeprefix(FINGERPRINT_PREFIX))
        return ".".join(parts)

    def secret_hash(self) -> str:
        return hash_secret(self.secret)


def new_token(ca_fingerprint: str | None = None) -> Token:
    """A fresh random token; with `ca_fingerprint` ("sha256:…"), an enrolment token."""
    if ca_fingerprint is not None:
        check_fingerprint(ca_fingerprint)
    return Token(secrets.token_hex(ID_HEX // 2), secrets.token_hex(SECRET_HEX // 2), ca_fingerprint)


def parse_token(text: str, *, enrolment: bool) -> Token:
    """The token in `text` (surrounding blanks ignored); `enrolment` says whether it must carry
    the CA fingerprint (True) or must not (False)."""
    match = _TOKEN.match(text.strip().lower()) if isinstance(text, str) else None
    if match is None or (match.group("fingerprint") is None) == enrolment:
        shape = ("<12 hex>.<40 hex>.<64 hex> (id, secret, CA fingerprint)" if enrolment
                 else "<12 hex>.<40 hex> (id, secret)")
        kind = "an enrolment token" if enrolment else "an API token"
        raise TokenFormatError(f"not {kind}: expected {shape}")
    fingerprint = match.group("fingerprint")
    return Token(match.group("id"), match.group("secret"),
                 FINGERPRINT_PREFIX + fingerprint if fingerprint else None)


def hash_secret(secret: str) -> str:
    """What the master stores of a secret: its SHA-256 (the secret has 160 random bits, so a
    slow hash would add nothing)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def same_hash(stored: str, secret: str) -> bool:
    """Whether `secret` hashes to `stored`, in constant time."""
    return hmac.compare_digest(stored, hash_secret(secret))


def check_fingerprint(fingerprint: str) -> str:
    if not re.fullmatch(rf"{FINGERPRINT_PREFIX}[0-9a-f]{{{FINGERPRINT_HEX}}}", fingerprint or ""):
        raise TokenFormatError(f"not a CA fingerprint: expected {FINGERPRINT_PREFIX}<64 hex>, not {fingerprint!r}")
    return fingerprint
