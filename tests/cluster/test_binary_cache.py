"""The binary cache across namespaced nodes (issue 13): a node that is not a builder builds and
uploads nothing; the builder builds and uploads; the third node deploys from the cache without
running buildout, and its instance answers.

The nodes share one software root path (each sees its own directory there, `start_cluster`'s
``shared_software_root``), as machines of their own would: the cache's key names it."""
from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.cluster.conftest import ready
from tests.support.cluster import Cluster, ClusterNode, http_get_in, start_cluster, supply_and_request
from tests.support.node import HELLO_WEB
from tests.support.postgres import PostgresServer

URL = str(HELLO_WEB)
DIGEST = hashlib.md5(URL.encode()).hexdigest()
_UPLOADED = re.compile(r"uploaded to the binary cache \(([a-z0-9._+-]+), (\d+) bytes\)")


@pytest.fixture(scope="module")
def cache_cluster(postgres_server: PostgresServer) -> Iterator[Cluster]:
    with start_cluster(postgres_server, 3, partitions=1, shared_software_root=True) as running:
        yield running


def _deploy(cluster: Cluster, node: ClusterNode) -> dict:
    title = f"cached-{node.namespace.index}"
    supply_and_request(cluster, title, URL, node, greeting=f"node {node.namespace.index}")
    return cluster.wait_for(title, ready, timeout=300, what="its URL")


def _wait_log(node: ClusterNode, pattern: re.Pattern[str] | str, timeout: float = 60.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, node.log())
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{node.namespace.name}: no {pattern!r} in its log:\n{node.log()[-3000:]}")


def _answers(cluster: Cluster, node: ClusterNode, doc: dict) -> str:
    other = cluster.nodes[node.namespace.index % len(cluster.nodes)]
    return http_get_in(cluster.network, other.namespace, doc["connection_parameters"]["url"]).strip()


def test_only_a_builder_fills_the_cache_and_another_node_deploys_from_it(cache_cluster: Cluster) -> None:
    cluster = cache_cluster
    builder, cached, other = cluster.nodes[0], cluster.nodes[1], cluster.nodes[2]
    cluster.client.set_compute_node_builder(builder.computer_id, True)
    assert cluster.client.get_compute_node(builder.computer_id)["builder"] is True

    # Not a builder: it builds (the cache is empty) and uploads nothing.
    assert _answers(cluster, other, _deploy(cluster, other)) == f"node {other.namespace.index}"
    assert (other.software_mount / DIGEST / ".build.log").is_file()  # type: ignore[operator]
    assert "uploaded to the binary cache" not in other.log()

    # The builder builds (nothing cached: the other node uploaded nothing) and uploads.
    assert _answers(cluster, builder, _deploy(cluster, builder)) == f"node {builder.namespace.index}"
    uploaded = _wait_log(builder, _UPLOADED)
    key = f"{DIGEST}-{uploaded[1]}"
    entry = cluster.client.get_binary_cache_entry(key)
    assert (entry["uploader"], entry["size"], entry["state"]) == (builder.computer_id, int(uploaded[2]), "complete")

    # The third node deploys it from the cache: no buildout ran for it, and its instance answers.
    started = time.monotonic()
    doc = _deploy(cluster, cached)
    took = time.monotonic() - started
    print(f"node {cached.namespace.index}: request -> answer from the binary cache in {took:.1f} s")
    assert doc["computer_guid"] == cached.computer_id
    assert _answers(cluster, cached, doc) == f"node {cached.namespace.index}"
    assert _wait_log(cached, rf"software {re.escape(URL)}: from the binary cache \({uploaded[1]}\)")
    software = cached.software_mount / DIGEST  # type: ignore[operator]
    assert (software / ".completed").is_file() and not (software / ".build.log").exists()
    assert urlsplit(doc["connection_parameters"]["url"]).hostname
