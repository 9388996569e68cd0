"""The partitions' addresses: which ones (pure), and putting them on an interface (``ip``).

Partition ``i`` (0-based) gets the ``i + 1``-th address of each configured network:

- IPv4: ``ipv4_local_network`` (default ``127.0.1.0/24``): ``127.0.1.1`` for ``slappart0``; the
  network and broadcast addresses are never used, so a /24 holds 254 partitions;
- IPv6: ``ipv6_local_network`` when it is configured: ``<prefix>::1`` for ``slappart0``; else,
  on an interface other than loopback, the prefix of the interface's global IPv6 address
  (`interface_prefix`), so that other nodes can reach the partitions: in a prefix of /64 or
  shorter, which other machines of the link share, this machine's /112 of it (`machine_block`);
  the addresses the interface already has there (not the node's) are skipped, and the rest
  counted the same way; else (on loopback, or no global address) a unique-local /64 of
  Partita's (``DEFAULT_IPV6_NETWORK``).

With ``partition_has_ipv6_range = true`` each partition also gets a range: the (index + 1)-th
sub-prefix, ``ipv6_prefixshift`` bits longer (default 16: a /80 out of a /64), of the IPv6
network (`partition_range`); sub-prefix 0 holds the partitions' own addresses and is never one,
nor is a sub-prefix holding an address the interface has there that is not the node's.

A "global" address is one of scope global that is neither temporary (privacy), deprecated nor
failed duplicate address detection, with a prefix shorter than /128: unique-local addresses
(``fd00::/8``) count, as they do for SlapOS, since other nodes of the same site reach them;
link-local ones never do.

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
    scope: str = "global"
    usable: bool = True  # not temporary, deprecated nor failed duplicate address detection


@dataclass(frozen=True)
class IPv6Network:
    """Where the partitions' IPv6 addresses come from: `network` (or its `block`, if any),
    counted without `skip`."""

    network: str
    source: str  # "ipv6_local_network", "the default", or "<interface> (<its address>)"
    skip: tuple[str, ...] = ()
    block: str = ""  # a shared prefix: this machine's /112 of it (`machine_block`)
    base: str = ""  # the interface's address the prefix was taken from

    @property
    def addresses(self) -> str:
        """The network the partitions' addresses are counted in."""
        return self.block or self.network


# -- pure --------------------------------------------------------------------------------------

def capacity(network: str) -> int:
    """How many partitions `network` can address (IPv4: without network and broadcast addresses)."""
    parsed = ipaddress.ip_network(network, strict=False)
    if parsed.version == 4:
        return max(parsed.num_addresses - 2, 0)
    return parsed.num_addresses - 1


def _nth(network: str, index: int, label: str, skip: tuple[str, ...] = ()) -> str:
    """The (index + 1)-th address of `network` that is not in `skip`; `label` names the network
    in the error when it is too small."""
    if index < 0:
        raise ValueError(f"a partition index is not negative: {index}")
    parsed = ipaddress.ip_network(network, strict=False)
    skipped = sorted({int(a) for a in map(ipaddress.ip_address, skip) if a in parsed})
    room = capacity(network) - len(skipped)
    if index >= room:
        raise ConfigurationError(
            f"{label} has room for {max(room, 0)} partitions, not {index + 1}"
        )
    offset = int(parsed.network_address) + index + 1
    for address in skipped:
        if address <= offset:
            offset += 1
    return str(ipaddress.ip_address(offset))


def partition_addresses(config: NetworkConfig, index: int, ipv6: IPv6Network | None = None) -> tuple[str, str]:
    """The IPv4 and IPv6 addresses of partition number `index` (a ConfigurationError if the
    network is too small); IPv6 from `ipv6` if given, else from ``ipv6_local_network``."""
    if ipv6 is None:
        ipv6 = IPv6Network(config.ipv6_local_network, "ipv6_local_network")
    return (_nth(config.ipv4_local_network, index, f"[slapformat] ipv4_local_network {config.ipv4_local_network}"),
            _nth(ipv6.addresses, index, ipv6_label(ipv6), ipv6.skip))


def ipv6_label(ipv6: IPv6Network) -> str:
    """How messages name the IPv6 network: the option, or the interface's prefix."""
    if ipv6.source in ("ipv6_local_network", "the default"):
        return f"[slapformat] ipv6_local_network {ipv6.network}"
    if ipv6.block:
        return f"the block {ipv6.block} of the IPv6 prefix {ipv6.network} of {ipv6.source}"
    return f"the IPv6 prefix {ipv6.network} of {ipv6.source}"


def check_room(config: NetworkConfig, count: int, ipv6: IPv6Network | None = None) -> None:
    """A ConfigurationError unless both networks hold `count` partitions."""
    if count > 0:
        partition_addresses(config, count - 1, ipv6)


