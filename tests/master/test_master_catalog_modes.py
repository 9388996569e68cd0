"""The master's SQLite catalog is owner-only (issue 10), as the proxy's is (`slap.catalog_file`).

`slapos master init` then `slapos master start` as root, in a directory every user can reach: the
catalog and its ``-wal``/``-shm`` are 0600 and a real unprivileged user (``nobody``, as a partition's
user would) can open none of them. A world-readable catalog is made 0600 at start and said; a
catalog that is a link is refused in one line by both commands, and the link's target is untouched.
"""
from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from partita.slap.client import MasterClient
from tests.proxy.test_catalog_modes import _as_nobody_open, _mode, reachable  # noqa: F401 (a fixture)
from tests.support.server import SLAPOS, start, write_config

pytestmark = pytest.mark.root


def _init(directory: Path) -> subprocess.CompletedProcess[str]:
    config = write_config(directory, 1, database=str(directory / "catalog.db"))
    return subprocess.run([SLAPOS, "master", "init", "--cfg", str(config)], capture_output=True, text=True,
                          timeout=60, cwd=directory)


def test_init_and_start_keep_the_catalog_from_other_users(reachable: Path) -> None:
    assert _init(reachable).returncode == 0
    assert _mode(reachable / "catalog.db") == 0o600
    master = start(reachable, ("master", "start"), database=str(reachable / "catalog.db"))
    try:
        with MasterClient(master.url) as client:  # something in the catalog, and the WAL in use
            client.format_compute_node("COMP-1", [{"partition_id": "slappart0",
                                                   "ip_list": [{"ip-address": "10.0.0.1"}]}])
        files = [reachable / name for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm")
                 if (reachable / name).exists()]
        assert reachable / "catalog.db" in files and len(files) >= 2
        for path in files:
            assert _mode(path) == 0o600, path
            assert _as_nobody_open(path) == errno.EACCES, path
    finally:
        master.stop()


def test_start_makes_a_world_readable_catalog_owner_only_and_says_it(reachable: Path) -> None:
    assert _init(reachable).returncode == 0
    database = reachable / "catalog.db"
    database.chmod(0o644)
    master = start(reachable, ("master", "start"), database=str(database))
    try:
        assert _mode(database) == 0o600
        assert f"the catalog file {database} was mode 644" in master.log()
        assert _as_nobody_open(database) == errno.EACCES
    finally:
        master.stop()


def test_init_makes_a_world_readable_catalog_owner_only_and_says_it(reachable: Path) -> None:
    assert _init(reachable).returncode == 0
    (reachable / "catalog.db").chmod(0o604)
    again = _init(reachable)
    assert again.returncode == 0, again.stderr
    assert f"the catalog file {reachable / 'catalog.db'} was mode 604" in again.stderr
    assert _mode(reachable / "catalog.db") == 0o600


def test_a_catalog_link_is_refused_by_init_and_start(reachable: Path) -> None:
    target = reachable / "elsewhere"
    target.write_text("not a catalog")
    target.chmod(0o644)
    (reachable / "catalog.db").symlink_to(target)
    refused = _init(reachable)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (f"slapos: error: the catalog file {reachable / 'catalog.db'} is a link: "
                                      "remove it or point database_uri at the real file")
    config = reachable / "slapos.cfg"
    refused = subprocess.run([SLAPOS, "master", "start", "--cfg", str(config)], capture_output=True, text=True,
                             timeout=60, cwd=reachable)
    assert refused.returncode == 1 and "is a link" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert _mode(target) == 0o644 and target.read_text() == "not a catalog"
