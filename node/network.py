"""The partitions' addresses: which ones (pure), and putting them on an interface (``ip``).

Partition ``i`` (0-based) gets the ``i + 1``-th address of each configured network:

- IPv4: ``ipv4_local_network`` (default ``127.0.1.0/24``): ``127.0.1.1`` for ``slappart0``; the
  network and broadcast addresses are never used, so a /24 holds 254 partitions;
- IPv6: ``ipv6_local_network`` (default a unique-local /64): ``<prefix>::1`` for ``slappart0``.

On the loopback interface an address is added alone (/32, /128): Linux answers every 127/8
address on ``lo`` anyway, and nothing needs a route. On another interface it is added with the
network's prefix length. IPv6 addresses are added with ``nodad`` so they can be bound at once.

Reading needs no privilege (``ip -j addr show``, ``/proc``); adding and removing need root.
Every command has a deadline of `COMMAND_TIMEOUT` seconds; a failure is a `SetupError`.
"""
from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol

from partita.node.errors import SetupError
from partita.slap.errors import ConfigurationError

COMMAND_TIMEOUT = 30.0
LOOPBACK = "lo"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_INTERFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


class NetworkConfig(Protocol):
    """What the address plan needs from `node.config.NodeConfig`."""

    ipv4_local_network: str
    ipv6_local_network: str


@dataclass(frozen=True)
class InterfaceAddress:
    address: str
    prefixlen: int
    version: int


# -- pure --------------------------------------------------------------------------------------

def capacity(network: str) -> int:
    """How many partitions `network` can address (IPv4: without network and broadcast addresses)."""
    parsed = ipaddress.ip_network(network, strict=False)
    if parsed.version == 4:
        return max(parsed.num_addresses - 2, 0)
    return parsed.num_addresses - 1


def _nth(network: str, index: int, key: str) -> str:
    if index < 0:
        raise ValueError(f"a partition index is not negative: {index}")
    room = capacity(network)
    if index >= room:
        raise ConfigurationError(
            f"[slapformat] {key} {network} has room for {room} partitions, not {index + 1}"
        )
    parsed = ipaddress.ip_network(network, strict=False)
    return str(parsed.network_address + index + 1)


def partition_addresses(config: NetworkConfig, index: int) -> tuple[str, str]:
    """The IPv4 and IPv6 addresses of partition number `index` (a ConfigurationError if the
    network is too small)."""
    return (_nth(config.ipv4_local_network, index, "ipv4_local_network"),
            _nth(config.ipv6_local_network, index, "ipv6_local_network"))


def check_room(config: NetworkConfig, count: int) -> None:
    """A ConfigurationError unless both networks hold `count` partitions."""
    if count > 0:
        partition_addresses(config, count - 1)


def address_prefixlen(interface: str, network: str) -> int:
    """The prefix length of an address of `network` on `interface`: alone (/32, /128) on
    loopback, else the network's."""
    parsed = ipaddress.ip_network(network, strict=False)
    return parsed.max_prefixlen if interface == LOOPBACK else parsed.prefixlen


def netmask(address: str, prefixlen: int) -> str:
    """The netmask, in the address's notation: ``255.255.255.255``, ``ffff:…:ffff``."""
    interface = ipaddress.ip_interface(f"{address}/{prefixlen}")
    return str(interface.netmask)


def check_interface_name(name: str) -> str:
    """`name` if it can be an interface name (no path tricks), else a ConfigurationError."""
    if not _INTERFACE.match(name) or name in (".", ".."):
        raise ConfigurationError(f"[slapformat] interface_name {name!r} is not an interface name")
    return name


def parse_ip_json(text: str) -> list[InterfaceAddress]:
    """The addresses in the output of ``ip -j addr show dev IF``."""
    try:
        data: Any = json.loads(text or "[]")
    except ValueError:
        raise SetupError("cannot read the output of 'ip -j addr show': not JSON") from None
    found: list[InterfaceAddress] = []
    for link in data if isinstance(data, list) else []:
        for info in link.get("addr_info", []) if isinstance(link, dict) else []:
            family, local = info.get("family"), info.get("local")
            if family in ("inet", "inet6") and isinstance(local, str):
                found.append(InterfaceAddress(local, int(info.get("prefixlen", 0)), 4 if family == "inet" else 6))
    return found


def has_address(addresses: list[InterfaceAddress], address: str) -> bool:
    """Whether `address` is among `addresses` (whatever its prefix length)."""
    wanted = ipaddress.ip_address(address)
    return any(ipaddress.ip_address(a.address) == wanted for a in addresses)


# -- IO ----------------------------------------------------------------------------------------

def ipv6_enabled(interface: str, proc: Path = Path("/proc")) -> bool:
    """Whether the kernel has IPv6 and it is not disabled on `interface`."""
    check_interface_name(interface)
    if not (proc / "net" / "if_inet6").exists():
        return False
    try:
        disabled = (proc / "sys" / "net" / "ipv6" / "conf" / interface / "disable_ipv6").read_text()
    except OSError:
        return False
    return disabled.strip() == "0"


def interface_addresses(interface: str) -> list[InterfaceAddress]:
    """The addresses on `interface` (a SetupError if there is no such interface)."""
    check_interface_name(interface)
    output = _ip(["-j", "addr", "show", "dev", interface], f"cannot read the addresses of {interface}")
    return parse_ip_json(output)


def ensure_address(interface: str, address: str, prefixlen: int) -> bool:
    """Put `address` on `interface`; True if it was added, False if it was there already."""
    if has_address(interface_addresses(interface), address):
        return False
    command = ["addr", "add", f"{address}/{prefixlen}", "dev", interface]
    if ipaddress.ip_address(address).version == 6:
        command.append("nodad")
    _ip(command, f"cannot add {address} to {interface}",
        ok_if=lambda: has_address(interface_addresses(interface), address))
    return True


def remove_address(interface: str, address: str, prefixlen: int) -> bool:
    """Take `address` off `interface`; True if it was removed, False if it was not there."""
    if not has_address(interface_addresses(interface), address):
        return False
    _ip(["addr", "del", f"{address}/{prefixlen}", "dev", interface], f"cannot remove {address} from {interface}",
        ok_if=lambda: not has_address(interface_addresses(interface), address))
    return True


def _ip(arguments: list[str], what: str, ok_if: Callable[[], bool] | None = None) -> str:
    """Run ``ip ARGUMENTS``; its output, or a SetupError "<what>: <ip's last line>"."""
    executable = shutil.which("ip") or shutil.which("ip", path=SYSTEM_PATH) or "ip"
    try:
        result = subprocess.run([executable, *arguments], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
    except FileNotFoundError:
        raise SetupError(f"{what}: the command 'ip' is not installed (Debian package 'iproute2')") from None
    except subprocess.TimeoutExpired:
        raise SetupError(f"{what}: 'ip' did not finish within {COMMAND_TIMEOUT:g}s") from None
    if result.returncode == 0:
        return result.stdout
    if ok_if is not None and ok_if():
        return ""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    raise SetupError(f"{what}: {lines[-1] if lines else f'exit status {result.returncode}'}")
