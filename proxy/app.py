"""The all-in-one proxy: the master app on a SQLite file with one local computer, owned by `local`."""
from __future__ import annotations

from flask import Flask

from partita.master.app import create_app
from partita.master.bootstrap import ensure_local_computer, open_database
from partita.master.db.database import Database
from partita.master.services.identity import LOCAL_OWNER
from partita.master.settings import AppSettings
from partita.slap.config import ProxyConfig, Quotas


def prepare(config: ProxyConfig) -> None:
    """Create or migrate the database and the local computer (before the server forks)."""
    db = open_database(config.database_uri)
    try:
        ensure_local_computer(db, config.computer_id, LOCAL_OWNER)
    finally:
        db.dispose()


def make_app(config: ProxyConfig) -> Flask:
    """The app of one server worker (the schema was prepared before it started)."""
    db = Database(config.database_uri)
    quotas = (config.quotas or Quotas()).settings()
    return create_app(db, AppSettings(mode="proxy", computer_id=config.computer_id, default_owner=LOCAL_OWNER,
                                      **quotas))
