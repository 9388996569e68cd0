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
"""
from __future__ import annotations

import functools
import gc
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from gunicorn.app.base import BaseApplication

from partita.master.front import Front
from partita.slap.config import url_host
from partita.slap.errors import ConfigurationError


WORKER_CONNECTIONS = 4096  # open connections per worker (waiting nodes included); more are refused


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


def serve(factory: Callable[[], Flask], options: ServeOptions, *, sqlite: bool) -> None:
    """Run the app in the foreground until SIGTERM/SIGINT."""
    if sqlite and options.workers != 1:
        raise ConfigurationError("a SQLite catalog is served by one worker; use PostgreSQL for more")
    if options.workers < 1 or options.threads < 1:
        raise ConfigurationError("workers and threads must be at least 1")
    settings: dict[str, object] = {
        "bind": bind_address(options.host, options.port),
        "workers": options.workers,
        "worker_class": "partita.master.front.Worker",
        "threads": options.threads,      # the app's pool in each worker (`Front`)
        "worker_connections": WORKER_CONNECTIONS,
        "asgi_lifespan": "off",
        "timeout": options.timeout,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": options.access_log,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "partita-master",
    }
    if options.tls is not None:
        tls = options.tls
        settings.update({"certfile": tls.certificate, "keyfile": tls.key, "ca_certs": tls.ca,
                         "cert_reqs": ssl.CERT_OPTIONAL,
                         "ssl_context": lambda _config, _default: tls_context(tls)})
    _Gunicorn(factory, settings).run()

