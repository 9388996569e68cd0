"""The master under hostile load (issue 10): idle long polls and slow clients starve nobody.

A real `slapos proxy start` on loopback (SQLite, one worker of 16 app threads) and raw sockets:
more waiting nodes and half-sent requests than the server has threads, while an ordinary request
must still be answered; a request delivered too slowly is cut by the server; waiting nodes still
wake on a change.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from partita.master.front import REQUEST_DEADLINE
from partita.slap.client import MasterClient
from tests.support.server import ServerProcess, start

COMPUTER = "local_computer"
WAIT = "slapos.wait.v0.compute_node_change"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start(tmp_path, ("proxy", "start"))
    try:
        format_computer(server.url, 2)
        yield server
    finally:
        server.stop()


def format_computer(url: str, count: int) -> None:
    partitions = [{"partition_id": f"slappart{i}", "ip_list": [{"ip-address": f"10.0.0.{i + 1}"}]}
                  for i in range(count)]
    with MasterClient(url) as client:
        client.format_compute_node(COMPUTER, partitions)


def generation(url: str) -> int:
    answer = requests.post(f"{url}/{WAIT}", json={"computer_guid": COMPUTER, "generation": 0, "timeout": 0},
                           timeout=10)
    answer.raise_for_status()
    return int(answer.json()["generation"])


def connect(url: str) -> socket.socket:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def wait_request(url: str, known: int, timeout: float = 30) -> bytes:
    body = json.dumps({"computer_guid": COMPUTER, "generation": known, "timeout": timeout}).encode()
    host = url.split("//", 1)[1]
    return (f"POST /{WAIT} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def half_sent_request(url: str) -> bytes:
    host = url.split("//", 1)[1]
    return (f"POST /slapos.get.v0.compute_node_state HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{").encode()


def closed_by_server(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed `sock` (reading whatever it sent first), None if it did not."""
    start = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - start < within:
        try:
            if not sock.recv(4096):
                return time.monotonic() - start
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_idle_long_polls_and_half_sent_requests_do_not_starve_an_ordinary_request(proxy: ServerProcess) -> None:
    """Issue 10: 32 idle long polls or 40 half-sent requests used to take every thread."""
    known = generation(proxy.url)
    sockets = []
    try:
        for _ in range(100):
            sock = connect(proxy.url)
            sock.sendall(wait_request(proxy.url, known))
            sockets.append(sock)
        for _ in range(40):
            sock = connect(proxy.url)
            sock.sendall(half_sent_request(proxy.url))
            sockets.append(sock)
        time.sleep(0.5)
        for _ in range(5):
            start = time.monotonic()
            answer = requests.post(f"{proxy.url}/slapos.get.v0.compute_node_state",
                                   json={"computer_guid": COMPUTER}, timeout=10)
            assert answer.status_code == 200
            xml = requests.get(f"{proxy.url}/getFullComputerInformation", params={"computer_id": COMPUTER},
                               timeout=10)
            assert xml.status_code == 200
            assert time.monotonic() - start < 2.0
    finally:
        for sock in sockets:
            sock.close()


def test_a_half_sent_or_trickled_request_is_cut_after_the_deadline(proxy: ServerProcess) -> None:
    half = connect(proxy.url)
    half.sendall(half_sent_request(proxy.url))
    trickler = connect(proxy.url)
    request = half_sent_request(proxy.url) + b" " * 998
    stop = threading.Event()

    def trickle() -> None:
        for index in range(len(request)):
            if stop.wait(0.3):
                return
            try:
                trickler.send(request[index:index + 1])
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        cut_half = closed_by_server(half, REQUEST_DEADLINE + 5)
        cut_trickler = closed_by_server(trickler, 5)
        assert cut_half is not None and cut_half >= REQUEST_DEADLINE - 1
        assert cut_trickler is not None
    finally:
        stop.set()
        thread.join(5)
        half.close()
        trickler.close()
    # and the server still answers
    assert requests.get(f"{proxy.url}/getFullComputerInformation", params={"computer_id": COMPUTER},
                        timeout=10).status_code == 200


def test_many_waiting_nodes_all_wake_on_a_change(proxy: ServerProcess) -> None:
    known = generation(proxy.url)
    sockets = []
    try:
        for _ in range(60):
            sock = connect(proxy.url)
            sock.sendall(wait_request(proxy.url, known))
            sockets.append(sock)
        time.sleep(0.5)
        for sock in sockets:  # nobody was answered yet: nothing changed
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
            sock.setblocking(True)
        changed_at = time.monotonic()
        format_computer(proxy.url, 3)
        for sock in sockets:
            sock.settimeout(5)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(4096)
                assert chunk, "the server closed a waiting node's connection"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
            document = json.loads(answer.split(b"\r\n\r\n", 1)[1])
            assert document["changed"] is True and document["generation"] != known
        assert time.monotonic() - changed_at < 3.0
    finally:
        for sock in sockets:
            sock.close()


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The head and body of one answer on `sock` (the body by its Content-Length)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without answering: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return head, body


@pytest.mark.parametrize("path,content_type", [
    ("/slapos.post.v0.software_instance", "application/json"),
    ("/requestComputerPartition", "application/x-www-form-urlencoded"),
])
def test_a_body_declared_over_the_limit_is_413_without_being_read(
        proxy: ServerProcess, path: str, content_type: str) -> None:
    """Regression (issue 10): the front passed such a request to the app as an empty body (400)."""
    sock = connect(proxy.url)
    try:
        host = proxy.url.split("//", 1)[1]
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {12 * 1024 * 1024}\r\n\r\n").encode() + b"a" * 65536)
        head, body = read_answer(sock)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"connection: close" in head.lower()
        if content_type == "application/json":
            assert json.loads(body)["code"] == "TOO_LARGE"
    finally:
        sock.close()
    assert requests.post(f"{proxy.url}/slapos.get.v0.compute_node_state", json={"computer_guid": COMPUTER},
                         timeout=10).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(proxy: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b"x" * 65536  # 12.5 MiB in all, no length announced

    answer = requests.post(f"{proxy.url}/slapos.post.v0.software_instance", data=chunks(),
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 413 and answer.json()["code"] == "TOO_LARGE", answer.text
