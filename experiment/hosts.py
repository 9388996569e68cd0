"""The hosts file: one host name or address a line, as OAR writes ``$OAR_NODEFILE`` (one line per
reserved core). Blank lines and ``#`` comments are skipped, repeated names kept once, in order:
the first host is the master's.

A name must look like a host name or an IP address: it goes to ``ssh`` as its destination, so a
name starting with ``-`` (an option) or holding spaces, ``@`` or shell characters is refused.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from partita.experiment.errors import HostsFileError

MAX_HOSTS = 1000
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$")


def parse_hosts(text: str) -> list[str]:
    """The distinct hosts of a hosts file's text, in order of first appearance."""
    hosts: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not valid_host(name):
            raise HostsFileError(f"line {number}: {name[:80]!r} is not a host name or an IP address")
        if name not in hosts:
            hosts.append(name)
    if not hosts:
        raise HostsFileError("the hosts file names no host")
    if len(hosts) > MAX_HOSTS:
        raise HostsFileError(f"the hosts file names {len(hosts)} hosts, more than {MAX_HOSTS}")
    return hosts


def valid_host(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return bool(_NAME.match(name))


def read_hosts(path: str | Path) -> list[str]:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise HostsFileError(f"cannot read the hosts file {path}: {getattr(error, 'strerror', None) or error}")
    return parse_hosts(text)
