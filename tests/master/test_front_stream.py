"""`master.front` sends a file answer block by block (the package index's wheels, issue 13)."""
from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from partita.master.db.notify import ChangeBus
from partita.master.front import FileStream, Front
from tests.master.test_front import run
from tests.support.server import ServerProcess, start

MIB = 1024 * 1024


def file_app(path: Path):  # type: ignore[no-untyped-def]
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", str(path.stat().st_size))])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 64 * 1024)
    return app


def test_a_file_answer_is_sent_in_blocks_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "big.whl"
    data = os.urandom(3 * MIB + 5)
    path.write_bytes(data)
    opened: list[FileStream] = []
    app = file_app(path)

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        stream = app(environ, start_response)
        opened.append(stream)
        return stream

    front = Front(spy, ChangeBus(), threads=2, max_body=None, max_wait_seconds=60)
    sent = run(front, {"type": "http", "method": "GET", "path": "/f", "headers": []}, b"")
    blocks = [message["body"] for message in sent[1:]]
    assert b"".join(blocks) == data
    assert max(len(block) for block in blocks) == 64 * 1024 and len(blocks) > 40
    assert sent[-1]["more_body"] is False and all(message["more_body"] for message in sent[1:-1])
    assert opened[0].file.closed


def test_a_client_that_leaves_ends_the_download_and_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.whl"
    path.write_bytes(b"x" * (8 * MIB))
    opened: list[FileStream] = []
    app = file_app(path)

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        opened.append(app(environ, start_response))
        return opened[-1]

    front = Front(spy, ChangeBus(), threads=2, max_body=None, max_wait_seconds=60)
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        leave = asyncio.Event()
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if len(sent) == 4:
                leave.set()
            await asyncio.sleep(0)

        await asyncio.wait_for(front({"type": "http", "method": "GET", "path": "/f", "headers": []},
                                     receive, send), 5)

    asyncio.run(main())
    assert 4 <= len(sent) < 10  # stopped soon after the client left, not at the end of the file
    assert opened[0].file.closed


# -- a real master process -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, bytes]]:
    directory = tmp_path_factory.mktemp("front-stream")
    (directory / "packages").mkdir()
    data = os.urandom(24 * MIB)
    (directory / "packages" / "big-1.0-py3-none-any.whl").write_bytes(data)
    server = start(directory, ("master", "start"), database=str(directory / "catalog.db"))
    try:
        yield server, data
    finally:
        server.stop()


def _worker_rss(server: ServerProcess) -> int:
    """The resident memory (KiB) of the master's worker processes."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(server.process.pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total


def _open_download(server: ServerProcess, read: int) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(f"GET /packages/files/big-1.0-py3-none-any.whl HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    received = 0
    while received < read:
        received += len(sock.recv(65536))
    return sock


def test_a_large_file_streams_whole_with_its_length(master: tuple[ServerProcess, bytes]) -> None:
    server, data = master
    answer = requests.get(f"{server.url}/packages/files/big-1.0-py3-none-any.whl", timeout=60)
    assert answer.status_code == 200
    assert answer.headers["Content-Length"] == str(len(data))
    assert answer.content == data
    page = requests.get(f"{server.url}/packages/simple/big/", timeout=10).text
    assert "big-1.0-py3-none-any.whl#sha256=" in page


def test_clients_that_stop_reading_or_leave_hold_neither_memory_nor_the_workers(
        master: tuple[ServerProcess, bytes]) -> None:
    server, data = master
    before = _worker_rss(server)
    stalled = [_open_download(server, 256 * 1024) for _ in range(4)]  # connected, reading no more
    time.sleep(1.0)
    grown = _worker_rss(server) - before
    assert grown < 24 * 1024, f"the worker grew by {grown} KiB for 4 stalled downloads of 24 MiB"
    for _ in range(40):  # more than the worker's 16 threads: each leaves mid-download
        _open_download(server, 512 * 1024).close()
    started = time.monotonic()
    answer = requests.get(f"{server.url}/packages/files/big-1.0-py3-none-any.whl", timeout=30)
    assert answer.content == data and time.monotonic() - started < 20
    for sock in stalled:
        sock.close()
