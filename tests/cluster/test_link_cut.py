"""A node's link cut (its veth set down inside its namespace) and restored: the node resumes and a
request made meanwhile deploys; its partitions' IPv6 addresses, which
Linux drops with the link, are put back."""
from __future__ import annotations

import time

import pytest

from tests.support import netns
from tests.support.cluster import Cluster, http_get_in, supply_and_request
from tests.support.node import HELLO_WEB
from tests.cluster.conftest import ready


@pytest.fixture(scope="module")
def made_while_cut(cluster: Cluster, hello: dict) -> dict:
    """The document of the instance requested on node 2 while its link was down, once ready."""
    node = cluster.nodes[1]
    netns.set_link(cluster.network, node.namespace, up=False)
    try:
        supply_and_request(cluster, "hello-2-cut", str(HELLO_WEB), node, greeting="made while cut")
        time.sleep(3)  # the node's calls to the master fail meanwhile
        assert not ready(cluster.client.get_instance_tree("hello-2-cut"))
    finally:
        netns.set_link(cluster.network, node.namespace, up=True)
    return cluster.wait_for("hello-2-cut", ready, timeout=180, what="deployed after the link came back")


def test_a_node_whose_link_was_cut_deploys_what_was_requested_meanwhile(cluster: Cluster, made_while_cut: dict) -> None:
    node, other = cluster.nodes[1], cluster.nodes[2]
    assert made_while_cut["computer_guid"] == node.computer_id
    url = made_while_cut["connection_parameters"]["url"]
    assert http_get_in(cluster.network, other.namespace, url).strip() == "made while cut"
    url = cluster.client.get_instance_tree("hello-2")["connection_parameters"]["url"]
    assert http_get_in(cluster.network, other.namespace, url).strip() == "node 2"
    assert node.daemon is not None and node.daemon.poll() is None


def test_the_partitions_ipv6_addresses_come_back_with_the_link(cluster: Cluster, made_while_cut: dict) -> None:
    other = cluster.nodes[2]
    ipv6 = [address for _, address in made_while_cut["ip_list"] if ":" in address]
    assert ipv6
    deadline = time.monotonic() + 20
    while netns.probe(cluster.network, other.namespace, ipv6, port=8080) != ["refused"]:
        assert time.monotonic() < deadline, f"{ipv6[0]} unreachable 20 s after the link came back"
        time.sleep(1)
