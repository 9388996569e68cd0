"""What Partita's recipes share: option parsing, the partition's identity (``[slap-connection]``,
read through `slap.wire.connection`), the master client, one-line errors and atomic file writes.

Every recipe reports bad input with `fail` (a ``zc.buildout.UserError`` of one line, which
buildout prints as ``Error: <line>`` without a traceback). zc.buildout is imported only there:
it lives in the node's toolchain, and the rest of this package imports without it. Option values
given to buildout are always strings: zc.buildout 6 refuses anything else.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from partita.slap.client import MasterClient, connect
from partita.slap.errors import MalformedDocument
from partita.slap.fileio import atomic_write
from partita.slap.wire.connection import SECTION as SLAP_CONNECTION, SlapConnection, parse_connection

MASTER_TIMEOUT = 30.0
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0", "")

if TYPE_CHECKING:
    from zc.buildout import UserError


def fail(message: str) -> UserError:
    """A buildout error showing `message` on one line (raise it)."""
    import zc.buildout  # from the toolchain that runs buildout; not needed to import this module

    return zc.buildout.UserError(" ".join(str(message).split()))


def as_option(value: object) -> str:
    """A parameter value as an option string: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def required(options: Mapping[str, str], name: str, section: str) -> str:
    """The non-empty value of option `name`, or an error naming the section and the option."""
    value = options.get(name, "").strip()
    if not value:
        raise fail(f"[{section}] needs option '{name}'")
    return value


def flag(options: Mapping[str, str], name: str, section: str, default: bool = False) -> bool:
    """A boolean option (true/false, yes/no, on/off, 1/0)."""
    value = options.get(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise fail(f"[{section}] option '{name}' must be true or false, not {value!r}")


def words(value: str) -> list[str]:
    """The whitespace-separated words of an option value (spaces or lines)."""
    return value.split()


def number(options: Mapping[str, str], name: str, section: str, default: float) -> float:
    """A positive number option."""
    value = options.get(name, "").strip()
    if not value:
        return default
    try:
        result = float(value)
    except ValueError:
        raise fail(f"[{section}] option '{name}' must be a number, not {value!r}") from None
    if not result > 0 or result == float("inf"):
        raise fail(f"[{section}] option '{name}' must be a positive number, not {value!r}")
    return result


def slap_connection(buildout: Mapping[str, Mapping[str, str]], section: str) -> SlapConnection:
    """``[slap-connection]`` of the instance buildout, or an error saying what is missing."""
    try:
        options = buildout[SLAP_CONNECTION]
    except KeyError:
        raise fail(f"[{section}] needs the [{SLAP_CONNECTION}] section that the Partita node "
                   "appends to an instance buildout") from None
    try:
        return parse_connection(options)
    except MalformedDocument as error:
        raise fail(str(error)) from None


def master_client(connection: SlapConnection, timeout: float = MASTER_TIMEOUT) -> MasterClient:
    """A JSON API client acting as the partition of `connection`: with the partition's own
    certificate and the master's CA when the node wrote them (``key-file``, ``cert-file``,
    ``partita-ca-file``), as the proxy's plain partition otherwise."""
    return connect(connection.server_url, key_file=connection.key_file or None,
                   cert_file=connection.cert_file or None, ca_file=connection.ca_file or None,
                   partition=(connection.computer_id, connection.partition_id), timeout=timeout)


def write_file(path: Path, content: str | bytes, mode: int) -> bool:
    """Write `content` to `path` atomically (parents created) unless it is already there with
    that mode; True when something changed."""
    data = content.encode() if isinstance(content, str) else content
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o7777) == mode:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, mode=mode)
    return True


def output_path(options: Mapping[str, str], name: str, section: str, directory: str) -> Path:
    """An output path option, made absolute against the buildout directory."""
    path = Path(required(options, name, section))
    return path if path.is_absolute() else Path(directory) / path
