"""`slapos node run`: it converges by itself, reacts to changes, survives the master going away,
and restarts a service that died."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support import server
from tests.support.node import HELLO_WEB, NodeEnv, free_port

pytestmark = pytest.mark.root


@pytest.fixture
def env() -> Iterator[NodeEnv]:
    node = NodeEnv(partitions=2)
    try:
        node.format()
        node.start_daemon()
        yield node
    finally:
        node.close()


def serves(url: str, text: str) -> bool:
    try:
        return requests.get(url, timeout=2).text == text
    except requests.RequestException:
        return False


def wait_until(condition, timeout: float, what: str, env: NodeEnv) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout:g}s\n{env.daemon_log()[-4000:]}")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, whose parent did not reap it yet, has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def url_of(env: NodeEnv, title: str) -> str:
    doc = env.wait_for(title, lambda d: d["status_reason"] == "started", timeout=120, what="started")
    return doc["connection_parameters"]["url"]


def test_daemon_deploys_a_new_request_and_reacts_to_changes(env: NodeEnv):
    port = str(free_port())
    env.supply_and_request("hello", greeting="Bonjour", port=port)
    url = url_of(env, "hello")
    assert serves(url, "Bonjour\n")
    env.client.request_instance("hello", str(HELLO_WEB), parameters={"greeting": "Hej", "port": port})
    wait_until(lambda: serves(url, "Hej\n"), 30, "the new greeting served", env)
    env.client.request_instance("hello", str(HELLO_WEB), state="destroyed")
    wait_until(lambda: env.client.get_compute_node_state("local_computer")["compute_partition_list"][0]["instance"]
               is None, 30, "the partition freed", env)
    assert env.daemon.poll() is None


def test_master_down_keeps_services_and_converges_when_back(env: NodeEnv):
    port = str(free_port())
    env.supply_and_request("hello", greeting="one", port=port)
    url = url_of(env, "hello")
    env.proxy.stop()
    wait_until(lambda: "master unavailable" in env.daemon_log(), 60, "the daemon noticing", env)
    assert serves(url, "one\n") and env.daemon.poll() is None  # backing off, the service kept running
    env.proxy = server.restart(env.proxy)
    env.client.request_instance("hello", str(HELLO_WEB), parameters={"greeting": "two", "port": port})
    wait_until(lambda: serves(url, "two\n"), 60, "convergence after the master came back", env)


def test_a_killed_service_is_restarted(env: NodeEnv):
    port = str(free_port())
    env.supply_and_request("hello", port=port)
    url = url_of(env, "hello")
    partition = env.info("hello")["compute_partition_id"]
    status = env.slapos("node", "status", f"{partition}:hello-web-on-watch").stdout
    pid = int(status.split("pid ")[1].split(",")[0])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: serves(url, "Hello\n"), 60, "the service back", env)
    status = env.slapos("node", "status", f"{partition}:hello-web-on-watch").stdout
    assert "RUNNING" in status and f"pid {pid}," not in status


def test_a_service_killed_during_a_master_outage_comes_back(env: NodeEnv):
    """Issue 10: a watched service's restart goes through the master (the watchdog's bang); with
    the master down the daemon starts it again itself, and the bang that failed stops nothing."""
    port = str(free_port())
    env.supply_and_request("hello", port=port)
    url = url_of(env, "hello")
    partition = env.info("hello")["compute_partition_id"]
    status = env.slapos("node", "status", f"{partition}:hello-web-on-watch").stdout
    pid = int(status.split("pid ")[1].split(",")[0])
    env.proxy.stop()
    wait_until(lambda: "master unavailable" in env.daemon_log(), 60, "the daemon noticing", env)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: serves(url, "Hello\n"), 60, "the service back while the master is down", env)
    assert "restarted hello-web locally" in env.daemon_log()
    status = env.slapos("node", "status", f"{partition}:hello-web-on-watch").stdout
    assert "RUNNING" in status and f"pid {pid}," not in status
    env.proxy = server.restart(env.proxy)


def test_requests_arriving_during_work_are_not_missed():
    """Regression (issue 3): a request made while the daemon worked through its bounded rounds was
    left for the next 30 s long poll. Each one must answer well before that."""
    env = NodeEnv(partitions=6)
    try:
        env.format()
        env.client.supply("local_computer", str(HELLO_WEB))
        env.software()
        env.start_daemon()
        for i in range(6):
            port = str(free_port())
            doc = env.client.request_instance(f"h{i}", str(HELLO_WEB), parameters={"port": port})
            url = f"http://127.0.{env.network}.{int(doc['compute_partition_id'][len('slappart'):]) + 1}:{port}/"
            # well before the next long poll (30 s) would have brought it
            wait_until(lambda: serves(url, "Hello\n"), 20, f"h{i} answering", env)
    finally:
        env.close()


def test_a_node_killed_hard_serves_again_after_its_restart(env: NodeEnv):
    """Issue 13: SIGKILL of the daemon and of supervisord leaves the service an orphan (its output
    pipe gone) that the next supervisord lists 'Not started'; the restarted daemon kills the orphan
    and starts the program: the service answers again, with exactly one listener."""
    from partita.node.listeners import read_listeners

    port = free_port()
    env.supply_and_request("hello", port=str(port))
    url = url_of(env, "hello")
    partition = env.info("hello")["compute_partition_id"]
    status = env.slapos("node", "status", f"{partition}:hello-web-on-watch").stdout
    orphan = int(status.split("pid ")[1].split(",")[0])
    supervisord = int((env.root / "srv/var/run/supervisord.pid").read_text())
    env.stop_daemon(signal.SIGKILL)
    os.kill(supervisord, signal.SIGKILL)
    wait_until(lambda: not alive(supervisord), 10, "supervisord gone", env)
    assert alive(orphan)  # the service lives on, its supervisor gone
    env.start_daemon()
    wait_until(lambda: serves(url, "Hello\n"), 60, "the service back after the restart", env)
    status = env.slapos("node", "status", f"{partition}:hello-web-on-watch").stdout
    assert "RUNNING" in status and f"pid {orphan}," not in status
    assert not alive(orphan)
    host = url.split("//")[1].split(":")[0]
    assert [l for l in read_listeners() if l.address == host and l.port == port and l.protocol == "tcp"] != []
    assert len([l for l in read_listeners() if l.address == host and l.port == port]) == 1
    assert "left running by a supervisord that died" in env.daemon_log()
