"""`slapos master init|start` on PostgreSQL with several workers (real processes, real HTTP)."""
from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from partita.slap.client import MasterClient
from tests.support.server import SLAPOS, ServerProcess, start, write_config

SR = "https://example.invalid/hello/software.cfg"


@pytest.fixture
def master(tmp_path: Path, postgres_url: str) -> Iterator[ServerProcess]:
    server = start(tmp_path, ("master", "start"), database=postgres_url, workers=2)
    try:
        yield server
    finally:
        server.stop()


def format_computer(url: str, computer: str, count: int, start_at: int = 0) -> None:
    partitions = [{"partition_id": f"slappart{i}",
                   "ip_list": [{"ip-address": f"10.0.{i // 200}.{i % 200 + 1}"}]}
                  for i in range(start_at + count)]
    with MasterClient(url) as client:
        client.format_compute_node(computer, partitions)


def test_master_init_creates_and_migrates(tmp_path: Path, postgres_url: str) -> None:
    config = write_config(tmp_path, 1, database=postgres_url)
    for _ in range(2):
        result = subprocess.run([SLAPOS, "master", "init", "--cfg", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "database ready at revision" in result.stdout


def test_master_refuses_sqlite_with_several_workers(tmp_path: Path) -> None:
    config = write_config(tmp_path, 1, database=str(tmp_path / "c.db"), workers=2)
    result = subprocess.run([SLAPOS, "master", "start", "--cfg", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "use PostgreSQL" in result.stderr


def test_parallel_requests_over_http_are_atomic(master: ServerProcess) -> None:
    format_computer(master.url, "COMP-1", 20)

    def request(title: str) -> dict:
        with MasterClient(master.url) as client:
            return client.request_instance(title, SR)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(request, [f"i{n:02d}" for n in range(50)]))
    allocated = [a["compute_partition_id"] for a in answers if a["compute_partition_id"]]
    assert len(allocated) == 20 and len(set(allocated)) == 20
    format_computer(master.url, "COMP-1", 10, start_at=20)
    with MasterClient(master.url) as client:
        trees = client.list_instance_trees()
    assert sum(1 for t in trees if t["compute_partition_id"]) == 30


def test_wait_for_change_wakes_waiters_on_every_worker(master: ServerProcess) -> None:
    format_computer(master.url, "COMP-W", 2)
    with MasterClient(master.url) as client:
        generation = client.get_compute_node_state("COMP-W")["generation"]
    results: list[dict] = []

    def wait() -> None:
        with MasterClient(master.url) as client:
            results.append(client.wait_compute_node_change("COMP-W", generation, timeout=30))

    waiters = [threading.Thread(target=wait) for _ in range(6)]
    for waiter in waiters:
        waiter.start()
    threading.Event().wait(1.0)  # let them all block on the server
    with MasterClient(master.url) as client:
        client.request_instance("wake-up", SR, sla_parameters={"computer_guid": "COMP-W"})
    for waiter in waiters:
        waiter.join(timeout=20)
    assert len(results) == 6
    assert all(r["changed"] and r["generation"] > generation for r in results)
