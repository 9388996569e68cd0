"""Pure rules of an experiment's layout: which host does what, where its files go, which
addresses its partitions take and which node settings it gets. No IO.

- The first host is the master's (role ``master``), every other one a node (role ``node``).
  Hosts are numbered from 1 in the order of the hosts file (``{index}``).
- `expand`: ``{host}`` and ``{index}`` in a value (the remote directory, a ``--node-setting``)
  become the host's name and number; any other ``{`` is refused.
- Each node's partitions take the ``/24`` number ``index`` of the IPv4 network given (default
  ``10.42.0.0/16``: addresses local to each host, as SlapOS's) and the ``/96`` number ``index`` of
  its interface's IPv6 ``/64``: two hosts never share a range, also when they share a machine.
- A ``--node-setting`` is ``KEY=VALUE`` (section ``[slapos]``) or ``SECTION.KEY=VALUE``.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from partita.experiment.errors import ExperimentError

DEFAULT_REMOTE_DIR = "/opt/partita-experiment"
DEFAULT_IPV4_NETWORK = "10.42.0.0/16"
MASTER, NODE = "master", "node"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KEY = re.compile(r"^(?:([a-z][a-z0-9_-]*)\.)?([a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class NodeSetting:
    section: str
    key: str
    value: str


def role(index: int) -> str:
    return MASTER if index == 1 else NODE


def expand(template: str, host: str, index: int) -> str:
    """`template` with ``{host}`` and ``{index}`` replaced."""
    def replace(match: re.Match) -> str:
        if match[1] == "host":
            return host
        if match[1] == "index":
            return str(index)
        raise ExperimentError(f"{template!r}: unknown placeholder {{{match[1]}}} (known: {{host}}, {{index}})")
    return _PLACEHOLDER.sub(replace, template)


def remote_dir(template: str, host: str, index: int) -> str:
    """The host's remote directory: absolute, normalised, never ``/``."""
    path = expand(template, host, index)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not path.startswith("/") or not parts or ".." in parts:
        raise ExperimentError(f"remote directory {path!r}: an absolute path below / without '..' is needed")
    return "/" + "/".join(parts)


def parse_node_setting(text: str) -> NodeSetting:
    key, separator, value = text.partition("=")
    match = _KEY.match(key.strip())
    if not separator or not match or "\n" in value:
        raise ExperimentError(f"--node-setting {text!r}: KEY=VALUE or SECTION.KEY=VALUE is needed")
    return NodeSetting(match[1] or "slapos", match[2], value.strip())


def ipv4_range(network: str, index: int) -> str:
    """The /24 number `index` of `network` (a /16 to /23)."""
    try:
        parent = ipaddress.IPv4Network(network)
    except ValueError as error:
        raise ExperimentError(f"--ipv4-network {network}: {error}")
    if parent.prefixlen > 23:
        raise ExperimentError(f"--ipv4-network {network}: at least a /23 is needed (a /24 a host)")
    count = 2 ** (24 - parent.prefixlen)
    if index >= count:
        raise ExperimentError(f"--ipv4-network {network} has {count} /24 ranges: too few for host {index}")
    return str(ipaddress.IPv4Network((int(parent.network_address) + (index << 8), 24)))


def ipv6_range(interface_address: str, index: int) -> str:
    """The /96 number `index` of the /64 of `interface_address` (``ADDRESS/PREFIXLEN``)."""
    interface = ipaddress.IPv6Interface(interface_address)
    prefix = ipaddress.IPv6Network((int(interface.network.network_address) >> 64 << 64, 64))
    return str(ipaddress.IPv6Network((int(prefix.network_address) + (index << 32), 96)))


def pick_ipv6(addresses: list[str]) -> str | None:
    """The first global address of an interface (``ADDRESS/PREFIXLEN``) whose prefix is a /64 or
    wider, None if none."""
    for text in addresses:
        try:
            interface = ipaddress.IPv6Interface(text)
        except ValueError:
            continue
        if interface.network.prefixlen <= 64 and not interface.ip.is_link_local:
            return text
    return None
