"""Retries decided by the driver's error code (master/db/retry.py), on both backends."""
from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partita.master.db.database import Database
from partita.master.db.models import Owner
from partita.master.db.retry import error_code, is_retryable, is_retryable_code


@pytest.mark.parametrize(("code", "retryable"), [
    ("23505", True),    # unique_violation
    ("40001", True),    # serialization_failure
    ("40P01", True),    # deadlock_detected
    ("23502", False),   # not_null_violation
    ("23503", False),   # foreign_key_violation
    ("42601", False),   # syntax_error
    ("08006", False),   # connection_failure
    (None, False),
])
def test_postgresql_codes(code: str | None, retryable: bool) -> None:
    assert is_retryable_code("postgresql", code) is retryable


@pytest.mark.parametrize(("code", "retryable"), [
    (5, True),       # SQLITE_BUSY
    (517, True),     # SQLITE_BUSY_SNAPSHOT
    (6, True),       # SQLITE_LOCKED
    (262, True),     # SQLITE_LOCKED_SHAREDCACHE
    (2067, True),    # SQLITE_CONSTRAINT_UNIQUE
    (1555, True),    # SQLITE_CONSTRAINT_PRIMARYKEY
    (19, False),     # SQLITE_CONSTRAINT (no detail)
    (1299, False),   # SQLITE_CONSTRAINT_NOTNULL
    (787, False),    # SQLITE_CONSTRAINT_FOREIGNKEY
    (1, False),      # SQLITE_ERROR
    ("23505", False),  # a SQLSTATE means nothing to SQLite
    (None, False),
])
def test_sqlite_codes(code: int | str | None, retryable: bool) -> None:
    assert is_retryable_code("sqlite", code) is retryable


def test_unknown_backend_is_never_retried() -> None:
    assert not is_retryable_code("mysql", "23505")


def test_message_is_not_read() -> None:
    """A message that merely says "unique" or "database is locked" is not a code."""
    assert not is_retryable("sqlite", sqlite3.OperationalError("database is locked"))
    assert not is_retryable("postgresql", RuntimeError("duplicate key value violates unique constraint"))


def _add_owner(session: Session, name: str) -> None:
    session.add(Owner(name=name, created_at=time.time()))
    session.flush()


def test_a_real_unique_violation_is_retryable(db: Database) -> None:
    with db.write() as session:
        _add_owner(session, "alice")
    with pytest.raises(IntegrityError) as raised:
        with db.write() as session:
            _add_owner(session, "alice")
    expected = "23505" if db.engine.dialect.name == "postgresql" else 2067
    assert error_code(raised.value) == expected
    assert is_retryable(db.engine.dialect.name, raised.value)


def test_a_real_not_null_violation_is_not_retryable(db: Database) -> None:
    with pytest.raises(IntegrityError) as raised:
        with db.write() as session:
            session.add(Owner(name=None, created_at=time.time()))
            session.flush()
    assert not is_retryable(db.engine.dialect.name, raised.value)


def test_run_write_runs_again_after_a_lost_race(db: Database) -> None:
    """The first attempt collides with a row another writer committed; the second one sees it."""
    with db.write() as session:
        _add_owner(session, "bob")
    attempts: list[int] = []

    def work(session: Session) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            _add_owner(session, "bob")  # as if it had not seen bob yet
        return len(attempts)

    assert db.run_write(work) == 2


def test_run_write_raises_what_is_not_a_race_at_once(db: Database) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.add(Owner(name=None, created_at=time.time()))
        session.flush()

    with pytest.raises(IntegrityError):
        db.run_write(work)
    assert len(attempts) == 1


@pytest.mark.parametrize(("dialect", "code", "full"), [
    ("postgresql", "53100", True),   # disk_full
    ("postgresql", "53200", False),  # out_of_memory
    ("postgresql", "40001", False),
    ("sqlite", 13, True),            # SQLITE_FULL
    ("sqlite", 13 | (1 << 8), True),  # an extended code of SQLITE_FULL
    ("sqlite", 5, False),
    ("sqlite", "13", False),
    ("mysql", 13, False),
    ("sqlite", None, False),
])
def test_storage_full_codes(dialect: str, code: str | int | None, full: bool) -> None:
    """Issue 10: a full disk is told apart by the driver's code, and is never retried."""
    from partita.master.db.retry import is_storage_full_code
    assert is_storage_full_code(dialect, code) is full
    assert not (full and is_retryable_code(dialect, code))
