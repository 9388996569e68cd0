"""A real proxy (master + catalog on SQLite) for the recipes that talk to the master."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.recipes.helpers import Master, start_master

PARTITIONS = 24


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """A proxy with `PARTITIONS` partitions on 127.0.1.1, 127.0.1.2, …"""
    started = start_master(tmp_path_factory.mktemp("proxy"), [f"127.0.1.{n + 1}" for n in range(PARTITIONS)])
    yield started
    started.stop()
