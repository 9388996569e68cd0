"""Errors shared by every side of Partita, each with a stable code used on the wire.

The tree::

    PartitaError                     code             HTTP
    ├── BadRequest                   BAD_REQUEST      400
    │   ├── DecodeError              BAD_ENCODING     400   malformed or unsafe XML/JSON
    │   ├── ValidationError          INVALID          400   a field is missing or has a bad value
    │   │   ├── MalformedDocument    INVALID          400   a cross-process document (`slap.wire`)
    │   │   │                                               does not follow its contract
    │   │   └── UnknownSlaKey        BAD_SLA          400   an SLA key (or mode) the master does not know
    │   ├── BadAuthorization         BAD_AUTHORIZATION 400  the X-SlapPartition header is wrong
    │   ├── TooLarge                 TOO_LARGE        413   the body (or a value in it) is over its size limit
    │   ├── BadContentType           BAD_CONTENT_TYPE 415   a JSON API body that is not application/json
    │   └── MisdirectedRequest       MISDIRECTED_REQUEST 421  the Host header is not one of the server's
    │                                                       names (DNS rebinding)
    ├── Unauthenticated              UNAUTHENTICATED  401   no identity (no client certificate or token)
    │   └── Revoked                  REVOKED          401   the certificate or token was revoked
    ├── Forbidden                    FORBIDDEN        403   the caller may not do this
    │   ├── BadToken                 BAD_TOKEN        403   an enrolment token that cannot be used
    │   ├── CrossOrigin              CROSS_ORIGIN     403   the Origin header names another site
    │   └── QuotaExceeded            QUOTA            403   the owner's quota (instances, parameter
    │                                                       bytes) would be exceeded
    ├── NotFound                     NOT_FOUND        404   unknown computer, partition, instance
    ├── Conflict                     CONFLICT         409   the request contradicts the current state
    │   └── InvalidTransition        INVALID_TRANSITION 409
    ├── NotReady                     NOT_READY        408   accepted, waiting (e.g. for a partition)
    ├── StorageFull                  STORAGE_FULL     507   the catalog's disk (or quota) is full:
    │                                                       nothing was written, try again later
    ├── ConfigurationError           CONFIGURATION    -     a configuration file is wrong (CLI only)
    └── ClientError                  -                -     raised by the client library
        ├── MasterUnreachable        UNREACHABLE      -     no answer from the master in time
        │   └── MasterRefused        UNREACHABLE      -     its connection was refused or reset: nothing
        │                                                   listens there (a master restarting)
        ├── AuthenticationFailed     TLS_FAILED       -     the TLS handshake failed: the master's
        │                                                   certificate does not verify against the
        │                                                   CA file, or it refused ours (`slap.tls_failures`)
        └── RemoteError              (from the wire)  -     the master answered with an error

Adapters translate these into their protocol (an HTTP status and a JSON body, a SLAP XML status
and a text line, a one-line message and an exit code); nothing else is caught at the edges.
"""
from __future__ import annotations


class PartitaError(Exception):
    """Base of every error Partita raises on purpose."""

    code = "ERROR"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(PartitaError):
    code = "BAD_REQUEST"
    status = 400


class DecodeError(BadRequest):
    code = "BAD_ENCODING"


class ValidationError(BadRequest):
    code = "INVALID"


class MalformedDocument(ValidationError):
    """A document that crosses a process boundary (node state, instance document, instance.json,
    ``[slap-connection]``, promise answer) does not follow its contract in `slap.wire`; the message
    names the document and the field."""


class UnknownSlaKey(ValidationError):
    """A request's SLA names a key the master does not know (or one that does not apply to it)."""

    code = "BAD_SLA"


class BadAuthorization(BadRequest):
    code = "BAD_AUTHORIZATION"


class TooLarge(BadRequest):
    code = "TOO_LARGE"
    status = 413


class BadContentType(BadRequest):
    code = "BAD_CONTENT_TYPE"
    status = 415


class MisdirectedRequest(BadRequest):
    code = "MISDIRECTED_REQUEST"
    status = 421


class Unauthenticated(PartitaError):
    code = "UNAUTHENTICATED"
    status = 401


class Revoked(Unauthenticated):
    code = "REVOKED"


class Forbidden(PartitaError):
    code = "FORBIDDEN"
    status = 403


class BadToken(Forbidden):
    code = "BAD_TOKEN"


class CrossOrigin(Forbidden):
    code = "CROSS_ORIGIN"


class QuotaExceeded(Forbidden):
    code = "QUOTA"


class NotFound(PartitaError):
    code = "NOT_FOUND"
    status = 404


class Conflict(PartitaError):
    code = "CONFLICT"
    status = 409


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


class NotReady(PartitaError):
    code = "NOT_READY"
    status = 408


class StorageFull(PartitaError):
    """The catalog could not be written for lack of space; the transaction was rolled back."""

    code = "STORAGE_FULL"
    status = 507


class ConfigurationError(PartitaError):
    code = "CONFIGURATION"
    status = 400


class ClientError(PartitaError):
    """Raised by the client library in `slap.client`."""


class MasterUnreachable(ClientError):
    code = "UNREACHABLE"
    status = 0


class MasterRefused(MasterUnreachable):
    """The connection to the master was refused or reset (its port closed, as while it restarts),
    as opposed to a master that does not answer in time."""


class AuthenticationFailed(ClientError):
    """The TLS handshake with the master failed; the message says which side refused and why."""

    code = "TLS_FAILED"
    status = 0


class RemoteError(ClientError):
    """The master answered with an error; `code` and `status` come from its answer."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


_BY_CODE = {cls.code: cls for cls in (
    BadRequest, DecodeError, ValidationError, BadAuthorization, TooLarge, BadContentType, MisdirectedRequest,
    Unauthenticated, Revoked, CrossOrigin,
    Forbidden, BadToken, QuotaExceeded, NotFound, Conflict, InvalidTransition, NotReady, StorageFull,
)}


def error_class_for(code: str) -> type[PartitaError] | None:
    """The local class of a wire error code, if there is one."""
    return _BY_CODE.get(code)
