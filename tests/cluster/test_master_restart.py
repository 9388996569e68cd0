"""The master restarted (both gunicorn workers stopped, then started on the same address and
database) while every node waits in its long poll: each node's next contact is recorded within
seconds, and a request made right after the restart, pinned to each node, deploys and answers.

It runs after the other modules of the directory (`tests.cluster.conftest.ORDER` does not list it).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

import pytest

from partita.master.services.contact import WRITE_EVERY
from tests.support.cluster import Cluster, http_get_in, start_master, stop_master, supply_and_request
from tests.support.node import HELLO_WEB
from tests.cluster.conftest import ready

RECONNECT_BOUND = 60.0   # how long the fixture waits for every node
RECONNECTED_WITHIN = 15.0  # a refused connection is retried within 5 s (`node.daemon.master_backoff`)


@dataclass
class Restart:
    started_at: float               # when the new master answered (host clock, as the master's)
    reconnected: dict[str, float]   # seconds from then to each node's recorded contact


def contacts(cluster: Cluster) -> dict[str, float | None]:
    """Each computer's last contact (epoch seconds) as `computer list` shows it."""
    return {entry["computer_guid"]: (datetime.fromisoformat(entry["last_contact"]).timestamp()
                                     if entry["last_contact"] else None)
            for entry in cluster.client.list_compute_nodes()}


@pytest.fixture(scope="module")
def restart(cluster: Cluster, hello: dict) -> Restart:
    time.sleep(2)  # the nodes are past their last deployment, waiting in their long poll
    stopped_at = time.monotonic()
    pids = stop_master(cluster)
    assert len(pids) == 3, pids  # the arbiter and its two workers, all gone
    # down long enough that a node's first call after the restart is written (not throttled)
    time.sleep(max(0.0, WRITE_EVERY - (time.monotonic() - stopped_at)))
    start_master(cluster)
    started_at = time.time()
    reconnected: dict[str, float] = {}
    waiting = {node.computer_id for node in cluster.nodes}
    while waiting and time.time() - started_at < RECONNECT_BOUND:
        for computer, last in contacts(cluster).items():
            # `computer list` shows whole seconds; the master was down for longer than one
            if computer in waiting and last is not None and last >= int(started_at):
                reconnected[computer] = max(0.0, last - started_at)
                waiting.discard(computer)
        time.sleep(0.5)
    tails = "\n".join(f"--- {node.namespace.name}\n{node.log()[-1500:]}" for node in cluster.nodes)
    assert not waiting, f"no contact from {sorted(waiting)} {RECONNECT_BOUND:g} s after the restart:\n{tails}"
    print(f"contact after the restart (s): {reconnected}")  # shown with -s
    return Restart(started_at, reconnected)


def test_every_node_reconnects_within_seconds_of_a_master_restart(cluster: Cluster, restart: Restart) -> None:
    assert set(restart.reconnected) == {node.computer_id for node in cluster.nodes}
    assert max(restart.reconnected.values()) < RECONNECTED_WITHIN, restart.reconnected
    states = {entry["computer_guid"]: entry["contact_state"] for entry in cluster.client.list_compute_nodes()}
    assert all(states[node.computer_id] == "online" for node in cluster.nodes), states


def test_a_request_right_after_the_restart_deploys_on_each_node(cluster: Cluster, restart: Restart) -> None:
    """Each node's hello-K requested again with a new greeting (the nodes' partitions are taken by
    the other modules' instances): each node deploys the change and its service answers it."""
    for node in cluster.nodes:
        supply_and_request(cluster, f"hello-{node.namespace.index}", str(HELLO_WEB), node,
                           greeting=f"after restart {node.namespace.index}")
    for number, node in enumerate(cluster.nodes):
        doc = cluster.wait_for(f"hello-{node.namespace.index}", ready, what="deployed after the restart")
        assert doc["computer_guid"] == node.computer_id
        other = cluster.nodes[(number + 1) % len(cluster.nodes)]
        expected, answer = f"after restart {node.namespace.index}", ""
        deadline = time.monotonic() + 120
        while answer != expected:
            assert time.monotonic() < deadline, f"hello-{node.namespace.index} answers {answer!r} 120 s after the restart"
            time.sleep(0.5)
            with contextlib.suppress(AssertionError):  # the service restarting with its new greeting
                answer = http_get_in(cluster.network, other.namespace, doc["connection_parameters"]["url"]).strip()
