"""What a new user did in their first hour (issue 11), with a real proxy, the real `slapos`
command and a real node (root mode): typed parameters from a file reach hello-web, stop and start
keep them, and ``request --wait`` stops at a broken release instead of waiting out its timeout."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.node import COMPUTER, HELLO_WEB, NodeEnv, free_port

pytestmark = pytest.mark.root


@pytest.fixture
def env() -> Iterator[NodeEnv]:
    node = NodeEnv(partitions=2)
    try:
        node.format()
        yield node
    finally:
        node.close()


def answer(url: str) -> str:
    return requests.get(url, timeout=5).text


def test_a_typed_port_is_served_and_stop_start_keep_it(env: NodeEnv) -> None:
    port = free_port()
    parameters = env.root / "params.json"
    parameters.write_text(json.dumps({"greeting": "Typed", "port": port}))
    env.slapos("supply", str(HELLO_WEB), COMPUTER)
    env.slapos("request", "hello", str(HELLO_WEB), "--parameters-file", str(parameters))
    assert env.info("hello")["parameters"] == {"greeting": "Typed", "port": str(port)}
    env.software()
    env.instance()
    url = f"http://127.0.{env.network}.1:{port}/"
    assert env.info("hello")["connection_parameters"]["url"] == url
    assert answer(url) == "Typed\n"

    stopped = env.slapos("stop", "hello")
    assert "warning" not in stopped.stderr
    env.instance()
    assert env.info("hello")["reported_state"] == "stopped"
    with pytest.raises(requests.ConnectionError):
        answer(url)
    env.slapos("start", "hello")
    env.instance()
    assert answer(url) == "Typed\n"  # the same port: the parameters were kept


def test_request_wait_stops_at_a_broken_release(env: NodeEnv) -> None:
    broken = env.root / "broken-release" / "software.cfg"  # no such file: the build fails
    env.slapos("supply", str(broken), COMPUTER)
    env.start_daemon()
    started = time.monotonic()
    result = env.slapos("request", "broken", str(broken), "--wait", "--timeout", "300", check=False,
                        timeout=320)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 120
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("slapos: error: instance 'broken' failed: software failed: "), result.stderr
    reason = error.split("failed: ", 1)[1]
    assert result.stderr.count(reason) == 1
