"""Cross-site requests: a web page in a user's browser must not drive the master or the proxy.

A browser lets any page send simple requests (form posts, GETs) to any address, the loopback
proxy included, and DNS rebinding lets a page read the answers under its own name. Three checks,
before anything else runs::

    Host header not ours ───────────────────────────────────────► 421 MISDIRECTED_REQUEST
    Origin header present and not the request's own origin ──────► 403 CROSS_ORIGIN
    JSON API POST with a body that is not application/json ──────► 415 BAD_CONTENT_TYPE

"Ours": an IP address literal (a rebinding page always sends its own name), or one of the
settings' `allowed_hosts` (loopback names, the master's ``tls_names`` and ``host``), compared
without port and case, ``*`` allowing any. Clients that are not browsers send no ``Origin``;
the real slapos.core client sends the master URL's host and form-encoded SLAP XML, Partita's
client ``application/json``. The rules are pure functions; `check_request` reads the request.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import request

from partita.master.api.context import settings
from partita.master.settings import ANY_HOST
from partita.slap.errors import BadContentType, CrossOrigin, MisdirectedRequest

JSON_TYPE = "application/json"


def host_name(host: str) -> str:
    """The name or address of a ``Host`` value, without port, brackets, case or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""  # malformed: nobody's name
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether a request whose ``Host`` is `host` is meant for us."""
    allowed = tuple(allowed)
    if ANY_HOST in allowed:
        return True
    name = host_name(host)
    if not name:
        return False
    return is_ip_literal(name) or name in {host_name(entry) for entry in allowed}


def origin_allowed(origin: str, host: str) -> bool:
    """Whether ``Origin: origin`` is the request's own origin (same host and port)."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (a sandboxed page, a file), or garbage
    return parts.netloc.lower().rstrip(".") == host.strip().lower().rstrip(".")


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == JSON_TYPE


def check_request() -> None:
    """Refuse a request for another host or from another site (the JSON type is checked by the
    JSON API's methods, `check_json_type`, so that an unknown method stays a 404)."""
    host = request.headers.get("Host")
    if host is not None and not host_allowed(host, settings().allowed_hosts):
        raise MisdirectedRequest(
            f"this server does not answer to the host name {host_name(host)[:100]!r} "
            "(add it to allowed_hosts, or use one of its configured names)")
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, host or ""):
        raise CrossOrigin(f"cross-site request refused: Origin {origin[:100]!r} is not this server")


def check_json_type() -> None:
    """A JSON API method's body, if there is one, must say it is JSON (a form post must not pass)."""
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if has_body and not is_json(request.content_type):
        raise BadContentType(
            f"the JSON API takes a body of type {JSON_TYPE}, not {(request.content_type or 'none')[:100]!r}")
