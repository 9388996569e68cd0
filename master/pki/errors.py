"""Errors of the master's certificate authority, placed in the shared tree of `slap.errors`::

    PkiError (PartitaError)
    ├── CertificateRequestError  (also a ValidationError: INVALID, 400 on the wire)
    │       a CSR that does not parse, is not signed by its key, or holds a weak key;
    │       a bad common name, DNS name or address for a certificate
    └── PkiFileError             (also a ConfigurationError: CONFIGURATION, CLI only)
            the PKI directory or one of its files is missing, unreadable, unsafe or inconsistent

``except PkiError`` catches both; the adapters see an ordinary ValidationError or ConfigurationError.
"""
from __future__ import annotations

from partita.slap.errors import ConfigurationError, PartitaError, ValidationError


class PkiError(PartitaError):
    """A problem of the certificate authority."""


class CertificateRequestError(ValidationError, PkiError):
    """A request for a certificate is refused; the message says why."""


class PkiFileError(ConfigurationError, PkiError):
    """The PKI directory or one of its files is wrong; the message names the file."""
