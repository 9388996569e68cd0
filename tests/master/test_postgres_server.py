"""The throwaway PostgreSQL server of the test setup works (tests/support/postgres.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.postgres import MAJOR_VERSION, PostgresServer

pytestmark = pytest.mark.postgresql


def test_fresh_database_answers_through_sqlalchemy_and_psycopg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("select 1")).scalar_one() == 1
            version = int(connection.execute(sa.text("show server_version_num")).scalar_one())
            tables = connection.execute(
                sa.text("select count(*) from information_schema.tables where table_schema = 'public'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert version // 10000 == MAJOR_VERSION
    assert tables == 0


def test_extra_database_is_created_and_dropped(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("t_extra_database")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("select current_database()")).scalar_one() == "t_extra_database"
    finally:
        engine.dispose()
    postgres_server.drop_database("t_extra_database")
    engine = sa.create_engine(postgres_server.url())
    try:
        with engine.connect() as connection:
            names = connection.execute(sa.text("select datname from pg_database")).scalars().all()
    finally:
        engine.dispose()
    assert "t_extra_database" not in names


def test_database_names_are_checked(postgres_server: PostgresServer) -> None:
    with pytest.raises(ValueError):
        postgres_server.create_database('x"; drop database postgres; --')
