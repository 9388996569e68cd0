"""Settings of one running master application (proxy or master mode)."""
from __future__ import annotations

from dataclasses import dataclass

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class AppSettings:
    """`mode` is "proxy" (one local computer, everything owned by `local`) or "master".

    `authentication`: callers prove who they are (client certificate or API token) and the CA
    signs certificates; off for the proxy, which believes every caller. `tls_frontends`: the
    addresses of TLS-terminating front ends allowed to pass a client certificate in a header."""

    mode: str = "proxy"
    computer_id: str | None = None
    default_owner: str = "local"
    max_body_bytes: int = MAX_BODY_BYTES
    max_wait_seconds: float = MAX_WAIT_SECONDS
    authentication: bool = False
    tls_frontends: tuple[str, ...] = ()
