"""The node end to end: real proxy, real `slapos node …` commands, real buildout and supervisord.

Root mode with real partition users (the tests run as root); single-user mode is in
test_single_user.py, the daemon in test_daemon.py.
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.support.node import COMPUTER, HELLO_WEB, NodeEnv, free_port

pytestmark = pytest.mark.root


@pytest.fixture
def env() -> Iterator[NodeEnv]:
    node = NodeEnv(partitions=3)
    try:
        node.format()
        yield node
    finally:
        node.close()


def answer(url: str) -> str:
    return requests.get(url, timeout=5).text


def partition_of(env: NodeEnv, title: str) -> str:
    return env.info(title)["compute_partition_id"]


def test_hello_web_lifecycle(env: NodeEnv):
    port = str(free_port())
    env.supply_and_request("hello", greeting="Bonjour", port=port)
    env.software()
    assert env.client.list_software_installations(COMPUTER)[0]["reported_state"] == "available"
    env.instance()
    doc = env.info("hello")
    assert doc["status_reason"] == "started" and doc["reported_state"] == "started"
    url = doc["connection_parameters"]["url"]
    assert url == f"http://127.0.{env.network}.1:{port}/"
    assert answer(url) == "Bonjour\n"

    # a new greeting is served after one pass
    env.client.request_instance("hello", str(HELLO_WEB), parameters={"greeting": "Salut", "port": port})
    env.instance()
    assert answer(url) == "Salut\n"

    # an unchanged partition is skipped (its .timestamp matches) and keeps running
    partition = env.partition_path(partition_of(env, "hello"))
    stamp = (partition / ".timestamp").read_text()
    env.instance()
    assert (partition / ".timestamp").read_text() == stamp and answer(url) == "Salut\n"

    # stop, then start again
    env.client.request_instance("hello", str(HELLO_WEB), parameters={"greeting": "Salut", "port": port},
                                state="stopped")
    env.instance()
    assert env.info("hello")["reported_state"] == "stopped"
    with pytest.raises(requests.ConnectionError):
        answer(url)
    env.client.request_instance("hello", str(HELLO_WEB), parameters={"greeting": "Salut", "port": port},
                                state="started")
    env.instance()
    assert answer(url) == "Salut\n"

    # destroy: the partition is freed, clean, and nothing of its user runs any more
    partition_id = partition_of(env, "hello")
    user = partition.owner()
    env.client.request_instance("hello", str(HELLO_WEB), state="destroyed")
    env.report()
    state = env.client.get_compute_node_state(COMPUTER)
    freed = next(p for p in state["compute_partition_list"] if p["compute_partition_id"] == partition_id)
    assert freed["instance"] is None and freed["state"] == "free"
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert partition.owner() == user and partition.stat().st_mode & 0o777 == 0o750
    assert subprocess.run(["pgrep", "-u", user], capture_output=True).returncode == 1
    with pytest.raises(requests.ConnectionError):
        answer(url)
