"""Engines and transactions for SQLite (the embedded default) and PostgreSQL (production).

- ``Database.write()`` is a transaction that may change the catalog. On SQLite it starts with
  ``BEGIN IMMEDIATE``: one writer at a time, so an allocation is atomic. On PostgreSQL allocations
  take row locks (``SELECT ... FOR UPDATE SKIP LOCKED``) in the services.
- ``Database.run_write()`` runs a write transaction again when it lost a race to a concurrent
  writer (two workers creating the same title, a deadlock, a busy SQLite file); which errors
  those are is decided by the driver's error code in `partita.master.db.retry`.
- A write that finds the disk full is rolled back and raises `StorageFull` (507 on both
  protocols), never the driver's error (a 500).
- ``Database.read()`` is a read-only transaction (concurrent with writers on SQLite WAL).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from partita.master.db.changes import changed_computers
from partita.master.db.notify import CHANNEL, ChangeBus, PostgresListener
from partita.master.db.retry import is_retryable, is_storage_full
from partita.slap.errors import StorageFull

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
STORAGE_FULL_MESSAGE = ("the master's catalog cannot be written: its disk is full (nothing was changed; "
                        "the operator must free space, then try again)")


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        if connection.get_execution_options().get("partita_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for `url` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _setup_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=30)


class Database:
    """The catalog's storage: an engine and the two kinds of transaction."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._writer = sessionmaker(
            bind=self.engine.execution_options(partita_write=True), expire_on_commit=False
        )
        self._reader = sessionmaker(bind=self.engine, expire_on_commit=False)
        # SQLite: writers of this process queue here rather than in SQLite's busy handler, which
        # sleeps and polls (up to 100 ms) instead of waking the next writer.
        self._write_lock = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self.bus = ChangeBus()
        self._listener: PostgresListener | None = None
        if not self.is_sqlite:
            dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = PostgresListener(dsn, self.bus)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction; computers it changed are announced once it commits. A full disk
        rolls it back and raises `StorageFull`."""
        try:
            with self._write_lock, self._writer() as session:
                with session.begin():
                    yield session
                    session.flush()
                    changed = changed_computers(session)
                    if changed and self._listener is not None:
                        for reference in sorted(changed):
                            session.execute(select(func.pg_notify(CHANNEL, reference)))
                self.bus.publish(changed)
        except DBAPIError as exc:
            if is_storage_full(self.engine.dialect.name, exc):
                raise StorageFull(STORAGE_FULL_MESSAGE) from exc
            raise

    def wait_for_change(self, computer: str, seen: int, timeout: float) -> bool:
        """Block until this process learns that `computer` changed after counter `seen`."""
        if self._listener is not None:
            self._listener.ensure_started()
        return self.bus.wait(computer, seen, timeout)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def run_write(self, work: Callable[[Session], T], attempts: int = 3) -> T:
        """Run `work` in a write transaction, retrying when a concurrent writer won a race."""
        for attempt in range(attempts):
            try:
                with self.write() as session:
                    return work(session)
            except DBAPIError as exc:
                if attempt == attempts - 1 or not is_retryable(self.engine.dialect.name, exc):
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.engine.dispose()

