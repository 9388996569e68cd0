"""A cluster network for tests: one bridge on the host and N network namespaces wired to it.

`cluster_network(count)` makes, with ``ip`` (iproute2), as root::

    host (root namespace)                      namespace pt-<run>-nK (K = 1..count)
    bridge pt<run>br  10.X.0.1/16, <ula>::1/64 ── veth pt<run>hK ═ pt<run>nK  10.X.0.(K+10)/16, <ula>::a:K/64
                                                                                lo up, no default route

- ``<run>`` is the pid of the test process in hex: names stay within 15 characters and say which
  process made them. Leftovers of an earlier run whose process is dead (killed, interrupted before
  its clean-up) are removed at the start of the next one: their namespaces' processes killed, the
  namespaces and bridge deleted.
- ``10.X.0.0/16``: 10.231.0.0/16 unless the host already has an address or a route overlapping it
  (another run, a real network), then another free 10.X (X in 200..254). The IPv6 /64 is a random
  unique-local prefix.
- The namespaces have the /16 and /64 on-link routes of their veth and nothing else: they reach
  the host's bridge address (where a master listens), each other, and the addresses each puts on
  its own veth (a node's partitions: the namespace answers ARP and neighbour solicitations for
  them), and nothing else: no route to the host's other addresses or beyond, and their ``lo`` is
  their own (the host's loopback services are out of reach).
- Firewall: with ``net.bridge.bridge-nf-call-iptables = 1`` the host's iptables would see the
  frames crossing the bridge. The bridge is made with ``nf_call_iptables 0`` (and ip6tables,
  arptables): an option of this bridge alone, gone with it, so the host's firewall is never
  changed. Traffic to the bridge's own address still crosses the host's INPUT chain; the harness
  checks that every namespace reaches the bridge and each other before handing the network out,
  and says so in one line if a host firewall drops it.

Everything is removed on exit, also on a failure or a KeyboardInterrupt: first the processes
still running in each namespace (SIGKILL), then the namespaces, veths and bridge. Every command
has a deadline.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "pt"
COMMAND_TIMEOUT = 30.0
PREFERRED_SECOND_OCTET = 231
PYTHON = "/usr/bin/python3"
_NAMESPACE = re.compile(rf"^{PREFIX}-([0-9a-f]+)-n\d+$")
_BRIDGE = re.compile(rf"^{PREFIX}([0-9a-f]+)br$")
_HOST_VETH = re.compile(rf"^{PREFIX}([0-9a-f]+)h\d+$")


class NetnsError(RuntimeError):
    """The cluster network could not be made or does not carry traffic."""


@dataclass(frozen=True)
class Namespace:
    """One namespace: its name, its veth inside and its addresses on the cluster network."""

    name: str
    index: int
    interface: str
    host_interface: str
    ipv4: str
    ipv6: str


@dataclass
class ClusterNetwork:
    run_id: str
    bridge: str
    ipv4_network: ipaddress.IPv4Network
    ipv6_network: ipaddress.IPv6Network
    namespaces: list[Namespace] = field(default_factory=list)

    @property
    def bridge_ipv4(self) -> str:
        """The host's address on the bridge (where the master listens)."""
        return str(self.ipv4_network.network_address + 1)

    @property
    def bridge_ipv6(self) -> str:
        return str(self.ipv6_network.network_address + 1)

    def node_ipv4_network(self, index: int) -> str:
        """A /24 of the cluster network for the partitions of the node in namespace `index`."""
        return str(ipaddress.ip_network(f"{self.ipv4_network.network_address + (index << 8)}/24"))

    def node_ipv6_network(self, index: int) -> str:
        """A /96 of the cluster /64 for the partitions of the node in namespace `index`."""
        base = int(self.ipv6_network.network_address) + (index << 32)
        return str(ipaddress.IPv6Network((base, 96)))

    def run_in(self, namespace: Namespace | str, argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT,
               check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess:
        """``ip netns exec NS argv…``, its output captured as text."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(in_namespace(namespace, argv), timeout=timeout, check=check, **kwargs)

    def popen_in(self, namespace: Namespace | str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """``ip netns exec NS argv…`` started in the background."""
        return subprocess.Popen(in_namespace(namespace, argv), **kwargs)


def set_link(network: ClusterNetwork, namespace: Namespace, up: bool) -> None:
    """Cut (``down``) or restore (``up``) a namespace's veth, from inside it. Linux drops a link's
    IPv6 addresses when it goes down (``keep_addr_on_down`` is 0): on the way up the namespace's
    own address is put back; what else was on the link (a node's partitions) is the node's."""
    ip("-n", namespace.name, "link", "set", namespace.interface, "up" if up else "down")
    if up and namespace.ipv6 not in ip("-n", namespace.name, "-6", "addr", "show", "dev", namespace.interface):
        ip("-n", namespace.name, "addr", "add", f"{namespace.ipv6}/64", "dev", namespace.interface, "nodad")


def in_namespace(namespace: Namespace | str, argv: Sequence[str]) -> list[str]:
    name = namespace.name if isinstance(namespace, Namespace) else namespace
    return ["ip", "netns", "exec", name, *map(str, argv)]


@contextlib.contextmanager
def cluster_network(count: int, *, run_id: str | None = None) -> Iterator[ClusterNetwork]:
    """A bridge and `count` namespaces (see the module docstring), removed on exit."""
    if not 1 <= count <= 200:
        raise ValueError(f"between 1 and 200 namespaces, not {count}")
    if os.geteuid() != 0:
        raise NetnsError("network namespaces need root")
    remove_stale()
    run_id = run_id or format(os.getpid(), "x")
    network = ClusterNetwork(run_id, f"{PREFIX}{run_id}br", _free_ipv4_network(),
                             ipaddress.IPv6Network((0xFD << 120 | secrets.randbits(56) << 64, 64)))
    try:
        _make_bridge(network)
        for index in range(1, count + 1):
            network.namespaces.append(_make_namespace(network, index))
        check_connectivity(network)
        yield network
    finally:
        remove_run(run_id)


# -- making ------------------------------------------------------------------------------------

def _make_bridge(network: ClusterNetwork) -> None:
    ip("link", "add", network.bridge, "type", "bridge",
       "nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0")
    ip("addr", "add", f"{network.bridge_ipv4}/{network.ipv4_network.prefixlen}", "dev", network.bridge)
    ip("addr", "add", f"{network.bridge_ipv6}/64", "dev", network.bridge, "nodad")
    ip("link", "set", network.bridge, "up")


def _make_namespace(network: ClusterNetwork, index: int) -> Namespace:
    run = network.run_id
    namespace = Namespace(
        name=f"{PREFIX}-{run}-n{index}", index=index, interface=f"{PREFIX}{run}n{index}",
        host_interface=f"{PREFIX}{run}h{index}",
        ipv4=str(network.ipv4_network.network_address + 10 + index),
        ipv6=str(network.ipv6_network.network_address + (0xA << 16) + index),
    )
    ip("netns", "add", namespace.name)
    ip("link", "add", namespace.host_interface, "type", "veth", "peer", "name", namespace.interface)
    ip("link", "set", namespace.host_interface, "master", network.bridge)
    ip("link", "set", namespace.host_interface, "up")
    ip("link", "set", namespace.interface, "netns", namespace.name)
    inside = ["-n", namespace.name]
    ip(*inside, "link", "set", "lo", "up")
    ip(*inside, "addr", "add", f"{namespace.ipv4}/{network.ipv4_network.prefixlen}", "dev", namespace.interface)
    ip(*inside, "addr", "add", f"{namespace.ipv6}/64", "dev", namespace.interface, "nodad")
    ip(*inside, "link", "set", namespace.interface, "up")
    return namespace


def add_namespace(network: ClusterNetwork) -> Namespace:
    """One more namespace on `network` (the next index), checked to reach the bridge's addresses;
    removed with the others."""
    namespace = _make_namespace(network, len(network.namespaces) + 1)
    network.namespaces.append(namespace)
    targets = [network.bridge_ipv4, network.bridge_ipv6]
    answers = probe(network, namespace, targets)
    if any(answer not in ("open", "refused") for answer in answers):
        raise NetnsError(f"{namespace.name} cannot reach the bridge over {network.bridge}: {answers}")
    return namespace


def _free_ipv4_network() -> ipaddress.IPv4Network:
    """10.231.0.0/16, else the first 10.X.0.0/16 (X in 200..254) that no address or route of the
    host overlaps."""
    used = _host_networks()
    candidates = [PREFERRED_SECOND_OCTET, *range(200, 255)]
    for octet in candidates:
        candidate = ipaddress.IPv4Network(f"10.{octet}.0.0/16")
        if not any(candidate.overlaps(other) for other in used):
            return candidate
    raise NetnsError("no free 10.X.0.0/16 for the cluster network (X in 200..254)")


def _host_networks() -> list[ipaddress.IPv4Network]:
    found = []
    for info in json.loads(ip("-j", "-4", "addr", "show") or "[]"):
        for address in info.get("addr_info", []):
            found.append(ipaddress.IPv4Network(f"{address['local']}/{address['prefixlen']}", strict=False))
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        destination = route.get("dst", "")
        if destination and destination != "default" and route.get("type", "unicast") == "unicast":
            found.append(ipaddress.IPv4Network(destination if "/" in destination else f"{destination}/32",
                                               strict=False))
    return [net for net in found if not net.is_loopback]


def check_connectivity(network: ClusterNetwork) -> None:
    """Every namespace reaches the bridge address and the next namespace, over IPv4 and IPv6."""
    for namespace in network.namespaces:
        peer = network.namespaces[namespace.index % len(network.namespaces)]
        targets = [network.bridge_ipv4, network.bridge_ipv6, peer.ipv4, peer.ipv6]
        failed = [target for target, answer in zip(targets, probe(network, namespace, targets))
                  if answer not in ("open", "refused")]
        if failed:
            raise NetnsError(
                f"{namespace.name} cannot reach {', '.join(failed)} over {network.bridge}: a host firewall "
                "may drop traffic to the bridge (INPUT)")


_PROBE = """
import socket, sys
for target in sys.argv[2:]:
    try:
        socket.create_connection((target, int(sys.argv[1])), timeout=2).close()
        print("open")
    except ConnectionRefusedError:
        print("refused")
    except OSError as error:
        print(type(error).__name__)
"""


def probe(network: ClusterNetwork, namespace: Namespace | str, targets: Sequence[str],
          port: int = 9) -> list[str]:
    """What a TCP connect from `namespace` to each target's `port` meets: ``open``, ``refused``
    (the host is reached: its kernel answered), or the error (``TimeoutError``, ``OSError``…)."""
    done = network.run_in(namespace, [PYTHON, "-c", _PROBE, str(port), *targets], timeout=10 + 3 * len(targets))
    return done.stdout.split()


# -- removing ----------------------------------------------------------------------------------

def remove_run(run_id: str) -> None:
    """Remove whatever run `run_id` made: processes in its namespaces, namespaces, veths, bridge."""
    for name in _namespaces():
        match = _NAMESPACE.match(name)
        if match and match[1] == run_id:
            _remove_namespace(name)
    for name in _links():
        for pattern in (_HOST_VETH, _BRIDGE):
            match = pattern.match(name)
            if match and match[1] == run_id:
                ip("link", "del", name, check=False)


def remove_stale() -> list[str]:
    """Remove the leftovers of runs whose process is gone; the run ids removed."""
    runs = set()
    for name in _namespaces():
        match = _NAMESPACE.match(name)
        if match:
            runs.add(match[1])
    for name in _links():
        for pattern in (_HOST_VETH, _BRIDGE):
            match = pattern.match(name)
            if match:
                runs.add(match[1])
    stale = sorted(run for run in runs if not _alive(int(run, 16)))
    for run in stale:
        remove_run(run)
    return stale


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _remove_namespace(name: str) -> None:
    for _ in range(3):
        pids = namespace_pids(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    ip("netns", "del", name, check=False)


def namespace_pids(name: str) -> list[int]:
    """The processes running in namespace `name`."""
    output = ip("netns", "pids", name, check=False)
    return [int(word) for word in output.split() if word.isdigit()]


def _namespaces() -> list[str]:
    output = ip("-j", "netns", "list", check=False)
    try:
        return [entry["name"] for entry in json.loads(output or "[]")]
    except (ValueError, KeyError, TypeError):
        return [line.split()[0] for line in output.splitlines() if line.strip()]


def _links() -> list[str]:
    return [entry["ifname"] for entry in json.loads(ip("-j", "link", "show") or "[]")]


def ip(*args: str, check: bool = True) -> str:
    """``ip ARGS``; its output, or a NetnsError naming the command (unless not `check`)."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout
