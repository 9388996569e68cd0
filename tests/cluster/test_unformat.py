"""Issue 13: `slapos node unformat` takes each node of the cluster off the machine, as
``slapos experiment down`` does on its hosts. It runs last (conftest.py): the nodes are gone after.

Each node, its daemon stopped, is refused while its supervisord and hello-web's service run; with
``--stop`` it removes its partitions' users, addresses, routes and claims, and a second run finds
nothing. The software user the nodes share (``slapsoft``) is kept while another node uses it.
"""
from __future__ import annotations

import json
import pwd

from partita.node.claims import CLAIMS_DIRECTORY
from tests.support.cluster import Cluster, ClusterNode
from tests.support.netns import ip


def _addresses(cluster: Cluster, node: ClusterNode) -> set[str]:
    """The global addresses in the node's namespace (its veth's and lo's)."""
    output = ip("-n", node.namespace.name, "-j", "addr", "show")
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(output) for a in link["addr_info"]
            if a.get("scope") != "link"}


def test_each_node_unformats_and_leaves_its_namespace_as_made(cluster: Cluster, hello: dict) -> None:
    made = {node.namespace.name: {f"{node.namespace.ipv4}/16", f"{node.namespace.ipv6}/64", "127.0.0.1/8", "::1/128"}
            for node in cluster.nodes}
    for number, node in enumerate(cluster.nodes):
        node.stop()  # `slapos node run`: its supervisord and services keep running
        refused = node.slapos("node", "unformat", check=False)
        assert refused.returncode == 1 and "the node's supervisord is running" in refused.stderr, refused.stderr
        assert "processes of the node's users run" in refused.stderr  # hello-web's service
        done = node.slapos("node", "unformat", "--stop")
        lines = done.stdout.splitlines()
        assert {"stopped the node's supervisord", "removed partition slappart0",
                f"removed user {node.user_prefix}0"} <= set(lines), done.stdout
        if number < len(cluster.nodes) - 1:
            assert "removed user slapsoft" not in lines  # the other nodes' partition users are in its group
        assert _addresses(cluster, node) == made[node.namespace.name]
        assert not any(entry.pw_name.startswith(node.user_prefix) for entry in pwd.getpwall())
        assert not any(str(node.directory / "srv") in path.read_text() for path in CLAIMS_DIRECTORY.glob("*-*"))
        assert not (node.directory / "srv").exists()
        again = node.slapos("node", "unformat")
        assert "nothing to remove" in again.stdout, again.stdout
