"""The node end to end: real proxy, real `slapos node …` commands, real buildout and supervisord.

Root mode with real partition users (the tests run as root); single-user mode is in
test_single_user.py, the daemon in test_daemon.py.
"""
from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

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


SRS = Path(__file__).parent / "srs"


def test_failing_promise_is_the_status_reason(env: NodeEnv):
    env.supply_and_request("checked", SRS / "failing-promise" / "software.cfg")
    env.supply_and_request("healthy", port=str(free_port()))
    env.software()
    result = env.instance(check=False)
    assert result.returncode == 1 and "1 partition(s) failed" in result.stderr
    assert env.info("healthy")["status_reason"] == "started"  # one failure does not block the others
    doc = env.info("checked")
    assert doc["reported_state"] == "error"
    assert doc["status_reason"] == "promise disk-check failing: the command exited with 1: disk is full"
    # the service itself runs: only the promise fails
    status = env.slapos("node", "status", check=False).stdout
    assert f"{doc['compute_partition_id']}:sleeper-on-watch" in status and "RUNNING" in status


def test_broken_software_release_is_the_status_reason(env: NodeEnv):
    env.supply_and_request("broken", SRS / "broken" / "software.cfg")
    result = env.software(check=False)
    assert result.returncode == 1 and "failed" in result.stderr
    doc = env.info("broken")
    reason = doc["status_reason"]
    assert reason.startswith("software failed: the software buildout failed")
    assert "no-such-instance.cfg.in" in reason
    # issue 11: one short line naming the build's log; the whole output is in the node's log
    build_log = next((env.root / "soft").glob("*/.build.log"))
    assert "\n" not in reason and len(reason) <= len("software failed: ") + 300, reason
    assert reason.endswith(f"(log: {build_log})"), reason
    assert "While:" in result.stderr and "While:" not in reason
    software = env.client.list_software_installations(COMPUTER)[0]
    assert software["reported_state"] == "error"
    # a failed build never looks complete, and the instance pass leaves the partition alone
    assert not list((env.root / "soft").glob("*/.completed"))
    assert env.instance().returncode == 0


def test_dying_service_is_the_status_reason(env: NodeEnv):
    with socket.socket() as busy:  # a valid port (the schema refuses others) that hello-web cannot bind
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        env.supply_and_request("dying", port=str(busy.getsockname()[1]))
        env.software()
        assert env.instance(check=False).returncode == 1
    reason = env.info("dying")["status_reason"]
    assert reason.startswith("service hello-web exited with status "), reason
    assert "\n" not in reason and len(reason) <= 300 and reason.endswith("_hello-web.log)"), reason


def test_child_request_converges_in_one_pass(env: NodeEnv):
    port = str(free_port())
    env.client.supply(COMPUTER, str(HELLO_WEB))
    env.supply_and_request("parent", SRS / "parent" / "software.cfg", **{
        "child-software": str(HELLO_WEB), "child-name": "child", "child-port": port})
    env.software()
    env.instance()  # one pass: parent requests, child deploys and publishes, parent publishes
    parent = env.info("parent")
    assert parent["status_reason"] == "started"
    child_url = parent["connection_parameters"]["child-url"]
    assert child_url.endswith(f":{port}/")
    assert answer(child_url) == "from the child\n"
    tree = {i["title"]: i for i in env.client.list_instance_trees()}
    assert "child" not in tree  # the child belongs to the parent's tree, not a tree of its own

    # destroying the root destroys the tree; one report pass frees both partitions
    env.client.request_instance("parent", str(SRS / "parent" / "software.cfg"), state="destroyed")
    env.instance()
    env.report()
    state = env.client.get_compute_node_state(COMPUTER)
    assert [p["instance"] for p in state["compute_partition_list"]] == [None] * 3
    with pytest.raises(requests.ConnectionError):
        answer(child_url)


def test_a_child_no_longer_requested_is_destroyed(env: NodeEnv):
    """The parent's pass ends by telling the master what it requested (the request transaction):
    the child it requested before and no longer does is destroyed, then freed by the report."""
    first_port, second_port = str(free_port()), str(free_port())
    parent_sr = str(SRS / "parent" / "software.cfg")
    env.client.supply(COMPUTER, str(HELLO_WEB))
    env.supply_and_request("parent", parent_sr, **{
        "child-software": str(HELLO_WEB), "child-name": "first", "child-port": first_port})
    env.software()
    env.instance()
    first_url = env.info("parent")["connection_parameters"]["child-url"]
    assert answer(first_url) == "from the child\n"

    env.client.request_instance("parent", parent_sr, parameters={
        "child-software": str(HELLO_WEB), "child-name": "second", "child-port": second_port})
    env.instance()
    second_url = env.info("parent")["connection_parameters"]["child-url"]
    assert second_url.endswith(f":{second_port}/") and answer(second_url) == "from the child\n"
    states = {p["instance"]["title"]: p["instance"]["state"]
              for p in env.client.get_compute_node_state(COMPUTER)["compute_partition_list"] if p["instance"]}
    assert states == {"parent": "started", "first": "destroyed", "second": "started"}
    env.report()
    with pytest.raises(requests.ConnectionError):
        answer(first_url)
    assert answer(second_url) == "from the child\n"


def test_removed_software_release_is_deleted(env: NodeEnv):
    env.client.supply(COMPUTER, str(HELLO_WEB))
    env.software()
    software = env.software_directory(HELLO_WEB)
    assert (software / ".completed").exists()
    env.client.supply(COMPUTER, str(HELLO_WEB), "destroyed")
    env.software()
    assert not software.exists()
    assert env.client.list_software_installations(COMPUTER) == []


def test_shared_instance_is_served_by_its_host(env: NodeEnv):
    host_sr = str(SRS / "host" / "software.cfg")
    env.supply_and_request("front", host_sr, **{"route-title": "route-a"})
    env.client.request_instance("route-a", host_sr, parameters={"path": "/a"}, shared=True)
    env.software()
    env.instance()
    route = env.info("route-a")
    assert route["connection_parameters"] == {"route": "/routes/route-a"}
    host = env.partition_path(env.info("front")["compute_partition_id"])
    listed = json.loads((host / "etc" / "shared.json").read_text())
    assert [entry["slave_title"] for entry in listed] == ["route-a"]
    assert listed[0]["path"] == "/a"
