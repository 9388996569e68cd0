"""Three namespaced nodes on one master: each registers and formats, a hello-web instance pinned
to each deploys there and answers another namespace, and the namespaces reach nothing but the
cluster network."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from urllib.parse import urlsplit

from tests.support import netns
from tests.support.cluster import Cluster, http_get_in, listeners
from tests.support.postgres import PostgresServer


def test_nodes_register_and_format_on_one_master(cluster: Cluster) -> None:
    computers = {entry["computer_guid"]: entry for entry in cluster.client.list_compute_nodes()}
    assert sorted(computers) == sorted(node.computer_id for node in cluster.nodes)
    for node in cluster.nodes:
        assert computers[node.computer_id]["partition_count"] == 3, computers[node.computer_id]
        shown = cluster.network.run_in(node.namespace, ["ip", "-j", "addr", "show", "dev", node.namespace.interface])
        addresses = {info["local"] for link in json.loads(shown.stdout) for info in link["addr_info"]}
        first = str(ipaddress.ip_network(node.ipv4_network).network_address + 1)
        assert first in addresses, addresses  # slappart0's address, on the node's own veth


def test_an_instance_pinned_to_each_node_answers_from_another_namespace(cluster: Cluster, hello: dict) -> None:
    nodes = cluster.nodes
    for node in nodes:
        doc = hello[f"hello-{node.namespace.index}"]
        assert doc["computer_guid"] == node.computer_id, doc
        url = doc["connection_parameters"]["url"]
        host, port = urlsplit(url).hostname, urlsplit(url).port
        assert ipaddress.ip_address(host) in ipaddress.ip_network(node.ipv4_network), url
        other = nodes[node.namespace.index % len(nodes)]
        assert http_get_in(cluster.network, other.namespace, url).strip() == f"node {node.namespace.index}"
        assert len(listeners(cluster.network, node.namespace, host, port)) == 1
        # the partition's IPv6 address is reached too (nothing listens there: the kernel refuses)
        ipv6 = [address for _, address in doc["ip_list"] if ":" in address]
        assert ipv6 and ipaddress.ip_address(ipv6[0]) in ipaddress.ip_network(node.ipv6_network), doc["ip_list"]
        assert netns.probe(cluster.network, other.namespace, ipv6[:1], port=port) == ["refused"]


def test_namespaces_reach_only_the_cluster_network(cluster: Cluster, postgres_server: PostgresServer) -> None:
    master = urlsplit(cluster.master_url)
    outside = [address for address in _host_addresses() if address not in cluster.network.ipv4_network]
    targets = [master.hostname, "127.0.0.1", *outside, "192.0.2.77", "9.9.9.9"]
    for node in cluster.nodes:
        started = time.monotonic()
        # The master's port is reached; PostgreSQL's port on 127.0.0.1 is the namespace's own
        # loopback (nothing there), and every other address has no route.
        answers = [*netns.probe(cluster.network, node.namespace, targets[:1], port=master.port),
                   *netns.probe(cluster.network, node.namespace, targets[1:2], port=postgres_server.port),
                   *netns.probe(cluster.network, node.namespace, targets[2:], port=22)]
        assert answers[0] == "open" and answers[1] == "refused", answers
        assert all(answer == "OSError" for answer in answers[2:]), list(zip(targets, answers))
        assert time.monotonic() - started < 5  # unreachable at once, not after a timeout


def _host_addresses() -> list[ipaddress.IPv4Address]:
    shown = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=30, check=True)
    return [ipaddress.IPv4Address(info["local"]) for link in json.loads(shown.stdout)
            for info in link["addr_info"] if not ipaddress.IPv4Address(info["local"]).is_loopback]
