"""Fixtures shared by every test package: the throwaway PostgreSQL server and the 1.26.1 peer.

The logic lives in ``tests/support``; this file only wires it into pytest.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.peer import Peer, PeerMissing, find_peer
from partita.node.toolchain import Toolchain
from tests.support.postgres import PostgresServer, PostgresUnavailable, start_server
from tests.support.toolchain import test_toolchain


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster started on first use and stopped at the end of the session.

    Fails (never skips) when PostgreSQL is missing: the test command installs it.
    """
    try:
        server = start_server()
    except PostgresUnavailable as error:
        raise _failure(f"PostgreSQL test server unavailable: {error}") from None
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    name = f"t_{slug}_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def peer() -> Peer:
    """The real slapos.core 1.26.1 (``$PARTITA_PEER``); fails with a hint when it is not built."""
    try:
        return find_peer()
    except PeerMissing as error:
        raise _failure(str(error)) from None


def _failure(message: str) -> BaseException:
    """A test failure showing only ``message`` (what ``pytest.fail`` raises)."""
    return pytest.fail.Exception(message, pytrace=False)


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    """The node's toolchain (buildout + Partita's recipes), built once per version of the code."""
    return test_toolchain()
