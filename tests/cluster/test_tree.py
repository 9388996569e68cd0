"""An instance tree across two namespaced nodes: tree's root pinned to node 1 requests its leaf on
node 2 (its `leaf-computer` parameter, the leaf's SLA; the leaf's release is supplied to both), and
the two partitions reach each other over their addresses."""
from __future__ import annotations

import ipaddress
import subprocess
from urllib.parse import urlsplit

from tests.support import netns
from tests.support.cluster import Cluster, ClusterNode, http_get_in, supply_and_request
from tests.support.node import REPO
from tests.cluster.conftest import ready

ROOT_URL = str(REPO / "software-releases" / "tree" / "software.cfg")
LEAF_URL = str(REPO / "software-releases" / "tree" / "leaf" / "software.cfg")
PORT = 8090

# One connection accepted on ADDRESS:PORT, answered with "root" (the root partition has no service).
_ANSWER_ONCE = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(30)
print("listening", flush=True)
connection, peer = server.accept()
connection.sendall(("root, to " + peer[0]).encode())
connection.close()
"""
_CALL = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5, source_address=(sys.argv[3], 0)) as s:
    print(s.recv(100).decode())
"""


def test_a_root_on_one_node_and_its_leaf_on_another_reach_each_other(cluster: Cluster, hello: dict) -> None:
    root_node, leaf_node = cluster.nodes[0], cluster.nodes[1]
    for node in (root_node, leaf_node):
        cluster.client.supply(node.computer_id, LEAF_URL)
    supply_and_request(cluster, "tree", ROOT_URL, root_node, greeting="leaf on node 2", port=str(PORT),
                       **{"leaf-computer": leaf_node.computer_id})
    root = cluster.wait_for("tree", ready, timeout=240, what="the root publishing its leaf's url")
    leaf_url = root["connection_parameters"]["url"]
    leaf_host = urlsplit(leaf_url).hostname
    assert root["computer_guid"] == root_node.computer_id, root
    assert ipaddress.ip_address(leaf_host) in ipaddress.ip_network(leaf_node.ipv4_network), leaf_url

    root_ip = _ipv4_of(root, root_node)
    network = cluster.network
    # root -> leaf: from the root partition's address, in node 1's namespace
    assert http_get_in(network, root_node.namespace, leaf_url, source=root_ip).strip() == "leaf on node 2"
    # leaf -> root: from the leaf's address, in node 2's namespace, to a listener on the root's
    listener = network.popen_in(root_node.namespace, [netns.PYTHON, "-c", _ANSWER_ONCE, root_ip, str(PORT)],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "listening"
        called = network.run_in(leaf_node.namespace, [netns.PYTHON, "-c", _CALL, root_ip, str(PORT), leaf_host])
        assert called.stdout.strip() == f"root, to {leaf_host}", called.stderr
    finally:
        listener.kill()
        listener.wait(timeout=10)


def _ipv4_of(doc: dict, node: ClusterNode) -> str:
    """The instance's IPv4 address in its node's partition range."""
    network = ipaddress.ip_network(node.ipv4_network)
    found = [address for _, address in doc["ip_list"]
             if ipaddress.ip_address(address).version == 4 and ipaddress.ip_address(address) in network]
    assert found, doc["ip_list"]
    return found[0]
