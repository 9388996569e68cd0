"""Issue 13: the addresses `slapos node format` gives partitions, for real, as root, each test in a
network namespace of its own (``ip netns``) so that it sees only its own interfaces and claims:

- IPv6 from the global prefix of a (veth) interface, in this machine's block of it, the
  interface's own addresses skipped, stable across formats; a /80 range per partition routed to the machine; old addresses taken off when the
  range changes, old range routes when ``ipv6_prefixshift`` changes or ranges are turned off;
- two nodes on one machine with default settings: the second is refused, naming the address and
  the first node, and changes nothing; it formats once the first node is gone (its claims stale);
  a node formatted before claims existed adopts its own addresses; an address someone else put on
  the interface is refused.

The master is out of reach from the namespace (exit 2, "formatted locally"): what is posted is
`partition_entry`'s, tested in test_format.py.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node.claims import CLAIMS_DIRECTORY
from tests.support.server import SLAPOS

pytestmark = pytest.mark.root


SERVE_AND_CONNECT = """
import socket
server = socket.socket(socket.AF_INET6)
server.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: bind an address of a range, not on an interface
server.bind(("2001:db8:13:0:2::7", 0))
server.listen()
socket.create_connection(server.getsockname()[:2], timeout=5).sendall(b"ok")
print(server.accept()[0].recv(2).decode())
"""


def ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


def addresses(namespace: str, interface: str) -> set[str]:
    output = ip("-j", "addr", "show", "dev", interface, namespace=namespace).stdout
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(output) for a in link["addr_info"]}


def local_routes(namespace: str) -> set[str]:
    """The IPv6 ``local`` routes on lo other than single addresses (the partitions' ranges)."""
    output = ip("-6", "-j", "route", "show", "table", "local", "type", "local", "dev", "lo",
                namespace=namespace).stdout
    return {route["dst"] for route in json.loads(output) if "/" in route["dst"]}


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace with ``lo`` up and a veth ``pt0`` (its peer ``pt1`` beside it): 2001:db8:X::1/64 and ::2/64 (the
    machine's and another host's), 192.0.2.1/24; deleted after, with everything in it."""
    name = f"ptad-{secrets.token_hex(3)}"
    ip("netns", "add", name)
    try:
        ip("link", "set", "lo", "up", namespace=name)
        ip("link", "add", "pt0", "type", "veth", "peer", "name", "pt1", namespace=name)
        for interface in ("pt0", "pt1"):
            ip("link", "set", interface, "up", namespace=name)
        ip("addr", "add", "192.0.2.1/24", "dev", "pt0", namespace=name)
        for address in ("2001:db8:13::1/64", "2001:db8:13::2/64"):
            ip("addr", "add", address, "dev", "pt0", "nodad", namespace=name)
        yield name
    finally:
        ip("netns", "del", name, check=False)  # its claims go stale with the nodes' instance roots


class Node:
    """One node's directory and configuration (a test-specific user base and software user)."""

    def __init__(self, users: str, **slapformat: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ptaddr-", dir="/tmp"))
        self.root.chmod(0o755)
        self.users = users
        self.write(**slapformat)

    def write(self, **slapformat: str) -> None:
        values = {"partition_amount": "2", "user_base_name": self.users + "u", "software_user": self.users + "s",
                  **slapformat}
        lines = ["[slapos]", "computer_id = COMP-1", "master_url = http://127.0.0.1:9",
                 f"instance_root = {self.root / 'srv'}", f"software_root = {self.root / 'opt'}", "[slapformat]",
                 *(f"{key} = {value}" for key, value in values.items())]
        (self.root / "slapos.cfg").write_text("\n".join(lines) + "\n")

    def format(self, namespace: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", namespace, SLAPOS, "node", "format", "--cfg",
                               str(self.root / "slapos.cfg")], capture_output=True, text=True, timeout=120)

    def resource(self, index: int) -> dict:
        return json.loads((self.root / "srv" / f"slappart{index}" / ".slapos-resource").read_text())


def formatted_locally(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 2: done here, the master out of the namespace's reach."""
    assert result.returncode == 2 and "formatted" in result.stderr and "locally" in result.stderr, result.stderr


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        shutil.rmtree(node.root, ignore_errors=True)
        for entry in pwd.getpwall():
            if entry.pw_name.startswith(node.users):
                subprocess.run(["userdel", entry.pw_name], capture_output=True, timeout=30)
                subprocess.run(["groupdel", entry.pw_name], capture_output=True, timeout=30)


def test_ipv6_comes_from_the_interfaces_global_prefix(namespace: str, nodes: list[Node]) -> None:
    node = Node("pta" + secrets.token_hex(2), interface_name="pt0", ipv4_local_network="192.0.2.64/26",
                partition_amount="3", partition_has_ipv6_range="true")
    nodes.append(node)
    ip("addr", "add", "2001:db8:13::1:2/64", "dev", "pt0", "nodad", namespace=namespace)  # not the node's
    first = node.format(namespace)
    formatted_locally(first)
    mine = {"192.0.2.65/26", "192.0.2.66/26", "192.0.2.67/26",  # this machine's block of the /64: ::1:0/112
            "2001:db8:13::1:1/64", "2001:db8:13::1:3/64", "2001:db8:13::1:4/64"}
    assert mine <= addresses(namespace, "pt0")
    assert [node.resource(i)["ipv6_address"] for i in range(3)] == ["2001:db8:13::1:1", "2001:db8:13::1:3",
                                                                    "2001:db8:13::1:4"]
    assert "2001:db8:13::1:1" in first.stdout
    ranges = [node.resource(i)["ipv6_range"] for i in range(3)]
    assert ranges == ["2001:db8:13:0:1::/80", "2001:db8:13:0:2::/80", "2001:db8:13:0:3::/80"]
    assert "range 2001:db8:13:0:1::/80" in first.stdout
    routes = ip("-6", "route", "show", "table", "local", "type", "local", namespace=namespace).stdout
    assert all(f"local {r} dev lo" in routes for r in ranges), routes
    bind = subprocess.run(["ip", "netns", "exec", namespace, "/usr/bin/python3", "-c", SERVE_AND_CONNECT],
                          capture_output=True, text=True, timeout=30)
    assert (bind.returncode, bind.stdout) == (0, "ok\n"), bind.stderr  # any address of a range answers
    ip("addr", "del", "2001:db8:13::1:2/64", "dev", "pt0", namespace=namespace)  # another's, gone
    again = node.format(namespace)
    formatted_locally(again)
    assert again.stdout == first.stdout  # the same addresses: none moves into the freed ::1:2
    node.write(interface_name="pt0", ipv4_local_network="192.0.2.64/26", partition_amount="3",
               partition_has_ipv6_range="true", ipv6_prefixshift="24")
    formatted_locally(node.format(namespace))  # other ranges: the old routes go, the new ones come
    shifted = [node.resource(i)["ipv6_range"] for i in range(3)]
    assert shifted == ["2001:db8:13::100:0:0/88", "2001:db8:13::200:0:0/88", "2001:db8:13::300:0:0/88"]
    assert local_routes(namespace) == set(shifted)
    node.write(interface_name="pt0", ipv4_local_network="192.0.2.64/26", partition_amount="1")
    shrunk = node.format(namespace)
    formatted_locally(shrunk)  # the master out of reach: slappart1 and 2 are left as they are
    assert mine <= addresses(namespace, "pt0")
    node.write(interface_name="pt0", ipv4_local_network="192.0.2.128/26", partition_amount="3")
    moved = node.format(namespace)
    formatted_locally(moved)  # another range: the node takes the old addresses off
    now = addresses(namespace, "pt0")
    assert {"192.0.2.129/26", "192.0.2.130/26", "192.0.2.131/26"} <= now
    assert not {"192.0.2.65/26", "192.0.2.66/26", "192.0.2.67/26"} & now
    assert [node.resource(i)["ipv4_address"] for i in range(3)] == ["192.0.2.129", "192.0.2.130", "192.0.2.131"]
    assert local_routes(namespace) == set()  # no ranges any more: no route left


def test_two_default_nodes_on_one_machine(namespace: str, nodes: list[Node]) -> None:
    first, second = Node("ptb" + secrets.token_hex(2)), Node("ptc" + secrets.token_hex(2))
    nodes += [first, second]
    formatted_locally(first.format(namespace))
    on_lo = addresses(namespace, "lo")
    assert {"127.0.1.1/32", "127.0.1.2/32"} <= on_lo

    refused = second.format(namespace)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"slapos: error: 127.0.1.1 is already used by the node of {first.root / 'srv'} "
        "(ipv4_local_network 127.0.1.0/24); give this node another ipv4_local_network"]
    assert not (second.root / "srv").exists() and not (second.root / "opt").exists()
    assert not any(e.pw_name.startswith(second.users) for e in pwd.getpwall())
    assert addresses(namespace, "lo") == on_lo

    formatted_locally(first.format(namespace))  # re-formatting the holder is idempotent
    assert addresses(namespace, "lo") == on_lo

    (first.root / "srv" / ".slapos-addresses").unlink()  # as formatted before claims existed:
    for claim in CLAIMS_DIRECTORY.glob(f"{os.stat(f'/run/netns/{namespace}').st_ino}-*"):
        claim.unlink()  # its addresses on lo, unclaimed, and its partition directories there
    formatted_locally(first.format(namespace))  # adopts them
    assert addresses(namespace, "lo") == on_lo and (first.root / "srv" / ".slapos-addresses").exists()
    assert second.format(namespace).returncode == 1  # held again

    shutil.rmtree(first.root / "srv")  # the first node is gone: its claims are stale, taken over
    formatted_locally(second.format(namespace))
    assert second.resource(0)["ipv4_address"] == "127.0.1.1"

    ip("addr", "add", "127.0.7.1/32", "dev", "lo", namespace=namespace)  # not a node's
    third = Node("ptd" + secrets.token_hex(2), ipv4_local_network="127.0.7.0/24",
                 ipv6_local_network="fd70:6172:7469:13::/64")
    nodes.append(third)
    taken = third.format(namespace)
    assert taken.returncode == 1 and taken.stderr.strip() == (
        "slapos: error: 127.0.7.1 is already on lo and no Partita node claims it; remove it from lo or give "
        "this node another ipv4_local_network")