def partition_range(ipv6: IPv6Network, index: int, shift: int) -> str:
    """The IPv6 range of partition number `index`: the (index + 1)-th sub-prefix `shift` bits
    longer than ``ipv6.network``, skipping those that hold an address of ``ipv6.skip``."""
    if index < 0:
        raise ValueError(f"a partition index is not negative: {index}")
    parsed = ipaddress.ip_network(ipv6.network)
    length = parsed.prefixlen + shift
    if not 1 <= shift or length > 126:
        raise ConfigurationError(f"[slapformat] ipv6_prefixshift {shift} does not fit {parsed}: ranges would be "
                                 f"/{length} (at most /126)")
    size = 128 - length
    holding = [*ipv6.skip, *([ipv6.block.split("/")[0]] if ipv6.block else [])]
    taken = sorted({(int(ipaddress.ip_address(a)) - int(parsed.network_address)) >> size
                    for a in holding if ipaddress.ip_address(a) in parsed} - {0})
    room = (1 << shift) - 1 - len(taken)
    if index >= room:
        raise ConfigurationError(f"{ipv6_label(ipv6)} has room for {max(room, 0)} /{length} ranges "
                                 f"(ipv6_prefixshift {shift}), not {index + 1}")
    number = index + 1
    for subnet in taken:
        if subnet <= number:
            number += 1
    return f"{ipaddress.ip_address(int(parsed.network_address) + (number << size))}/{length}"


def interface_prefix(addresses: list[InterfaceAddress], own: set[str], previous: str = "") -> IPv6Network | None:
    """The network of a global IPv6 address among `addresses` (an interface's) that is not one
    of `own` (the node's partitions'): `previous` (the one the last format took) while it is
    there, else the one of the shortest prefix, then the lowest; every address of the interface
    there that is not the node's is skipped. None if there is none."""
    mine = {ipaddress.ip_address(a) for a in own}
    foreign = [a for a in addresses if a.version == 6 and ipaddress.ip_address(a.address) not in mine]
    candidates = [a for a in foreign if a.scope == "global" and a.usable and a.prefixlen < 128]
    if not candidates:
        return None
    kept = [a for a in candidates if previous and ipaddress.ip_address(a.address) == ipaddress.ip_address(previous)]
    base = (kept or sorted(candidates, key=lambda a: (a.prefixlen, ipaddress.ip_address(a.address))))[0]
    prefix = ipaddress.ip_network(f"{base.address}/{base.prefixlen}", strict=False)
    skip = tuple(a.address for a in foreign if ipaddress.ip_address(a.address) in prefix)
    return IPv6Network(str(prefix), f"{base.address}/{base.prefixlen}", skip, base=base.address)


def choose_ipv6(configured: str | None, default: str, interface: str,
                addresses: list[InterfaceAddress], own: set[str],
                skipped_before: tuple[str, ...] = (), previous_base: str = "") -> IPv6Network:
    """Where the partitions' IPv6 addresses come from (see the module docstring). `own` are the
    node's addresses (its record, `node.claims`); `skipped_before` and `previous_base`, what the
    previous format skipped and took as the interface's address: they are kept so that no
    partition's address moves when an address of the interface comes or goes."""
    if configured:
        return IPv6Network(configured, "ipv6_local_network")
    found = interface_prefix(addresses, own, previous_base) if interface != LOOPBACK else None
    if found is None:
        return IPv6Network(default, "the default")
    prefix = ipaddress.ip_network(found.network)
    kept = {a for a in skipped_before if ipaddress.ip_address(a) in prefix and a not in own}
    skip = tuple(sorted(kept | set(found.skip), key=ipaddress.ip_address))
    return IPv6Network(found.network, f"{interface} ({found.source})", skip,
                       machine_block(found.network, found.base), found.base)


def machine_block(prefix: str, base: str) -> str:
    """This machine's part of a prefix other machines of the link share: in a prefix of /64 or
    shorter, the /112 whose bits 64 to 111 are the low 48 bits of the machine's own address
    `base` (2001:db8::1 -> 2001:db8::1:0/112), so that nodes of different machines on one link
    never count from the same address; a longer prefix is taken whole ("")."""
    network = ipaddress.ip_network(prefix)
    if network.prefixlen > 64:
        return ""
    host = int(ipaddress.ip_address(base)) & ((1 << 48) - 1)
    start = (int(network.network_address) >> 64 << 64) | (host << 16)
    return str(ipaddress.ip_network((start, 112)))


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
                usable = not any(info.get(flag) for flag in ("temporary", "deprecated", "dadfailed"))
                found.append(InterfaceAddress(local, int(info.get("prefixlen", 0)), 4 if family == "inet" else 6,
                                              str(info.get("scope", "global")), usable))
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


def ensure_local_route(prefix: str) -> None:
    """Make every address of `prefix` this machine's (a ``local`` route on loopback), so that a
    partition can bind any address of its range."""
    check_interface_name(LOOPBACK)
    _ip(["-6", "route", "replace", "local", prefix, "dev", LOOPBACK], f"cannot route {prefix} to this machine")


def remove_local_route(prefix: str) -> None:
    _ip(["-6", "route", "del", "local", prefix, "dev", LOOPBACK], f"cannot remove the route of {prefix}",
        ok_if=lambda: True)


def local_routes() -> set[str]:
    """The prefixes of the IPv6 ``local`` routes on loopback (`ensure_local_route`'s), normalised."""
    output = _ip(["-6", "-j", "route", "show", "table", "local", "type", "local", "dev", LOOPBACK],
                 "cannot read the local routes")
    try:
        data: Any = json.loads(output or "[]")
        found = {str(ipaddress.IPv6Network(route["dst"])) for route in data
                 if isinstance(route, dict) and "/" in str(route.get("dst", ""))}
    except (ValueError, TypeError, KeyError):
        raise SetupError("cannot read the output of 'ip -6 -j route show table local': not JSON") from None
    return found


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
