"""A master whose disk is full answers the node's reports 507 STORAGE_FULL (issue 10): the daemon
lives on, says so, and sends the reports again at a later pass once space is freed: nothing lost.

The proxy's SQLite catalog is moved to a tiny tmpfs, which the test fills to the last byte.
"""
from __future__ import annotations

import configparser
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node.desired import parse
from tests.master.test_db_storage_full import fill, mounted
from tests.support import server
from tests.support.node import COMPUTER, HELLO_WEB, NodeEnv, free_port

pytestmark = pytest.mark.root


@pytest.fixture
def env() -> Iterator[tuple[NodeEnv, Path]]:
    """A node whose proxy keeps its catalog on a 16 MiB tmpfs."""
    env = NodeEnv(partitions=1)
    try:
        env.proxy.stop()
        with mounted(env.root / "disk", "16m") as disk:
            for name in ("proxy.db", "proxy.db-wal", "proxy.db-shm"):
                if (env.root / name).exists():
                    shutil.move(env.root / name, disk / name)
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(env.config_path)
            for section in ("slapproxy", "slapmaster"):
                parser[section]["database_uri"] = str(disk / "proxy.db")
            with open(env.config_path, "w") as stream:
                parser.write(stream)
            env.proxy = server.restart(env.proxy)
            try:
                yield env, disk
            finally:
                env.stop_daemon()
                env.proxy.stop()
    finally:
        env.close()


def wait_for_log(env: NodeEnv, needle: str, times: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if env.daemon_log().count(needle) >= times:
            return
        assert env.daemon is not None and env.daemon.poll() is None, f"the daemon died:\n{env.daemon_log()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not logged {times} times in {timeout:g}s:\n{env.daemon_log()[-3000:]}")


def test_reports_refused_for_a_full_disk_are_sent_again_once_space_is_freed(env: tuple[NodeEnv, Path]) -> None:
    node, disk = env
    node.format()
    node.supply_and_request("web", greeting="full-disk", port=str(free_port()))
    filler = fill(disk)
    node.start_daemon()

    # the release is built and the instance deployed (its publication fails too), but the master
    # takes none of the reports: the daemon says so, and tries again at its next passes
    wait_for_log(node, "web: cannot report error to the master: the master's catalog cannot be written: "
                       "its disk is full", 2, 240)
    assert "cannot report available to the master" in node.daemon_log()
    assert node.info("web")["status_reason"] != "started"
    assert node.daemon is not None and node.daemon.poll() is None

    filler.unlink()
    doc = node.wait_for("web", lambda doc: doc["status_reason"] == "started", timeout=180,
                        what="the report sent again")
    assert doc["connection_parameters"], doc
    state = parse(node.client.get_compute_node_state(COMPUTER))
    assert [software.reported_state for software in state.software_installation_list
            if software.software_release_uri == str(HELLO_WEB)] == ["available"]
    assert node.daemon is not None and node.daemon.poll() is None
    assert "Traceback" not in node.daemon_log()
