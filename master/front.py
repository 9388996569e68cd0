"""The event-driven front of the master: connections, slow clients and long polls cost no thread.

Gunicorn's asyncio worker (``asgi``) owns the sockets, TLS and HTTP parsing in one event loop per
worker process. `Front` is the ASGI application it calls; the Flask app stays a WSGI app:

- **every request is read by the loop**, headers and body, before a thread sees it. A connection
  has `REQUEST_DEADLINE` seconds from its opening (or from the end of its previous answer) to
  deliver a whole request; past it the server closes the connection (`_Protocol`). A client that
  trickles bytes holds a few kilobytes of buffer, never a thread;
- **the app runs in a bounded pool** of ``threads`` threads, one complete request at a time, and
  its answer (bodies are small: at most the computer's SLAP XML document) is sent by the loop;
- **a file answer streams** (a package of the index, `master.api.packages`: wheels of 100 MiB
  and more, several nodes at once): the app wraps the file with ``wsgi.file_wrapper``, which is
  `FileStream`; the loop reads it `FileStream.block_size` bytes at a time in the pool (no thread
  is held between two reads) and sends each with ``more_body``, awaiting the connection's write
  buffer (gunicorn's flow control), so a download holds one block in memory. A client that
  leaves ends its download at the next block (or, if its buffer is full, when gunicorn cancels
  the answer), and the file is closed;
- **the long poll** (``slapos.wait.v0.compute_node_change``) is not a sleeping thread: the front
  asks the app for the answer *now* (the same body with ``timeout: 0``: authentication, access and
  validation are the app's), and while the generation is the node's it awaits the change bus
  (`ChangeBus.watch`) in the loop, then asks again. The ordering of `json_rpc_node` holds: the bus
  counter is taken before the app reads the generation, so a change committed after that read
  wakes the wait at once. A thousand waiting nodes are a thousand futures; a node that closes its
  connection ends its wait. The asks after the first carry ``REASK`` in their environ: only the
  node's arrival is its contact (`json_rpc_node`), not the end of a wait it may no longer hear;
- the verified client certificate of a TLS connection reaches the app as
  ``partita.peer_certificate`` (DER), read from the connection by `_Protocol`, never from a header.

A TLS handshake has the same `REQUEST_DEADLINE` (asyncio's default is a minute): a client that
opens a connection and sends nothing, or half a handshake, is cut like a half-sent request.

Answers name the server ``Partita`` (gunicorn would announce itself and its worker class).

A worker holds at most ``worker_connections`` connections (`server.WORKER_CONNECTIONS`; more
are refused at once) and raises its descriptor limit to fit them. A TLS handshake that fails (a
client certificate the CA did not sign) sends its alert before the connection closes, as the
threaded worker did (asyncio alone drops it: `_send_handshake_alert_first`).

Behaviour on stop: SIGTERM closes the bus, so every wait answers at once and the nodes ask again;
connections waiting for a request (kept alive, or half-sent) are closed at once, and those being
answered finish: a stop takes about a second, not the request deadline.
"""
from __future__ import annotations

import asyncio
import io
import json
import resource
import sys
import threading
from asyncio import sslproto
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from partita.master.api.authentication import PEER_CERTIFICATE
from partita.master.api.json_rpc_node import REASK
from partita.master.db.notify import ChangeBus

REQUEST_DEADLINE = 10.0   # seconds to deliver a whole request (headers and body)
WAIT_PATH = "/slapos.wait.v0.compute_node_change"
DEFAULT_WAIT_SECONDS = 30.0
_PEER_KEY = "partita.peer_certificate_der"
_READ_DONE_KEY = "partita.request_read"
SERVER_NAME = b"Partita"  # the Server header of every answer


class _TooLarge:
    """What `Front._read_body` gives for a body over the app's limit."""


