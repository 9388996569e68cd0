"""The daemon never dies of what a later pass can heal (issues 10 and 11): a failed toolchain
build is retried with back-off, a 507/503 or an unexpected error in one iteration is logged and
the loop goes on; a refusal of the node itself (4xx) still ends it."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from partita.node import daemon as daemon_module
from partita.node.daemon import Daemon, open_with_retry
from partita.node.errors import Interrupted, SetupError
from partita.slap.errors import MasterRefused, MasterUnreachable, RemoteError


def test_a_failing_start_is_retried_with_back_off_until_it_works(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []
    ready = object()

    def opener(_config: Any) -> Any:
        calls.append(0)
        if len(calls) < 3:
            raise SetupError("cannot build the toolchain: pip install failed: network down\nsecond line")
        return ready

    with caplog.at_level(logging.ERROR, logger="partita.node.daemon"):
        assert open_with_retry(None, threading.Event(), opener, first=0.01, most=0.02) is ready  # type: ignore[arg-type]
    assert len(calls) == 3
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["cannot start the node: cannot build the toolchain: pip install failed: network down | second "
                     "line; retrying in 0.01s",
                     "cannot start the node: cannot build the toolchain: pip install failed: network down | second "
                     "line; retrying in 0.02s"]


def test_a_start_stopped_while_it_waits_gives_up() -> None:
    stop = threading.Event()

    def opener(_config: Any) -> Any:
        stop.set()
        raise SetupError("no toolchain")

    assert open_with_retry(None, stop, opener, first=60, most=60) is None  # type: ignore[arg-type]


class Scripted(Daemon):
    """A daemon whose iterations follow a script: each step raises or returns."""

    def __init__(self, steps: list[Callable[[], tuple[int, float]]]) -> None:
        super().__init__(ctx=None)  # type: ignore[arg-type]
        self.steps = steps
        self.done = 0

    def iterate(self) -> tuple[int, float]:
        step = self.steps[self.done]
        self.done += 1
        if self.done == len(self.steps):
            self.stop.set()
        return step()


def raising(error: BaseException) -> Callable[[], tuple[int, float]]:
    def step() -> tuple[int, float]:
        raise error
    return step


def test_storage_full_and_unexpected_errors_do_not_end_the_loop(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(daemon_module, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(daemon_module, "MASTER_BACKOFF_MAX", 0.01)
    daemon = Scripted([raising(RemoteError("the master's disk is full", "STORAGE_FULL", 507)),
                       raising(RuntimeError("a bug")),
                       raising(MasterUnreachable("connection refused")),
                       raising(RemoteError("busy", "NOT_READY", 408)),
                       lambda: (1, 0.0)])
    with caplog.at_level(logging.WARNING, logger="partita.node.daemon"):
        daemon.run()
    assert daemon.done == 5
    text = caplog.text
    assert "master unavailable (the master's disk is full)" in text
    assert "the iteration failed (a bug)" in text and "connection refused" in text


def test_an_interruption_ends_the_loop_quietly() -> None:
    daemon = Scripted([raising(Interrupted("buildout was stopped")), lambda: (1, 0.0)])
    daemon.run()
    assert daemon.done == 1


def test_the_master_refusing_the_node_ends_the_loop() -> None:
    daemon = Scripted([raising(RemoteError("certificate revoked", "REVOKED", 401)), lambda: (1, 0.0)])
    with pytest.raises(RemoteError):
        daemon.run()


def test_a_refused_connection_is_retried_within_seconds_other_failures_back_off_to_30s() -> None:
    refused = MasterRefused("cannot reach the master at https://m:1: Connection refused")
    reset = MasterRefused("cannot reach the master at https://m:1: Connection reset by peer")
    silent = MasterUnreachable("cannot reach the master at https://m:1: no answer within 30s")
    busy = RemoteError("busy", "NOT_READY", 503)
    # the kind decides, not the text (a proxy's page may say "connection refused")
    worded = MasterUnreachable("cannot reach the master at https://m:1: 502 connection refused upstream")
    assert [daemon_module.master_backoff(n, refused) for n in range(1, 8)] == [1, 2, 4, 5, 5, 5, 5]
    assert daemon_module.master_backoff(9, reset) == 5
    for error in (silent, busy, worded):
        assert [daemon_module.master_backoff(n, error) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
