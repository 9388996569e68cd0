"""Which database errors mean "a concurrent writer won a race: run the transaction again".

Decided by the driver's error code, never by the message (messages change with versions and
locales):

| backend | code | meaning | why retrying helps |
|---|---|---|---|
| PostgreSQL | SQLSTATE ``23505`` | unique_violation | two workers created the same row; the retry finds it |
| PostgreSQL | SQLSTATE ``40001`` | serialization_failure | the transaction lost to a concurrent one |
| PostgreSQL | SQLSTATE ``40P01`` | deadlock_detected | the server chose this transaction as the victim |
| SQLite | ``SQLITE_BUSY`` (5, and its extended codes) | another connection holds the write lock past the busy timeout | the writer finishes |
| SQLite | ``SQLITE_LOCKED`` (6, and its extended codes) | a table is locked within the same connection pool | the lock is released |
| SQLite | ``SQLITE_CONSTRAINT_UNIQUE`` (2067) | unique_violation | as on PostgreSQL |
| SQLite | ``SQLITE_CONSTRAINT_PRIMARYKEY`` (1555) | primary-key violation | as on PostgreSQL |

Every other error (a NOT NULL or foreign-key violation, a syntax error, a lost connection) is a
bug or an outage, and is raised at once. `is_retryable_code` is the rule, a pure function;
`is_retryable` reads the code from an exception SQLAlchemy raised.

One outage has its own answer: the catalog's disk is full (`is_storage_full_code`). The write was
rolled back; ``Database.write()`` raises `StorageFull` (HTTP 507, code ``STORAGE_FULL``) instead of
the driver's error, and a retry now would fail the same way:

| backend | code | meaning |
|---|---|---|
| PostgreSQL | SQLSTATE ``53100`` | disk_full ("could not extend file", psycopg's ``DiskFull``) |
| SQLite | ``SQLITE_FULL`` (13, and its extended codes) | "database or disk is full" (ENOSPC, EDQUOT) |
"""
from __future__ import annotations

from sqlalchemy.exc import DBAPIError

POSTGRESQL_RETRYABLE = frozenset({"23505", "40001", "40P01"})

POSTGRESQL_DISK_FULL = "53100"

SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_FULL = 13
SQLITE_CONSTRAINT_PRIMARYKEY = 1555
SQLITE_CONSTRAINT_UNIQUE = 2067
SQLITE_RETRYABLE_PRIMARY = frozenset({SQLITE_BUSY, SQLITE_LOCKED})  # any extended code of these
SQLITE_RETRYABLE_EXTENDED = frozenset({SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY})


def is_retryable_code(dialect: str, code: str | int | None) -> bool:
    """Whether error `code` of backend `dialect` (``"postgresql"``: a SQLSTATE string;
    ``"sqlite"``: an extended result code) means a lost race worth one more attempt."""
    if code is None:
        return False
    if dialect == "postgresql":
        return str(code) in POSTGRESQL_RETRYABLE
    if dialect == "sqlite":
        if not isinstance(code, int):
            return False
        return code & 0xFF in SQLITE_RETRYABLE_PRIMARY or code in SQLITE_RETRYABLE_EXTENDED
    return False


def error_code(exc: BaseException) -> str | int | None:
    """The driver's code of a database error: psycopg's ``sqlstate``, sqlite3's ``sqlite_errorcode``."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    for attribute in ("sqlstate", "sqlite_errorcode"):
        code = getattr(original, attribute, None)
        if code is not None:
            return code  # type: ignore[no-any-return]
    return None


def is_retryable(dialect: str, exc: BaseException) -> bool:
    """Whether `exc`, raised by a transaction on backend `dialect`, is worth another attempt."""
    return is_retryable_code(dialect, error_code(exc))


def is_storage_full_code(dialect: str, code: str | int | None) -> bool:
    """Whether error `code` of backend `dialect` means the catalog's disk (or quota) is full."""
    if dialect == "postgresql":
        return code is not None and str(code) == POSTGRESQL_DISK_FULL
    if dialect == "sqlite":
        return isinstance(code, int) and code & 0xFF == SQLITE_FULL
    return False


def is_storage_full(dialect: str, exc: BaseException) -> bool:
    """Whether `exc`, raised by a write on backend `dialect`, says the disk is full."""
    return is_storage_full_code(dialect, error_code(exc))
