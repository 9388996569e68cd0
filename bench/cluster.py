"""Request -> answering on a remote node: a master and N nodes, each in its own network namespace.

The cluster of ``tests/cluster`` (`tests.support.cluster`): a bridge, N namespaces with no default
route, the real master on PostgreSQL over HTTPS on the bridge, each node registered, formatted and
running (`slapos node run`) in its namespace. hello-web is supplied to every node and built first
(one warm-up instance per node, not measured). Then each measured request is a new hello-web
instance pinned to the next node in turn; measured from the `request` call on the host:

- *published*: until the master shows the instance started with its ``url`` (polled every 0.1 s);
- *answering*: until a GET of that ``url`` from **another** namespace answers the greeting (a
  prober inside that namespace, polling every 0.05 s).

With ``--unreachable`` it measures instead how long a node's unreachability takes to show: the
master's ``unreachable_after`` at its minimum (90 s), one node's link is cut (its veth set down)
and the time until ``slapos computer list`` says ``unreachable`` is measured (bounded by
``unreachable_after`` by design), then the link comes back and the time until ``online`` again
(the node's back-off while the master was unreachable, at most 30 s).

Usage, as root (the project's .venv and the test toolchain made by ``scripts/test`` first):

    PARTITA_TEST_ROOT=/opt/partita-test .venv/bin/python bench/cluster.py [--nodes 3] [--requests 9]
    PARTITA_TEST_ROOT=/opt/partita-test .venv/bin/python bench/cluster.py --unreachable

Everything it makes (namespaces, bridge, users, the database) is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import netns  # noqa: E402
from tests.support.cluster import Cluster, start_cluster, supply_and_request  # noqa: E402
from tests.support.node import HELLO_WEB  # noqa: E402
from tests.support.postgres import start_server  # noqa: E402

UNREACHABLE_AFTER = 90  # the master's minimum

_PROBE = """
import sys, time, urllib.request
url, expected, deadline = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(url, timeout=2).read().decode().strip() == expected:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.05)
sys.exit(1)
"""


def ready(doc: dict) -> bool:
    return doc.get("status_reason") == "started" and bool(doc.get("connection_parameters", {}).get("url"))


def measure(cluster: Cluster, title: str, node_number: int, timeout: float = 120.0) -> tuple[float, float]:
    """(seconds to published, seconds to answering from another namespace) of one new request."""
    node = cluster.nodes[node_number]
    other = cluster.nodes[(node_number + 1) % len(cluster.nodes)]
    started = time.monotonic()
    supply_and_request(cluster, title, str(HELLO_WEB), node, greeting=title)
    doc = cluster.wait_for(title, ready, timeout=timeout, what="published", interval=0.1)
    published = time.monotonic() - started
    probe = cluster.network.run_in(other.namespace, [netns.PYTHON, "-c", _PROBE,
                                                     doc["connection_parameters"]["url"], title, str(timeout)],
                                   timeout=timeout + 10)
    if probe.returncode != 0:
        raise RuntimeError(f"{title} did not answer from {other.namespace.name}: {probe.stderr}")
    return published, time.monotonic() - started


def computer_entry(cluster: Cluster, computer: str) -> dict:
    """The computer as `slapos computer list` shows it (``contact_state``, ``last_contact``)."""
    return next(entry for entry in cluster.client.list_compute_nodes() if entry["computer_guid"] == computer)


def contact_state(cluster: Cluster, computer: str) -> str:
    return computer_entry(cluster, computer)["contact_state"]


def wait_state(cluster: Cluster, computer: str, state: str, timeout: float) -> float:
    """Seconds until `computer` is in contact state `state` (polled every 0.5 s)."""
    started = time.monotonic()
    while contact_state(cluster, computer) != state:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{computer} not {state} after {timeout:g} s")
        time.sleep(0.5)
    return time.monotonic() - started


def measure_unreachable(cluster: Cluster) -> tuple[float, float, float]:
    """(seconds from the cut of node 1's link to `unreachable`, from its return to `online`, and
    the age of its last recorded contact when `unreachable` showed)."""
    node = cluster.nodes[0]
    wait_state(cluster, node.computer_id, "online", 60)
    netns.set_link(cluster.network, node.namespace, up=False)
    try:
        unreachable = wait_state(cluster, node.computer_id, "unreachable", UNREACHABLE_AFTER + 60)
        last = datetime.fromisoformat(computer_entry(cluster, node.computer_id)["last_contact"]).timestamp()
        age = time.time() - last
    finally:
        netns.set_link(cluster.network, node.namespace, up=True)
    return unreachable, wait_state(cluster, node.computer_id, "online", 120), age


def unreachable_main(nodes: int) -> int:
    postgres = start_server()
    try:
        with start_cluster(postgres, nodes, unreachable_after=UNREACHABLE_AFTER) as cluster:
            unreachable, online, age = measure_unreachable(cluster)
    finally:
        postgres.stop()
    print(f"{nodes} namespaced nodes on one master (unreachable_after = {UNREACHABLE_AFTER} s)")
    print(f"link cut -> shown unreachable: {unreachable:.1f} s (its last contact then {age:.0f} s old)")
    print(f"link back -> shown online: {online:.1f} s")
    return 0


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.0f} ms, min {min(values) * 1000:.0f}, "
            f"max {max(values) * 1000:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--requests", type=int, default=9, help="measured requests, spread over the nodes")
    parser.add_argument("--json", metavar="FILE", help="write every figure here")
    parser.add_argument("--unreachable", action="store_true",
                        help="measure instead the time for a cut node to show unreachable, then online")
    args = parser.parse_args()
    if args.unreachable:
        return unreachable_main(args.nodes)
    per_node = -(-args.requests // args.nodes)
    postgres = start_server()
    try:
        began = time.monotonic()
        with start_cluster(postgres, args.nodes, partitions=per_node + 1) as cluster:
            setup = time.monotonic() - began
            began = time.monotonic()
            for number, node in enumerate(cluster.nodes):
                supply_and_request(cluster, f"warm-{number}", str(HELLO_WEB), node, greeting="warm")
            for number in range(args.nodes):
                cluster.wait_for(f"warm-{number}", ready, timeout=600, what="warm-up deployed")
            build = time.monotonic() - began
            figures = [measure(cluster, f"bench-{number}", number % args.nodes) for number in range(args.requests)]
    finally:
        postgres.stop()
    published, answering = [f[0] for f in figures], [f[1] for f in figures]
    print(f"{args.nodes} namespaced nodes on one master (PostgreSQL, HTTPS on the bridge)")
    print(f"cluster up (master, {args.nodes} nodes registered, formatted, running): {setup:.1f} s")
    print(f"hello-web built on every node and a first instance each: {build:.1f} s")
    print(f"request -> published ({len(figures)} requests): {summary(published)}")
    print(f"request -> answering from another namespace: {summary(answering)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"setup": setup, "build": build, "published": published,
                                               "answering": answering}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
