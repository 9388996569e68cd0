"""Serving the master app with gunicorn (threaded workers, so long-polling nodes pin threads, not
processes).

Each worker builds its own app and database engine after the fork (``load`` runs in the worker),
so no connection is shared between processes. SQLite allows one worker only: it is one file with
one writer, and its change notifications are in-process.

HTTPS (`TlsFiles`): TLS 1.2 or newer, the master's certificate, and client certificates asked for
but optional at the handshake (a caller without one still reaches enrolment and gets a clear 401
elsewhere); a client certificate that the CA did not sign, or that expired, fails the handshake.
Gunicorn does not hand the verified client certificate to the application: `with_peer_certificate`
reads it from the connection and puts its DER in the environ (``partita.peer_certificate``), a key
no HTTP header can produce.
"""
from __future__ import annotations

import functools
import gc
import signal
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from partita.master.api.authentication import PEER_CERTIFICATE
from partita.slap.config import url_host
from partita.slap.errors import ConfigurationError


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


def with_peer_certificate(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap `wsgi_app` so that it sees the verified client certificate of the connection."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.pop(PEER_CERTIFICATE, None)
        getpeercert = getattr(environ.get("gunicorn.socket"), "getpeercert", None)
        if getpeercert is not None:
            der = getpeercert(binary_form=True)
            if der:
                environ[PEER_CERTIFICATE] = der
        return wsgi_app(environ, start_response)
    return app


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
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        app = self._factory()
        app.wsgi_app = with_peer_certificate(app.wsgi_app)  # type: ignore[method-assign]
        self._bus = app.extensions["partita.db"].bus
        # What start-up allocated lives as long as the worker: keep it out of the collector's
        # full passes, which otherwise add tens of milliseconds to an unlucky request.
        gc.collect()
        gc.freeze()
        return app


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
        "worker_class": "gthread",
        "threads": options.threads,
        "timeout": options.timeout,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": options.access_log,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "partita-master",
        "post_worker_init": _answer_long_polls_on_exit,
    }
    if options.tls is not None:
        tls = options.tls
        settings.update({"certfile": tls.certificate, "keyfile": tls.key, "ca_certs": tls.ca,
                         "cert_reqs": ssl.CERT_OPTIONAL,
                         "ssl_context": lambda _config, _default: tls_context(tls)})
    _Gunicorn(factory, settings).run()


def _answer_long_polls_on_exit(worker: object) -> None:
    """On SIGTERM, answer the nodes' long polls at once instead of holding the shutdown for up to
    ``graceful_timeout`` (they ask again, to the next server)."""
    application = worker.app  # type: ignore[attr-defined]
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        bus = getattr(application, "_bus", None)
        if bus is not None:
            bus.close()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
