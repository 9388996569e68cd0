"""Serving the master app with gunicorn (threaded workers, so long-polling nodes pin threads, not
processes).

Each worker builds its own app and database engine after the fork (``load`` runs in the worker),
so no connection is shared between processes. SQLite allows one worker only: it is one file with
one writer, and its change notifications are in-process.
"""
from __future__ import annotations

import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from gunicorn.app.base import BaseApplication

from partita.slap.config import url_host
from partita.slap.errors import ConfigurationError


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int = 1
    threads: int = 32
    timeout: int = 120
    access_log: str | None = None


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
    _Gunicorn(factory, {
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
    }).run()


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
