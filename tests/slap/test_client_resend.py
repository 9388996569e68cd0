"""`MasterClient` and a master that closes idle kept-alive connections (issue 13): a call made on a
reused connection the master closed before answering is sent once more on a new connection; a
call the master began to answer, or one on a new connection, is never sent twice."""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from partita.slap.client import MasterClient
from partita.slap.errors import MasterUnreachable


class ClosingServer:
    """HTTP/1.1 on loopback, keep-alive. On a connection's second request it follows `mode`:
    ``drop`` closes without a byte (as a master closing an idle connection at that moment),
    ``partial`` sends a status line and closes; ``drop-new`` drops every first request of a
    connection. It records each request received as (connection number, body)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received: list[tuple[int, str]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        stream = conn.makefile("rb")
        with conn, stream:
            for index in range(10):
                head = []
                while (line := stream.readline()) not in (b"\r\n", b""):
                    head.append(line.decode().strip())
                if not head:
                    return
                length = next(int(h.split(":")[1]) for h in head if h.lower().startswith("content-length"))
                body = stream.read(length).decode()
                self.received.append((number, body))
                if self.mode == "drop-new" and index == 0:
                    return
                if index == 1 and self.mode in ("drop", "partial"):
                    if self.mode == "partial":
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
                    return
                answer = json.dumps({"ok": True}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def closing(request: pytest.FixtureRequest) -> Iterator[ClosingServer]:
    server = ClosingServer(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("closing", ["drop"], indirect=True)
def test_a_call_on_a_reused_connection_closed_before_answering_is_sent_once_more(closing: ClosingServer) -> None:
    client = MasterClient(closing.url, timeout=5)
    assert client.call("slapos.post.v0.one", {"n": 1}) == {"ok": True}
    assert client.call("slapos.post.v0.two", {"n": 2}) == {"ok": True}  # the kept-alive connection dropped it
    assert closing.received == [(1, '{"n": 1}'), (1, '{"n": 2}'), (2, '{"n": 2}')]


@pytest.mark.parametrize("closing", ["partial"], indirect=True)
def test_a_post_the_master_began_to_answer_is_not_sent_twice(closing: ClosingServer) -> None:
    client = MasterClient(closing.url, timeout=5)
    client.call("slapos.post.v0.one", {"n": 1})
    with pytest.raises(MasterUnreachable):
        client.call("slapos.post.v0.two", {"n": 2})
    assert closing.received == [(1, '{"n": 1}'), (1, '{"n": 2}')]


@pytest.mark.parametrize("closing", ["drop-new"], indirect=True)
def test_a_call_on_a_new_connection_is_not_sent_twice(closing: ClosingServer) -> None:
    client = MasterClient(closing.url, timeout=5)
    with pytest.raises(MasterUnreachable, match="Remote end closed connection"):
        client.call("slapos.post.v0.one", {"n": 1})
    assert closing.received == [(1, '{"n": 1}')]
