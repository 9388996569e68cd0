"""Opening a catalog: check its file is owner-only, connect, create or migrate the schema, and
(proxy mode) the local computer."""
from __future__ import annotations

import sys
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from partita.master.db import migrate
from partita.master.db.database import Database
from partita.master.services.computers import ensure_computer
from partita.master.services.identity import Caller
from partita.slap.catalog_file import secure_catalog
from partita.slap.errors import ConfigurationError


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def open_database(url: str, say: Callable[[str], None] = _to_stderr) -> Database:
    """A Database at `url` with its schema up to date; unreachable or bad URLs are one-line errors.

    A SQLite file is made owner-only first, or refused (`slap.catalog_file`); `say` gets one line per
    file whose mode was fixed. Every command that opens a catalog comes through here."""
    secure_catalog(url, say)
    try:
        db = Database(url)
        migrate.upgrade(db.engine)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"cannot open the database {_safe(url)}: {first}") from None
    return db


def ensure_local_computer(db: Database, computer_id: str, owner: str) -> None:
    """Proxy mode: the configured computer exists (and answers) even before it is formatted."""
    with db.write() as session:
        ensure_computer(session, Caller(owner=owner), computer_id)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url
