"""Issue 13: the daemon puts back the partitions' addresses the interface lost (a link that went
down drops its IPv6 addresses), from the node's record, and nothing else."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node.addresses import missing
from partita.node.claims import Record, write_record
from partita.node.network import InterfaceAddress

RECORD = Record(netns=1, interface="eth0", addresses=("10.9.0.2", "10.9.0.3", "2001:db8:13::1:2", "2001:db8:13::1:3",
                                                      "192.0.2.9"),
                ipv6_network="2001:db8:13::1:0/112")


def present(*addresses: str) -> list[InterfaceAddress]:
    return [InterfaceAddress(a, 64 if ":" in a else 24, 6 if ":" in a else 4, "global", True) for a in addresses]


def test_only_the_missing_addresses_of_the_nodes_networks_are_put_back_with_formats_prefix():
    assert missing(RECORD, present("10.9.0.2", "10.9.0.3", "2001:db8:13::1:2", "2001:db8:13::1:3"),
                   "10.9.0.0/16") == []
    # the link went down: IPv6 gone; 192.0.2.9 is outside the node's networks: left alone
    assert missing(RECORD, present("10.9.0.2", "10.9.0.3"), "10.9.0.0/16") == [("2001:db8:13::1:2", 112),
                                                                           ("2001:db8:13::1:3", 112)]
    assert missing(RECORD, present(), "10.9.0.0/16")[:2] == [("10.9.0.2", 16), ("10.9.0.3", 16)]


def test_on_loopback_an_address_comes_back_alone():
    record = Record(netns=1, interface="lo", addresses=("127.0.1.1", "fd00::1"), ipv6_network="fd00::/64")
    assert missing(record, present(), "127.0.1.0/24") == [("127.0.1.1", 32), ("fd00::1", 128)]
    assert missing(Record(netns=1, interface="lo", addresses=("fd00::1", "not an address")), present(),
                   "127.0.1.0/24") == []  # no IPv6 network recorded: not the node's to put back


def ip(*args: str, namespace: str) -> str:
    result = subprocess.run(["ip", "-n", namespace, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def on(namespace: str, interface: str) -> set[str]:
    output = ip("-j", "addr", "show", "dev", interface, namespace=namespace)
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(output) for a in link["addr_info"]}


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"ptrs-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        ip("link", "add", "pt0", "type", "veth", "peer", "name", "pt1", namespace=name)
        for interface in ("pt0", "pt1"):
            ip("link", "set", interface, "up", namespace=name)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@pytest.mark.root
def test_the_ipv6_addresses_a_link_cut_took_come_back(namespace: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="ptrs-", dir="/tmp"))
    try:
        netns = os.stat(f"/run/netns/{namespace}").st_ino
        write_record(root, Record(netns=netns, interface="pt0", addresses=("10.77.0.2", "2001:db8:77::2"),
                                  ipv6_network="2001:db8:77::/64"))
        ip("addr", "add", "10.77.0.2/16", "dev", "pt0", namespace=namespace)
        ip("addr", "add", "2001:db8:77::2/64", "dev", "pt0", "nodad", namespace=namespace)
        ip("link", "set", "pt0", "down", namespace=namespace)
        ip("link", "set", "pt0", "up", namespace=namespace)
        assert "2001:db8:77::2/64" not in on(namespace, "pt0") and "10.77.0.2/16" in on(namespace, "pt0")
        code = ("import logging, sys; from pathlib import Path; from partita.node.addresses import restore; "
                "logging.basicConfig(level=logging.WARNING, format='%(message)s'); "
                "print(restore(Path(sys.argv[1]), '10.77.0.0/16'))")
        run = lambda: subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", code, str(root)],
                                     capture_output=True, text=True, timeout=60)
        first = run()
        assert first.stdout.strip() == "['2001:db8:77::2']", first.stderr
        assert first.stderr.strip() == "put 2001:db8:77::2/64 back on pt0 (the interface had lost it)"
        assert {"10.77.0.2/16", "2001:db8:77::2/64"} <= on(namespace, "pt0")
        again = run()
        assert again.stdout.strip() == "[]" and again.stderr == ""  # nothing missing: nothing done
        elsewhere = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True,
                                   timeout=60)
        assert elsewhere.stdout.strip() == "[]"  # another namespace's record: not this one's to touch
    finally:
        shutil.rmtree(root, ignore_errors=True)
