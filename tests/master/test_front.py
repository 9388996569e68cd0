"""`master.front.Front` in process: long polls on the bus, a node that leaves, the certificate."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from flask import Flask, request

from partita.master.api.authentication import PEER_CERTIFICATE
from partita.master.db.notify import ChangeBus
from partita.master.front import WAIT_PATH, Front

GENERATION = {"COMP-1": 1}
SEEN: list[dict[str, Any]] = []


def fake_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The app's answers without a database: the wait answers now (``timeout: 0``)."""
    SEEN.append(environ)
    body = json.loads(environ["wsgi.input"].read() or b"{}")
    if environ["PATH_INFO"] == WAIT_PATH:
        assert body["timeout"] == 0
        generation = GENERATION[body["computer_guid"]]
        answer = {"computer_guid": body["computer_guid"], "generation": generation,
                  "changed": generation != body["generation"]}
    else:
        answer = {"peer": environ.get(PEER_CERTIFICATE, b"").hex()}
    data = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def scope(path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"application/json")], "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 5000), "scheme": "http", "http_version": "1.1", **extra}


def run(front: Front, the_scope: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.Event().wait()  # the client stays
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await front(the_scope, receive, send)

    asyncio.run(main())
    return sent


def wait_body(known: int, timeout: float = 10) -> bytes:
    return json.dumps({"computer_guid": "COMP-1", "generation": known, "timeout": timeout}).encode()


def test_a_long_poll_wakes_on_a_change_published_by_another_thread() -> None:
    bus = ChangeBus()
    front = Front(fake_app, bus, threads=2, max_body=None, max_wait_seconds=60)
    GENERATION["COMP-1"] = 1

    def change() -> None:
        GENERATION["COMP-1"] = 2
        bus.publish(["COMP-1"])

    timer = threading.Timer(0.3, change)
    timer.start()
    sent = run(front, scope(WAIT_PATH), wait_body(1))
    timer.join()
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"computer_guid": "COMP-1", "generation": 2, "changed": True}
    assert not bus._watchers


def test_a_long_poll_answers_unchanged_at_its_timeout() -> None:
    front = Front(fake_app, ChangeBus(), threads=2, max_body=None, max_wait_seconds=0.2)
    GENERATION["COMP-1"] = 1
    sent = run(front, scope(WAIT_PATH), wait_body(1, timeout=30))
    assert json.loads(sent[1]["body"])["changed"] is False


def test_a_node_that_leaves_ends_its_wait() -> None:
    bus = ChangeBus()
    front = Front(fake_app, bus, threads=2, max_body=None, max_wait_seconds=60)
    GENERATION["COMP-1"] = 1

    sent: list[dict[str, Any]] = []

    async def drive() -> None:
        leave = asyncio.Event()
        messages = [{"type": "http.request", "body": wait_body(1), "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.get_running_loop().call_later(0.2, leave.set)
        await asyncio.wait_for(front(scope(WAIT_PATH), receive, send), 5)

    asyncio.run(drive())
    assert sent == []  # nothing answered to a node that is gone
    assert not bus._watchers  # and nothing left watching


def test_the_peer_certificate_comes_from_the_connection_never_from_a_header() -> None:
    front = Front(fake_app, ChangeBus(), threads=1, max_body=None, max_wait_seconds=60)
    forged = scope("/slapos.get.v0.whoami")
    forged["headers"] = [*forged["headers"], (b"partita.peer-certificate", b"abcd")]
    sent = run(front, forged, b"{}")
    assert json.loads(sent[1]["body"]) == {"peer": ""}
    sent = run(front, scope("/slapos.get.v0.whoami", **{"partita.peer_certificate_der": b"\x30\x01"}), b"{}")
    assert json.loads(sent[1]["body"]) == {"peer": "3001"}


def length_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers what the app was told of the body: its declared length and what it could read."""
    data = json.dumps({"length": environ.get("CONTENT_LENGTH"), "read": len(environ["wsgi.input"].read())}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


def test_a_body_over_the_limit_reaches_the_app_as_over_the_limit_and_closes_the_connection() -> None:
    """Regression (issue 10): it reached the app as an empty body, answered 400 instead of 413."""
    front = Front(length_app, ChangeBus(), threads=1, max_body=100, max_wait_seconds=60)
    declared = scope("/slapos.post.v0.software_instance")
    declared["headers"] = [*declared["headers"], (b"content-length", b"5000")]
    sent = run(front, declared, b"x" * 100)
    assert json.loads(sent[1]["body"]) == {"length": "101", "read": 0}
    assert (b"connection", b"close") in sent[0]["headers"]
    unannounced = run(front, scope("/slapos.post.v0.software_instance"), b"x" * 101)
    assert json.loads(unannounced[1]["body"]) == {"length": "101", "read": 0}
    within = run(front, scope("/slapos.post.v0.software_instance"), b"x" * 100)
    assert json.loads(within[1]["body"]) == {"length": "100", "read": 100}
    assert (b"connection", b"close") not in within[0]["headers"]
    assert (b"server", b"Partita") in within[0]["headers"]


def test_a_chunked_body_reaches_the_app_whole_with_its_length() -> None:
    """Regression (issue 10): Werkzeug reads nothing of a chunked body it is not told is whole,
    so a request sent chunked reached the JSON API empty."""
    app = Flask(__name__)

    @app.post("/echo")
    def echo() -> dict[str, Any]:
        return {"length": request.content_length, "data": request.get_data(as_text=True)}

    front = Front(app.wsgi_app, ChangeBus(), threads=1, max_body=100, max_wait_seconds=60)
    chunked = scope("/echo")
    chunked["headers"] = [*chunked["headers"], (b"transfer-encoding", b"chunked")]
    sent = run(front, chunked, b'{"title": "x"}')
    assert json.loads(sent[1]["body"]) == {"length": 14, "data": '{"title": "x"}'}
