"""Three nodes, each in its own network namespace, on one PostgreSQL master (issue 13).

One cluster for the whole directory (`tests.support.cluster`): the nodes register, format and run
once, and hello-web is built once per node by the `hello` fixture, which also deploys one
instance pinned to each node. Tests that stop a node or cut its link bring it back before they
end. Every test here needs root (namespaces, users, addresses) and the tests' PostgreSQL.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, start_cluster, supply_and_request
from tests.support.node import HELLO_WEB
from tests.support.postgres import PostgresServer

NODES = 3
BUILD_TIMEOUT = 300.0


# The modules in the order they run: those that disturb a node (cut its link, kill it) last; the
# binary cache's own cluster first, so that it is gone before the shared one starts.
ORDER = ("test_binary_cache.py", "test_placement.py", "test_tree.py", "test_link_cut.py", "test_node_kill.py")
LAST = "test_unformat.py"  # after every other module: the nodes are gone after it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if "tests/cluster/" in item.nodeid]
    for item in ours:
        item.add_marker(pytest.mark.root)
        item.add_marker(pytest.mark.postgresql)
    rank = {name: number for number, name in enumerate(ORDER)}
    rank[LAST] = len(ORDER) + 1
    ordered = iter(sorted(ours, key=lambda item: rank.get(item.path.name, len(ORDER))))  # stable
    items[:] = [next(ordered) if "tests/cluster/" in item.nodeid else item for item in items]


@pytest.fixture(scope="session")
def cluster(postgres_server: PostgresServer) -> Iterator[Cluster]:
    with start_cluster(postgres_server, NODES) as running:
        yield running


def ready(doc: dict) -> bool:
    """An instance whose promises pass and that published its url."""
    return doc.get("status_reason") == "started" and bool(doc.get("connection_parameters", {}).get("url"))


@pytest.fixture(scope="session")
def hello(cluster: Cluster) -> dict[str, dict]:
    """hello-web supplied to every node and one instance pinned to each, ``hello-K`` on node K,
    deployed and answering: their documents by title."""
    for node in cluster.nodes:
        supply_and_request(cluster, f"hello-{node.namespace.index}", str(HELLO_WEB), node,
                           greeting=f"node {node.namespace.index}")
    return {f"hello-{node.namespace.index}": cluster.wait_for(f"hello-{node.namespace.index}", ready,
                                                             timeout=BUILD_TIMEOUT, what="ready")
            for node in cluster.nodes}
