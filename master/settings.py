"""Settings of one running master application (proxy or master mode)."""
from __future__ import annotations

from dataclasses import dataclass

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_WAIT_SECONDS = 60.0
MAX_INSTANCES_PER_OWNER = 10_000
MAX_PARAMETER_BYTES_PER_OWNER = 256 * 1024 * 1024
# A node whose last call is older than this is "unreachable" (`master.services.contact`); its long
# poll (node.daemon.LONG_POLL, 30 s) and the master's cap on it (MAX_WAIT_SECONDS) are shorter.
UNREACHABLE_AFTER_SECONDS = 120.0
BINARY_CACHE_MAX_ENTRY = 2 * 1024 ** 3
# Host names every app answers to besides IP addresses (`master.api.origin`); `slapos master
# start` adds its host, its certificate's names and [slapmaster] allowed_hosts.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"


@dataclass(frozen=True)
class AppSettings:
    """`mode` is "proxy" (one local computer, everything owned by `local`) or "master".

    `authentication`: callers prove who they are (client certificate or API token) and the CA
    signs certificates; off for the proxy, which believes every caller. `tls_frontends`: the
    addresses of TLS-terminating front ends allowed to pass a client certificate in a header.

    `max_instances_per_owner`, `max_parameter_bytes_per_owner`: the quotas of every owner
    (`master.services.quotas`). `allowed_hosts`: the names and addresses (without port) a
    request's ``Host`` header may carry, and an ``Origin`` may name; ``*`` allows any
    (`master.api.origin`). `unreachable_after_seconds`: how long after its last call a node is
    shown unreachable (`master.services.contact`); longer than `max_wait_seconds`.
    `packages_directory`: the wheels served as a package index (`master.api.packages`); None
    serves none (the proxy)."""

    mode: str = "proxy"
    computer_id: str | None = None
    default_owner: str = "local"
    max_body_bytes: int = MAX_BODY_BYTES
    max_wait_seconds: float = MAX_WAIT_SECONDS
    authentication: bool = False
    tls_frontends: tuple[str, ...] = ()
    max_instances_per_owner: int = MAX_INSTANCES_PER_OWNER
    max_parameter_bytes_per_owner: int = MAX_PARAMETER_BYTES_PER_OWNER
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    unreachable_after_seconds: float = UNREACHABLE_AFTER_SECONDS
    # `master.services.binary_cache`: where its files live (None: no cache, every lookup misses)
    binary_cache_directory: str | None = None
    binary_cache_max_entry: int = BINARY_CACHE_MAX_ENTRY
    packages_directory: str | None = None
