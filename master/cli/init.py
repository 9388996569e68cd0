"""`slapos master init`: create or migrate the catalog's database."""
from __future__ import annotations

from pathlib import Path

import click

from partita.master.bootstrap import open_database
from partita.master.db import migrate
from partita.slap.config import database_uri_from, master_config, read_config


@click.command("init")
@click.option("--cfg", help="Configuration file with a [slapmaster] section.")
@click.option("--database-uri", help="SQLite file or postgresql:// URL instead of [slapmaster] database_uri.")
def command(cfg: str | None, database_uri: str | None) -> None:
    """Create the database schema, or bring it to the newest version."""
    url = _database_url(cfg, database_uri)
    db = open_database(url)
    try:
        click.echo(f"database ready at revision {migrate.current_revision(db.engine)}")
    finally:
        db.dispose()


def _database_url(cfg: str | None, database_uri: str | None) -> str:
    if database_uri:
        return database_uri_from(database_uri, Path.cwd())
    return master_config(read_config(cfg)).database_uri
