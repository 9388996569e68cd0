"""Telling waiting nodes that their computer changed, within a process and across processes.

`ChangeBus` keeps a counter per computer and a condition variable: a committed change increments
the counter and wakes the waiters. On PostgreSQL, every write transaction that changed a computer
also sends ``NOTIFY partita_changes, '<computer>'``; each worker process runs one listener thread
(started on first use, so it survives gunicorn's fork) that feeds those notifications into its own
bus. Waiting costs a sleeping thread (`wait`) or, in the server's event loop, a callback
(`watch`), never a poll of the database.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

CHANNEL = "partita_changes"
LISTENER_RECONNECT_DELAY = 2.0
LISTEN_POLL_SECONDS = 1.0  # how often the listener checks that it should stop

log = logging.getLogger(__name__)


class ChangeBus:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._counters: dict[str, int] = {}
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self.closing = False

    def close(self) -> None:
        """The server is stopping: every wait returns now, and later ones at once."""
        with self._condition:
            self.closing = True
            self._condition.notify_all()
            woken = self._take_watchers(list(self._watchers))
        _call(woken)

    def _take_watchers(self, computers: Iterable[str]) -> list[Callable[[], None]]:
        woken: list[Callable[[], None]] = []
        for computer in computers:
            woken.extend(self._watchers.pop(computer, ()))
        return woken

    def watch(self, computer: str, seen: int, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` once, from whichever thread publishes, when `computer`'s counter moves
        past `seen` (at once if it already has, or if the bus is closing). Returns a function that
        forgets the callback. `callback` must be quick and must not call the bus."""
        with self._condition:
            now = self._counters.get(computer, 0) != seen or self.closing
            if not now:
                self._watchers.setdefault(computer, set()).add(callback)
        if now:
            callback()

        def unwatch() -> None:
            with self._condition:
                watchers = self._watchers.get(computer)
                if watchers is not None:
                    watchers.discard(callback)
                    if not watchers:
                        del self._watchers[computer]
        return unwatch

    def counter(self, computer: str) -> int:
        with self._condition:
            return self._counters.get(computer, 0)

    def publish(self, computers: Iterable[str]) -> None:
        computers = list(computers)
        if not computers:
            return
        with self._condition:
            for computer in computers:
                self._counters[computer] = self._counters.get(computer, 0) + 1
            self._condition.notify_all()
            woken = self._take_watchers(computers)
        _call(woken)

    def wake_all(self) -> None:
        """Wake every waiter (after notifications may have been missed): they re-check the database."""
        with self._condition:
            for computer in self._counters:
                self._counters[computer] += 1
            self._condition.notify_all()
            woken = self._take_watchers(list(self._watchers))
        _call(woken)

    def wait(self, computer: str, seen: int, timeout: float) -> bool:
        """Wait until `computer`'s counter moves past `seen`; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._counters.get(computer, 0) == seen and not self.closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True


def _call(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a watcher's failure is not the publisher's
            log.exception("a change watcher failed")


class PostgresListener:
    """One thread per process: LISTEN on the channel and publish what arrives into a bus."""

    def __init__(self, dsn: str, bus: ChangeBus) -> None:
        self._dsn = dsn
        self._bus = bus
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.ready = threading.Event()

    def ensure_started(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self.ready.clear()
                self._thread = threading.Thread(target=self._run, name="partita-listen", daemon=True)
                self._thread.start()
        self.ready.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        lost = False
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.ready.set()
                    if lost:  # changes made while we were away were not announced
                        self._bus.wake_all()
                        lost = False
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                            self._bus.publish([notify.payload])
            except psycopg.Error as exc:  # the listener must outlive a database restart
                if self._stopping.is_set():
                    return
                log.warning("change listener lost its connection: %s; reconnecting", exc)
                self.ready.clear()
                lost = True
                self._stopping.wait(LISTENER_RECONNECT_DELAY)
