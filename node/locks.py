"""File locks with a deadline (``flock``: released by the kernel when the holder dies)."""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from partita.node.errors import LockTimeout

POLL_SECONDS = 0.1


@contextmanager
def file_lock(path: Path, timeout: float, what: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path`, waiting at most `timeout` seconds for it."""
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{what or path} is busy: still locked after {timeout:g}s") from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Take the lock on `path` if it is free; yields whether we hold it."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