_TOO_LARGE = _TooLarge()

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FileStream:
    """``wsgi.file_wrapper``: a file the front sends block by block (see the module docstring).
    Iterating it (a WSGI server that is not the front) reads it block by block too."""

    def __init__(self, file: Any, block_size: int = 256 * 1024) -> None:
        self.file, self.block_size = file, max(int(block_size), 4096)
        self._lock = threading.Lock()  # a read in the pool and a close from the loop

    def read_block(self) -> bytes:
        with self._lock:
            return b"" if self.file.closed else self.file.read(self.block_size)

    def close(self) -> None:
        with self._lock:
            self.file.close()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.read_block, b"")


class _Answer:
    __slots__ = ("status", "headers", "body", "stream")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes,
                 stream: FileStream | None = None) -> None:
        self.status, self.headers, self.body, self.stream = status, headers, body, stream


def _call_wsgi(app: WsgiApp, environ: dict[str, Any]) -> _Answer:
    """Run the WSGI app on one request (in a pool thread) and collect its whole answer, or, for
    a file answer, its `FileStream`, sent later block by block."""
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started["status"], started["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    if isinstance(result, FileStream) and not chunks:
        return _Answer(int(started["status"].split(" ", 1)[0]), list(started["headers"]), b"", result)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return _Answer(int(started["status"].split(" ", 1)[0]), list(started["headers"]), b"".join(chunks))


def _environ(scope: dict[str, Any], body: bytes, multiprocess: bool) -> dict[str, Any]:
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": str(client[0]), "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": multiprocess, "wsgi.run_once": False,
        "wsgi.file_wrapper": FileStream,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").upper().replace("-", "_"), raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value
            continue
        if name == "TRANSFER_ENCODING":
            continue  # the body was read whole and de-chunked: the app gets it with its length
        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if "CONTENT_LENGTH" in environ or body:
        environ["CONTENT_LENGTH"] = str(len(body))
    der = scope.get(_PEER_KEY)
    if der:
        environ[PEER_CERTIFICATE] = der
    return environ


class Front:
    """The ASGI application: read in the loop, answer from the pool, wait on the bus."""

    def __init__(self, app: WsgiApp, bus: ChangeBus, *, threads: int, max_body: int | None,
                 max_wait_seconds: float, multiprocess: bool = False) -> None:
        self.app, self.bus = app, bus
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="partita-app")
        self.max_body = max_body
        self.max_wait_seconds = max_wait_seconds
        self.multiprocess = multiprocess

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = await self._read_body(scope, receive)
        if body is None:
            return  # the client went away
        read_done = scope.get(_READ_DONE_KEY)
        if read_done is not None:
            read_done()
        if isinstance(body, _TooLarge):
            await self._answer(await self._run(self._too_large_environ(scope)), send, receive, close=True)
            return
        environ = _environ(scope, body, self.multiprocess)
        if scope["method"] == "POST" and scope["path"] == WAIT_PATH:
            answer = await self._long_poll(environ, body, receive)
            if answer is None:
                return  # the node left while it waited
        else:
            answer = await self._run(environ)
        await self._answer(answer, send, receive)

    async def _answer(self, answer: _Answer, send: Callable[..., Any], receive: Callable[..., Any], *,
                      close: bool = False) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        if not any(name == b"server" for name, _ in headers):
            headers.append((b"server", SERVER_NAME))
        if close:  # the rest of the body was not read: this connection carries no other request
            headers.append((b"connection", b"close"))
        if answer.stream is not None:
            await self._stream(answer.stream, answer.status, headers, send, receive)
            return
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _stream(self, stream: FileStream, status: int, headers: list[tuple[bytes, bytes]],
                      send: Callable[..., Any], receive: Callable[..., Any]) -> None:
        """Send a file answer block by block: each read in the pool, each send awaiting the
        connection's buffer; stop when the client leaves. The file is closed in every case."""
        loop = asyncio.get_running_loop()
        left = asyncio.ensure_future(receive())  # the body is read: this ends when the client leaves
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            while not left.done():
                block = await loop.run_in_executor(self.pool, stream.read_block)
                if not block or left.done():
                    break
                await send({"type": "http.response.body", "body": block, "more_body": True})
            if not left.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            left.cancel()
            stream.close()

    def _too_large_environ(self, scope: dict[str, Any]) -> dict[str, Any]:
        """The request as the app sees it when its body is over the limit: no body, and a length
        one over the limit, so that the app answers its own 413 (JSON or SLAP XML)."""
        environ = _environ(scope, b"", self.multiprocess)
        environ["CONTENT_LENGTH"] = str((self.max_body or 0) + 1)
        return environ

    async def _read_body(self, scope: dict[str, Any], receive: Callable[..., Any]) -> bytes | _TooLarge | None:
        """The whole body; None if the client left; `_TOO_LARGE` (not read further) when the
        declared length, or what arrived of an unannounced one, is over the app's limit."""
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and self.max_body is not None and declared.isdigit() and int(declared) > self.max_body:
            return _TOO_LARGE
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if self.max_body is not None and size > self.max_body:
                return _TOO_LARGE
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _run(self, environ: dict[str, Any]) -> _Answer:
        return await asyncio.get_running_loop().run_in_executor(self.pool, _call_wsgi, self.app, environ)

    async def _long_poll(self, environ: dict[str, Any], body: bytes,
                         receive: Callable[..., Any]) -> _Answer | None:
        """Ask the app for the answer now; while unchanged, await the bus and ask again. None if
        the client closed its connection meanwhile (its wait ends with it)."""
        try:
            request = json.loads(body)
            reference = request["computer_guid"]
            timeout = min(float(request.get("timeout", DEFAULT_WAIT_SECONDS)), self.max_wait_seconds)
            if not isinstance(reference, str) or timeout != timeout:
                raise ValueError(reference)
            now_body = json.dumps({**request, "timeout": 0}).encode()
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return await self._run(environ)  # the app refuses it as it should
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        left = asyncio.ensure_future(receive())  # the body is read: this ends when the client leaves
        asked: dict[str, Any] = {}  # the first ask is the node's arrival; the others are marked REASK
        try:
            while True:
                seen = self.bus.counter(reference)
                answer = await self._run({**environ, **asked, "wsgi.input": io.BytesIO(now_body),
                                          "CONTENT_LENGTH": str(len(now_body))})
                asked = {REASK: True}
                remaining = deadline - loop.time()
                if answer.status != 200 or remaining <= 0 or self.bus.closing or _changed(answer):
                    return answer
                if not await self._wait(reference, seen, remaining, left):
                    return None
        finally:
            left.cancel()

    async def _wait(self, reference: str, seen: int, timeout: float, left: asyncio.Future[Any]) -> bool:
        """Until the bus moves past `seen` or `timeout` passes: True; False if the client left."""
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        unwatch = self.bus.watch(reference, seen, lambda: loop.call_soon_threadsafe(wake))
        try:
            await asyncio.wait({woken, left}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            return not left.done()
        finally:
            unwatch()
            woken.cancel()


def _changed(answer: _Answer) -> bool:
    try:
        return bool(json.loads(answer.body).get("changed", True))
    except (ValueError, AttributeError):
        return True


class _Protocol(ASGIProtocol):  # type: ignore[misc]
    """Gunicorn's HTTP protocol with a deadline to deliver a whole request and the client
    certificate of the connection in the scope."""

    _request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.worker.nr_conns > self.worker.worker_connections:
            transport.abort()  # over the worker's connections: refuse, keep serving the others
            return
        self.worker.connections.add(self)
        self._arm_request_deadline()

    def _arm_request_deadline(self) -> None:
        self._cancel_request_deadline()
        self._request_deadline = self.worker.loop.call_later(REQUEST_DEADLINE, self._request_too_slow)

    def _cancel_request_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None

    def _request_too_slow(self) -> None:
        self._request_deadline = None
        self._close_transport()
        self._request_ready.set()

    def _arm_keepalive_timer(self) -> None:  # after each answer: the next request's deadline starts
        super()._arm_keepalive_timer()
        self._arm_request_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_deadline()
        self.worker.connections.discard(self)
        super().connection_lost(exc)

    def close_if_idle(self) -> None:
        """On stop: a connection between requests (or in the middle of sending one) is closed now;
        one whose request is being answered finishes it."""
        if self._awaiting_request:
            self._request_too_slow()

    def _build_http_scope(self, request: Any, sockname: Any, peername: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._build_http_scope(request, sockname, peername)
        scope[_READ_DONE_KEY] = self._cancel_request_deadline
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport is not None else None
        if ssl_object is not None:
            scope[_PEER_KEY] = ssl_object.getpeercert(binary_form=True)
        return scope


ALERT_LINGER = 0.5  # seconds a refused TLS connection stays open after its alert


def _send_handshake_alert_first(original: Callable[..., Any]) -> Callable[..., Any]:
    """asyncio drops the TLS alert of a failed handshake (the connection is aborted before the
    alert OpenSSL wrote is sent), and aborting a connection whose client already sent its request
    resets it: a client whose certificate is refused would see a reset or an EOF instead of
    "unknown CA". Send the alert, read away what the client sends for `ALERT_LINGER` seconds, then
    let asyncio close the connection (a close with nothing unread is a FIN, not a reset)."""
    def on_handshake_complete(self: Any, handshake_exc: BaseException | None) -> None:
        if handshake_exc is None:
            original(self, handshake_exc)
            return
        if getattr(self, "_partita_refused", False):
            return  # more bytes from the refused client: already answered
        self._partita_refused = True
        try:
            self._process_outgoing()
        except Exception:  # the connection may be gone already
            pass
        self._loop.call_later(ALERT_LINGER, original, self, handshake_exc)
    return on_handshake_complete


def _with_handshake_deadline(create_server: Callable[..., Any]) -> Callable[..., Any]:
    """`create_server` of this worker's loop, giving TLS listeners `REQUEST_DEADLINE` to complete a
    handshake (gunicorn does not pass ``ssl_handshake_timeout``; asyncio's default is 60 s)."""
    async def create(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", REQUEST_DEADLINE)
        return await create_server(*args, **kwargs)
    return create


def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Worker(gasgi.ASGIWorker):  # type: ignore[misc]
    """Gunicorn's asyncio worker serving `Front` over `_Protocol`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[_Protocol] = set()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        pass  # our ``threads`` are the app's pool (`Front`), not gunicorn's

    def init_process(self) -> None:
        # one descriptor per connection: room for ``worker_connections`` of them
        _raise_file_limit(self.cfg.worker_connections + 256)
        if not getattr(sslproto.SSLProtocol._on_handshake_complete, "partita", False):
            patched = _send_handshake_alert_first(sslproto.SSLProtocol._on_handshake_complete)
            patched.partita = True  # type: ignore[attr-defined]
            sslproto.SSLProtocol._on_handshake_complete = patched  # type: ignore[method-assign]
        super().init_process()

    async def _serve(self) -> None:
        gasgi.ASGIProtocol = _Protocol  # this process serves only the master
        self.loop.create_server = _with_handshake_deadline(self.loop.create_server)
        await super()._serve()

    def handle_exit_signal(self) -> None:
        front = getattr(self, "asgi", None)
        if isinstance(front, Front):
            front.bus.close()  # the long polls answer now; the nodes ask the next server
        super().handle_exit_signal()
        # idle kept-alive connections would hold the stop until their deadline (gunicorn waits
        # for every connection to end): close them, let the answers under way finish
        for protocol in list(self.connections):
            protocol.close_if_idle()
