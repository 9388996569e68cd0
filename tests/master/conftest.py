"""A fresh catalog on each backend: every master test that takes `db` runs on SQLite and PostgreSQL;
`app` and `client` serve it as the proxy of computer `local_computer`."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from partita.master.app import create_app
from partita.master.db import migrate
from partita.master.db.database import Database
from partita.master.settings import AppSettings

PROXY_COMPUTER = "local_computer"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return request.getfixturevalue("postgres_url")


def open_catalog(url: str) -> Database:
    """A Database at `url` with its schema up to date (the caller disposes of it)."""
    database = Database(url)
    migrate.upgrade(database.engine)
    return database


@contextlib.contextmanager
def catalog(url: str) -> Iterator[Database]:
    """`open_catalog`, disposed of at the end."""
    database = open_catalog(url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[Database]:
    """A migrated catalog on PostgreSQL only (what only a server with row locks can show)."""
    with catalog(postgres_url) as database:
        yield database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with catalog(database_url) as database:
        yield database


@pytest.fixture
def app(db: Database) -> Flask:
    return create_app(db, AppSettings(mode="proxy", computer_id=PROXY_COMPUTER))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
