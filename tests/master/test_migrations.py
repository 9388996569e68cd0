"""Alembic migrations: upgrade from an empty database, and the models match the migrations."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from partita.master.db import migrate
from partita.master.db.database import Database
from partita.master.db.models import Base


def test_upgrade_from_empty_reaches_head(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert migrate.current_revision(db.engine) is None
        head = migrate.upgrade(db.engine)
        assert migrate.current_revision(db.engine) == head
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert migrate.upgrade(db.engine) == head  # running it again changes nothing
    finally:
        db.dispose()


def test_models_match_migrations(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate.upgrade(db.engine)
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        db.dispose()


def test_a_database_uri_with_percent_signs_migrates(tmp_path) -> None:
    """A URI may carry percent-encoding (``?host=%2Frun%2Fpg``, a password): Alembic's
    configuration must not read it as interpolation."""
    directory = tmp_path / "100%"
    directory.mkdir()
    db = Database(f"sqlite:///{directory}/catalog.db")
    try:
        assert migrate.upgrade(db.engine) == migrate.head_revision(db.engine)
    finally:
        db.dispose()
