"""`slapos proxy start|show` and `slapos configure local`, as a user runs them (real processes)."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from partita.slap.client import MasterClient
from tests.support.server import SLAPOS, ServerProcess, start

SR = "https://example.invalid/hello/software.cfg"


def run(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([SLAPOS, *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **env} if env else None)
    if check and result.returncode != 0:
        raise AssertionError(f"slapos {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start(tmp_path, ("proxy", "start"))
    try:
        yield server
    finally:
        server.stop()


def format_local(url: str, count: int) -> None:
    partitions = [{"partition_id": f"slappart{i}",
                   "ip_list": [{"ip-address": f"127.0.1.{i + 1}", "network-interface": "lo"}]}
                  for i in range(count)]
    with MasterClient(url) as client:
        client.format_compute_node("local_computer", partitions)


def test_proxy_serves_both_protocols_and_show_prints_them(proxy: ServerProcess) -> None:
    format_local(proxy.url, 2)
    cfg = str(proxy.config_path)
    run("supply", SR, "local_computer", "--cfg", cfg)
    run("request", "hello", SR, "--parameters", "greeting=Bonjour", "--cfg", cfg)
    xml = requests.get(proxy.url + "/getFullComputerInformation",
                       params={"computer_id": "local_computer"}, timeout=10)
    assert xml.status_code == 200 and b"ComputerPartition" in xml.content and b"Bonjour" in xml.content
    shown = json.loads(run("proxy", "show", "--cfg", cfg, "--format", "json").stdout)
    assert [p["state"] for p in shown["partitions"]] == ["busy", "free"]
    assert shown["instances"][0]["title"] == "hello"
    assert shown["instances"][0]["parameters"] == {"greeting": "Bonjour"}
    assert shown["supplies"][0]["software_release"] == SR
    table = run("proxy", "show", "--cfg", cfg, env={"COLUMNS": "240"}).stdout  # wide enough for every cell
    assert "hello" in table and "slappart0" in table and "Bonjour" in table


def test_proxy_binds_loopback_and_answers_unknown_computer_with_404(proxy: ServerProcess) -> None:
    assert proxy.url.startswith("http://127.0.0.1:")
    answer = requests.get(proxy.url + "/getFullComputerInformation", params={"computer_id": "nope"}, timeout=10)
    assert answer.status_code == 404
    known = requests.get(proxy.url + "/getFullComputerInformation",
                         params={"computer_id": "local_computer"}, timeout=10)
    assert known.status_code == 200  # the configured computer answers before it is formatted


def test_proxy_restart_keeps_the_catalog(tmp_path: Path) -> None:
    server = start(tmp_path, ("proxy", "start"))
    try:
        format_local(server.url, 1)
        run("request", "kept", SR, "--cfg", str(server.config_path))
    finally:
        server.stop()
    server = start(tmp_path, ("proxy", "start"))
    try:
        info = json.loads(run("info", "kept", "--cfg", str(server.config_path), "--format", "json").stdout)
        assert info["partition"] == "slappart0"
    finally:
        server.stop()


def test_bad_configuration_is_one_line(tmp_path: Path) -> None:
    missing = run("proxy", "start", "--cfg", str(tmp_path / "nowhere.cfg"), check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"slapos: error: configuration file not found: {tmp_path / 'nowhere.cfg'} (give one with --cfg)"]
    broken = tmp_path / "broken.cfg"
    broken.write_text("[slapos\nmaster_url = x\n")
    result = run("proxy", "show", "--cfg", str(broken), check=False)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    no_db = tmp_path / "nodb.cfg"
    no_db.write_text("[slapos]\ncomputer_id = c\n")
    result = run("proxy", "start", "--cfg", str(no_db), check=False)
    assert result.returncode == 1 and "database_uri is missing" in result.stderr


def test_configure_local_writes_a_working_file_and_never_overwrites(tmp_path: Path) -> None:
    directory = tmp_path / "etc"
    result = run("configure", "local", "--slapos-configuration-directory", str(directory),
                 "--daemon-listen-port", "18123", "--partition-number", "5")
    cfg = directory / "slapos.cfg"
    assert str(cfg) in result.stdout
    text = cfg.read_text()
    assert "master_url = http://127.0.0.1:18123" in text and "partition_amount = 5" in text
    again = run("configure", "local", "--slapos-configuration-directory", str(directory), check=False)
    assert again.returncode != 0 and "--force" in again.stderr
    assert cfg.read_text() == text
    bad = run("configure", "local", "--slapos-configuration-directory", str(tmp_path / "x"),
              "--daemon-listen-port", "70000", check=False)
    assert bad.returncode != 0 and not (tmp_path / "x").exists()


def test_stopping_answers_waiting_nodes_at_once(tmp_path):
    """A node's long poll does not hold the shutdown: SIGTERM answers it and the proxy exits."""
    import time

    proxy = start(tmp_path, ("proxy", "start"))
    try:
        client = MasterClient(proxy.url)
        client.format_compute_node("local_computer", [])
        generation = client.get_compute_node_state("local_computer")["generation"]
        answers = []
        waiter = threading.Thread(target=lambda: answers.append(
            client.wait_compute_node_change("local_computer", generation, timeout=60)))
        waiter.start()
        time.sleep(1.0)
        started = time.monotonic()
        proxy.stop()
        waiter.join(timeout=30)
        assert answers and answers[0]["changed"] is False
        assert time.monotonic() - started < 8
    finally:
        proxy.stop()
