"""The proxy's catalog is owner-only (issue 10): a partition's user reads no instance's secrets.

`slapos configure local` + `slapos proxy start` as root, in a directory every user can reach: the
catalog, its ``-wal``/``-shm`` and its directory are owner-only, and a real unprivileged user
(``nobody``, as a partition's user would) can open none of them. A world-readable catalog left by an
older version is made 0600 at start (and said); a directory others may write is refused in one line.
"""
from __future__ import annotations

import errno
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from partita.slap.catalog_file import secure_catalog
from partita.slap.client import MasterClient
from partita.slap.errors import ConfigurationError
from tests.support.server import SLAPOS
from tests.support.node import free_port

pytestmark = pytest.mark.root


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory every user may traverse (a pytest tmp_path is 0700: it would prove nothing)."""
    directory = Path(tempfile.mkdtemp(prefix="ptcatalog", dir="/tmp"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _as_nobody_open(path: Path) -> int:
    """The errno with which user ``nobody`` fails to open `path` for reading (0: it could)."""
    entry = pwd.getpwnam("nobody")
    code = (f"import os,sys\nos.setgroups([]); os.setgid({entry.pw_gid}); os.setuid({entry.pw_uid})\n"
            f"try:\n    os.close(os.open({str(path)!r}, os.O_RDONLY)); print(0)\n"
            "except OSError as e:\n    print(e.errno)\n")
    result = subprocess.run(["/usr/bin/python3.11", "-c", code], capture_output=True, text=True, timeout=30)
    return int(result.stdout.strip())


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_catalog_is_owner_only_after_configure_local_and_start(reachable: Path) -> None:
    etc = reachable / "etc"
    port = free_port()
    subprocess.run([SLAPOS, "configure", "local", "--slapos-configuration-directory", str(etc),
                    "--daemon-listen-port", str(port)], check=True, capture_output=True, timeout=60)
    assert _mode(etc) == 0o700
    etc.chmod(0o755)  # even in a directory others may list and traverse, the files stay closed
    log = open(reachable / "proxy.log", "wb")
    process = subprocess.Popen([SLAPOS, "proxy", "start", "--cfg", str(etc / "slapos.cfg")],
                               stdout=log, stderr=subprocess.STDOUT, cwd=reachable)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (reachable / "proxy.log").read_text()
            try:
                requests.get(url + "/openapi.json", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with MasterClient(url) as client:  # something secret in the catalog, and the WAL in use
            client.format_compute_node("local_computer", [])
        files = [etc / name for name in ("proxy.db", "proxy.db-wal", "proxy.db-shm") if (etc / name).exists()]
        assert etc / "proxy.db" in files and len(files) >= 2
        for path in files:
            assert _mode(path) == 0o600, path
            assert _as_nobody_open(path) == errno.EACCES, path
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_a_world_readable_catalog_is_made_owner_only_and_said(reachable: Path) -> None:
    database = reachable / "proxy.db"
    database.write_bytes(b"")
    database.chmod(0o644)
    said: list[str] = []
    secure_catalog(f"sqlite:///{database}", said.append)
    assert _mode(database) == 0o600
    assert len(said) == 1 and str(database) in said[0] and "644" in said[0]
    assert _as_nobody_open(database) == errno.EACCES


def test_a_directory_others_may_write_is_refused_in_one_line(reachable: Path) -> None:
    shared = reachable / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigurationError) as refused:
        secure_catalog(f"sqlite:///{shared / 'proxy.db'}", print)
    assert f"chmod 700 {shared}" in str(refused.value) and "\n" not in str(refused.value)
    assert not (shared / "proxy.db").exists()


def test_a_catalog_link_is_refused_not_followed(reachable: Path) -> None:
    target = reachable / "elsewhere"
    target.write_text("x")
    target.chmod(0o644)
    (reachable / "proxy.db").symlink_to(target)
    with pytest.raises(ConfigurationError, match="is a link"):
        secure_catalog(f"sqlite:///{reachable / 'proxy.db'}", print)
    assert _mode(target) == 0o644


def test_a_missing_directory_is_made_owner_only(reachable: Path) -> None:
    database = reachable / "new" / "dir" / "proxy.db"
    secure_catalog(f"sqlite:///{database}", print)
    assert _mode(database.parent) == 0o700 and _mode(database) == 0o600
