"""A node's link cut (its veth set down inside its namespace) and restored: the node resumes and a
request made meanwhile deploys."""
from __future__ import annotations

import time

from tests.support import netns
from tests.support.cluster import Cluster, http_get_in, supply_and_request
from tests.support.node import HELLO_WEB
from tests.cluster.conftest import ready


def test_a_node_whose_link_was_cut_deploys_what_was_requested_meanwhile(cluster: Cluster, hello: dict) -> None:
    node, other = cluster.nodes[1], cluster.nodes[2]
    netns.set_link(cluster.network, node.namespace, up=False)
    try:
        supply_and_request(cluster, "hello-2-cut", str(HELLO_WEB), node, greeting="made while cut")
        time.sleep(3)  # the node's calls to the master fail meanwhile
        assert not ready(cluster.client.get_instance_tree("hello-2-cut"))
    finally:
        netns.set_link(cluster.network, node.namespace, up=True)
    doc = cluster.wait_for("hello-2-cut", ready, timeout=180, what="deployed after the link came back")
    assert doc["computer_guid"] == node.computer_id
    assert http_get_in(cluster.network, other.namespace, doc["connection_parameters"]["url"]).strip() == "made while cut"
    url = cluster.client.get_instance_tree("hello-2")["connection_parameters"]["url"]
    assert http_get_in(cluster.network, other.namespace, url).strip() == "node 2"
    assert node.daemon is not None and node.daemon.poll() is None
