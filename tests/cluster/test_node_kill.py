"""A node killed hard (SIGKILL of its daemon and its supervisord) and started again: a request
made while it was down deploys once it is back, its service is not duplicated (one process listens
on its address), and that service answers again (the orphan the dead supervisord left is killed)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.support.cluster import Cluster, ClusterNode, http_get_in, listeners, supply_and_request
from tests.support.node import HELLO_WEB
from tests.cluster.conftest import ready


@dataclass
class Restarted:
    node: ClusterNode
    url: str           # hello-3's, deployed before the kill
    while_down: dict   # the document of the instance requested while the node was down, once ready


@pytest.fixture(scope="module")
def restarted(cluster: Cluster, hello: dict) -> Restarted:
    node = cluster.nodes[2]
    killed = node.kill_hard()
    assert len(killed) == 2, killed  # the daemon and supervisord
    supply_and_request(cluster, "hello-3-down", str(HELLO_WEB), node, greeting="made while down")
    time.sleep(2)
    assert not ready(cluster.client.get_instance_tree("hello-3-down"))
    node.start()
    doc = cluster.wait_for("hello-3-down", ready, timeout=120, what="deployed after the restart")
    return Restarted(node, hello["hello-3"]["connection_parameters"]["url"], doc)


def test_a_request_made_while_a_node_was_killed_deploys_when_it_returns(cluster: Cluster, restarted: Restarted) -> None:
    other = cluster.nodes[0]
    assert restarted.while_down["computer_guid"] == restarted.node.computer_id
    url = restarted.while_down["connection_parameters"]["url"]
    assert http_get_in(cluster.network, other.namespace, url).strip() == "made while down"
    host, port = urlsplit(restarted.url).hostname, urlsplit(restarted.url).port
    assert len(listeners(cluster.network, restarted.node.namespace, host, port)) == 1  # no duplicate


def test_the_service_of_a_killed_node_answers_again_after_its_restart(cluster: Cluster,
                                                                      restarted: Restarted) -> None:
    other = cluster.nodes[0]
    deadline = time.monotonic() + 20
    while True:
        try:
            assert http_get_in(cluster.network, other.namespace, restarted.url).strip() == "node 3"
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
