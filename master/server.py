"""Serving the master app with gunicorn: one asyncio worker per process (`master.front`), so
connections, slow clients and long-polling nodes cost no thread; the app runs in a pool of
``threads`` threads, one complete request at a time.

Each worker builds its own app and database engine after the fork (``load`` runs in the worker),
so no connection is shared between processes. SQLite allows one worker only: it is one file with
one writer, and its change notifications are in-process.

HTTPS (`TlsFiles`): TLS 1.2 or newer, the master's certificate, and client certificates asked for
but optional at the handshake (a caller without one still reaches enrolment and gets a clear 401
elsewhere); a client certificate that the CA did not sign, or that expired, fails the handshake.
Gunicorn does not hand the verified client certificate to the application: the front reads it from
the connection and puts its DER in the environ (``partita.peer_certificate``), a key no HTTP header
can produce.

Starting (`serve`): the socket is bound here (`bind`, by the command before it prepares anything)
and listens once the server is about to run (`listen`), then gunicorn takes it over (``fd://``):
a port in use is one `PortInUse` line at once, not gunicorn's five retries, and the banner is
printed only once the socket is bound. With ``ready_file``, a worker that has loaded the
app writes that file atomically, ``{"pid": <the server's pid>, "url": ...}``: whoever started the
server knows that *this* process answers there, not another server that held the port already
(`scripts/demo`). The file is removed at start (a stale one never stands for this server) and
when the server stops.

Stopping: SIGTERM (or Ctrl-C) closes the listening socket; a worker then waits for its open
connections: a request being answered, a long poll (answered at once, `master.front`), an idle
keep-alive connection (closed after ``keepalive`` seconds) or a connection that has not delivered
its request (closed after `master.front.REQUEST_DEADLINE`). Gunicorn's master kills a worker still
there after ``graceful_timeout``, so that is longer than any of these (`GRACEFUL_TIMEOUT`): a clean
stop never ends in SIGKILL.
"""
from __future__ import annotations

import errno
import functools
import gc
import json
import os
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from partita.master.front import REQUEST_DEADLINE, Front
from partita.slap.config import url_host
from partita.slap.errors import ConfigurationError
from partita.slap.fileio import atomic_write


WORKER_CONNECTIONS = 4096  # open connections per worker (waiting nodes included); more are refused
KEEPALIVE = 5              # seconds an idle keep-alive connection stays open
GRACEFUL_TIMEOUT = int(max(REQUEST_DEADLINE, KEEPALIVE)) + 5  # longer than a stopping worker waits
BACKLOG = 2048             # gunicorn's default


class PortInUse(ConfigurationError):
    """Another process listens on the address and port the server was to listen on."""


@dataclass(frozen=True)
class TlsFiles:
    certificate: str   # the master's certificate (PEM)
    key: str           # its key
    ca: str            # the CA that signs client certificates


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int = 1
    threads: int = 32
    timeout: int = 120
    access_log: str | None = None
    tls: TlsFiles | None = None
    ready_file: str | None = None   # written once the server answers (see the module docstring)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


