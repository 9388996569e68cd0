"""``partita:free-port``: a free TCP port on an address, the same at every run of the instance.

::

    [port]
    recipe = partita:free-port
    ip = ${slap-configuration:ipv4-random}
    minimum = 8000                 # optional range; without it the system picks a port
    maximum = 8999

    [x]
    listen = ${port:ip}:${port:port}

The chosen port is remembered in a file of the partition (``storage-path``, default
``<buildout parts-directory>/<section>/port``), read back at the next run. It is kept when it can
still be bound on ``ip``, and also when the process listening on it runs as this user (the
partition's own service, started with it earlier). It is chosen again only when another user's
process now listens there. Decisions are the pure `keep_port`; the IO (binding, reading
``/proc/net/tcp``) sits around it.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from partita.recipes.common import fail, write_file

_PROC_TABLES = {4: ("/proc/net/tcp",), 6: ("/proc/net/tcp6",)}
_LISTEN = "0A"


class Listener(NamedTuple):
    address: str
    port: int
    uid: int


def keep_port(port: int, free: bool, listeners: Iterable[Listener], ip: str, uid: int) -> bool:
    """Whether the remembered `port` stays this instance's: free, or held by this `uid` only."""
    if free:
        return True
    holders = [entry for entry in listeners if entry.port == port and _covers(entry.address, ip)]
    return bool(holders) and all(entry.uid == uid for entry in holders)


def _covers(listening: str, ip: str) -> bool:
    """Whether a socket bound to `listening` takes the port on `ip` (same address or a wildcard)."""
    address = ipaddress.ip_address(listening)
    return address.is_unspecified or address == ipaddress.ip_address(ip)


def listeners(version: int) -> list[Listener]:
    """The TCP sockets listening on this machine, from ``/proc/net/tcp`` (or ``tcp6``)."""
    found = []
    for table in _PROC_TABLES[version]:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or fields[3] != _LISTEN:
                continue
            address, _, port = fields[1].partition(":")
            found.append(Listener(_proc_address(address), int(port, 16), int(fields[7])))
    return found


def _proc_address(text: str) -> str:
    """An address as ``/proc/net/tcp`` writes it (32-bit words in host order) in usual form."""
    data = b"".join(int(text[i:i + 8], 16).to_bytes(4, "little") for i in range(0, len(text), 8))
    return str(ipaddress.ip_address(data))


def bindable(ip: str, port: int, section: str) -> bool:
    """Whether a listening socket could bind `port` on `ip` now."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise fail(f"[{section}] cannot bind a port on {ip}: {error.strerror or error}") from None
    return True


def choose_port(ip: str, minimum: int | None, maximum: int | None, section: str) -> int:
    """A port free on `ip`: the first of the range, or one the system picks."""
    try:
        if minimum is None or maximum is None:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((ip, 0))
                return int(sock.getsockname()[1])
        for port in range(minimum, maximum + 1):
            if bindable(ip, port, section):
                return port
    except OSError as error:
        raise fail(f"[{section}] cannot bind a port on {ip}: {error.strerror or error}") from None
    raise fail(f"[{section}] no free port on {ip} from {minimum} to {maximum}")


def port_range(options: Any, section: str) -> tuple[int | None, int | None]:
    values = []
    for name in ("minimum", "maximum"):
        text = options.get(name, "").strip()
        if text and not (text.isdigit() and 1 <= int(text) <= 65535):
            raise fail(f"[{section}] option '{name}' must be a port from 1 to 65535, not {text!r}")
        values.append(int(text) if text else None)
    minimum, maximum = values
    if (minimum is None) != (maximum is None) or (minimum is not None and minimum > maximum):
        raise fail(f"[{section}] options 'minimum' and 'maximum' go together, minimum <= maximum")
    return minimum, maximum


def address(options: Any, section: str) -> str:
    text = options.get("ip", "").strip() or "127.0.0.1"
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise fail(f"[{section}] option 'ip' must be an IP address, not {text!r}") from None


def stored_port(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 1 <= int(text) <= 65535 else None


class Recipe:
    """Chooses (or keeps) the port when the section is set up; installs nothing."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        ip = address(options, name)
        minimum, maximum = port_range(options, name)
        text = options.get("storage-path", "").strip()
        path = Path(text) if text else Path(buildout["buildout"]["parts-directory"]) / name / "port"
        if not path.is_absolute():
            path = Path(buildout["buildout"]["directory"]) / path
        port = stored_port(path)
        in_range = port is not None and (minimum is None or minimum <= port <= maximum)
        if port is None or not in_range or not keep_port(
                port, bindable(ip, port, name), listeners(ipaddress.ip_address(ip).version), ip, os.getuid()):
            port = choose_port(ip, minimum, maximum, name)
            try:
                write_file(path, f"{port}\n", 0o644)
            except OSError as error:
                raise fail(f"[{name}] cannot remember the port in {path}: {error.strerror or error}") from None
        options.update({"ip": ip, "port": str(port), "storage-path": str(path)})

    def install(self) -> list[str]:
        return []

    def update(self) -> list[str]:
        return []
