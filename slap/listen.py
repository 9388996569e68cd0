"""Where a server without authentication may listen: on loopback only.

The proxy (and a master started with ``authentication = none``) believes every caller: whoever
reaches it acts as the owner ``local`` and as any partition. So it listens only on addresses of this
machine's loopback (127.0.0.0/8, ::1, or a name that resolves to them only, such as
``localhost``); a master for other machines authenticates its callers with certificates. The rule
is a pure function of the addresses a host resolves to; resolving is the one IO, at the edge.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from partita.slap.errors import ConfigurationError


def all_loopback(addresses: Iterable[str]) -> bool:
    """Whether every one of `addresses` (at least one) is a loopback address."""
    found = [ipaddress.ip_address(address.split("%", 1)[0]) for address in addresses]
    return bool(found) and all(address.is_loopback for address in found)


def resolve(host: str) -> list[str]:
    """The addresses `host` (a literal address or a name) stands for; [] when it resolves to none."""
    literal = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(literal))]
    except ValueError:
        pass
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(literal, None, proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return []


PROXY_ADVICE = "to serve other machines, run a master (slapos master init/start)"


def check_loopback(host: str, option: str, *, server: str = "the proxy", advice: str = PROXY_ADVICE) -> None:
    """A ConfigurationError naming `option` unless `host` is loopback only."""
    if all_loopback(resolve(host)):
        return
    raise ConfigurationError(
        f"{option} = {host}: {server} has no authentication, so it listens on loopback only "
        f"(127.0.0.1, ::1, localhost); {advice}")