@functools.lru_cache(maxsize=4)
def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """The server's TLS settings: TLS 1.2+, our certificate, client certificates optional.

    One context per worker, made on first use: gunicorn asks for one on every connection it
    accepts, and a context of its own per connection would cost the handshake time and forbid
    TLS session resumption (the ticket keys live in the context)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.certificate, tls.key)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, factory: Callable[[], Flask], options: dict[str, object]) -> None:
        self._factory = factory
        self._options = options
        self._threads = int(options["threads"])  # type: ignore[call-overload]
        self._workers = int(options["workers"])  # type: ignore[call-overload]
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Front:
        app = self._factory()
        front = Front(app.wsgi_app, app.extensions["partita.db"].bus, threads=self._threads,
                      max_body=app.config.get("MAX_CONTENT_LENGTH"),
                      max_wait_seconds=app.extensions["partita.settings"].max_wait_seconds,
                      multiprocess=self._workers > 1)
        # What start-up allocated lives as long as the worker: keep it out of the collector's
        # full passes, which otherwise add tens of milliseconds to an unlucky request.
        gc.collect()
        gc.freeze()
        return front


def bind_address(host: str, port: int) -> str:
    return f"{url_host(host)}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, not listening yet (connections are refused until `listen`:
    a client never waits on a server still preparing); `PortInUse` if another socket listens
    there, another ConfigurationError (one line) if it cannot be bound."""
    where = bind_address(host, port)
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        # a name (localhost) on its IPv4 address first, as gunicorn bound it
        family, kind, proto, _, address = sorted(found, key=lambda info: info[0] != socket.AF_INET)[0]
    except (socket.gaierror, UnicodeError, IndexError) as error:
        raise ConfigurationError(f"cannot listen on {where}: {getattr(error, 'strerror', None) or error}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise _bind_error(error, host, port) from None
    sock.set_inheritable(True)
    return sock


def listen(sock: socket.socket, host: str, port: int) -> None:
    """Start listening on the bound `sock` (`PortInUse` if another server began listening on the
    same port since `bind`)."""
    try:
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise _bind_error(error, host, port) from None


def _bind_error(error: OSError, host: str, port: int) -> ConfigurationError:
    if error.errno == errno.EADDRINUSE:
        return PortInUse(f"port {port} on {host} is in use: another server listens there "
                         "(stop it, or choose another port)")
    return ConfigurationError(f"cannot listen on {bind_address(host, port)}: {error.strerror or error}")


def _ready_hooks(options: ServeOptions, url: str, banner: str) -> dict[str, object]:
    """Gunicorn's hooks: the banner once the socket is bound, the ready file once a worker has
    loaded the app, its removal when the server stops."""
    ready_file = options.ready_file

    def when_ready(_arbiter: Any) -> None:
        if banner:
            print(banner, file=sys.stderr, flush=True)

    def post_worker_init(worker: Any) -> None:
        if ready_file:
            atomic_write(ready_file, json.dumps({"pid": worker.ppid, "url": url}) + "\n", mode=0o644)

    def on_exit(_arbiter: Any) -> None:
        if ready_file:
            remove_ready_file(ready_file, os.getpid())

    return {"when_ready": when_ready, "post_worker_init": post_worker_init, "on_exit": on_exit}


def remove_ready_file(path: str, pid: int | None = None) -> None:
    """Remove the ready file `path` (only if it names `pid`, when given)."""
    target = Path(path)
    try:
        if pid is not None and json.loads(target.read_text(encoding="utf-8")).get("pid") != pid:
            return
        target.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def check_ready_file(path: str | None) -> None:
    """A ConfigurationError unless the ready file can be written (its directory exists); a stale
    one is removed now."""
    if path is None:
        return
    if not Path(path).absolute().parent.is_dir():
        raise ConfigurationError(f"--ready-file {path}: its directory does not exist")
    remove_ready_file(path)


def check_options(options: ServeOptions, *, sqlite: bool) -> None:
    """A ConfigurationError for options no server could run with (checked before binding: a
    configuration mistake is said as such, whatever the port)."""
    if sqlite and options.workers != 1:
        raise ConfigurationError("a SQLite catalog is served by one worker; use PostgreSQL for more")
    if options.workers < 1 or options.threads < 1:
        raise ConfigurationError("workers and threads must be at least 1")
    check_ready_file(options.ready_file)


def serve(factory: Callable[[], Flask], options: ServeOptions, *, sqlite: bool, banner: str = "",
          listener: socket.socket | None = None) -> None:
    """Listen (on `listener` if the caller bound it already: `bind`), print `banner` (stderr),
    run the app in the foreground until SIGTERM/SIGINT."""
    check_options(options, sqlite=sqlite)
    listener = listener or bind(options.host, options.port)
    listen(listener, options.host, options.port)
    url = f"{options.scheme}://{bind_address(options.host, listener.getsockname()[1])}/"
    settings: dict[str, object] = {
        "bind": f"fd://{listener.detach()}",   # gunicorn takes the bound socket over
        "workers": options.workers,
        "worker_class": "partita.master.front.Worker",
        "threads": options.threads,      # the app's pool in each worker (`Front`)
        "worker_connections": WORKER_CONNECTIONS,
        "asgi_lifespan": "off",
        "timeout": options.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": KEEPALIVE,
        "accesslog": options.access_log,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "partita-master",
        **_ready_hooks(options, url, banner),
    }
    if options.tls is not None:
        tls = options.tls
        settings.update({"certfile": tls.certificate, "keyfile": tls.key, "ca_certs": tls.ca,
                         "cert_reqs": ssl.CERT_OPTIONAL,
                         "ssl_context": lambda _config, _default: tls_context(tls)})
    _Gunicorn(factory, settings).run()

