"""`slapos proxy start` and `slapos master start` as processes (issue 11): a port in use is one
line and no banner, the ready file names the server that was started, a clean stop kills nothing."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from partita.master.front import REQUEST_DEADLINE
from partita.master.server import GRACEFUL_TIMEOUT
from tests.support.server import SLAPOS, start, write_config


def run_server(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, *args], capture_output=True, text=True, timeout=timeout)


def wait_for(path: Path, process: subprocess.Popen, deadline: float = 30.0) -> dict:
    """The ready file once it names `process` (as `scripts/demo` waits for it)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = json.loads(path.read_text()) if path.exists() else {}
        if found.get("pid") == process.pid:
            return found
        assert process.poll() is None, f"the server exited with {process.returncode}"
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {deadline} s")


@pytest.mark.parametrize("command", [("proxy", "start"), ("master", "start")])
def test_a_port_in_use_is_one_line_and_no_banner(tmp_path: Path, command: tuple[str, str]) -> None:
    first = start(tmp_path, ("proxy", "start"))
    port = first.url.rsplit(":", 1)[1]
    try:
        other = tmp_path / "other"
        other.mkdir()
        config = write_config(other, int(port), database=str(other / "catalog.db"))
        started = time.monotonic()
        done = run_server(*command, "--cfg", str(config), "--ready-file", str(other / "ready"))
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"slapos: error: port {port} on 127.0.0.1 is in use: another server listens there "
            "(stop it, or choose another port)"], done.stderr
        assert done.stdout == ""
        assert time.monotonic() - started < 10  # no retries
        assert sorted(p.name for p in other.iterdir()) == ["slapos.cfg"]  # no catalog, no ready file
        assert first.process.poll() is None  # the first server still serves
    finally:
        first.stop()


def test_the_ready_file_names_the_server_and_goes_with_it(tmp_path: Path) -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    config = write_config(tmp_path, number, database=str(tmp_path / "proxy.db"))
    ready = tmp_path / "ready.json"
    ready.write_text('{"pid": 1, "url": "http://stale/"}')  # left by a server killed earlier
    log = open(tmp_path / "proxy.log", "wb")
    process = subprocess.Popen([SLAPOS, "proxy", "start", "--cfg", str(config), "--ready-file", str(ready)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        found = wait_for(ready, process)
        assert found == {"pid": process.pid, "url": f"http://127.0.0.1:{number}/"}
        assert (tmp_path / "proxy.log").read_text().splitlines()[0] == (
            f"Partita proxy for computer local_computer on http://127.0.0.1:{number}/")
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=15) == 0
        assert not ready.exists()
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


def test_missing_ready_file_directory_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, 1, database=str(tmp_path / "proxy.db"))
    done = run_server("proxy", "start", "--cfg", str(config), "--ready-file", str(tmp_path / "no" / "ready"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"slapos: error: --ready-file {tmp_path / 'no' / 'ready'}: "
                                        "its directory does not exist"]


def test_a_clean_stop_with_open_connections_kills_nothing(tmp_path: Path) -> None:
    """An idle connection and one that never finishes its request hold a stopping worker until the
    front closes them; gunicorn's master must not reach its graceful timeout and SIGKILL it."""
    server = start(tmp_path, ("proxy", "start"))
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
    idle = socket.create_connection((host, port))
    partial = socket.create_connection((host, port))
    partial.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        time.sleep(0.5)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=GRACEFUL_TIMEOUT + 10) == 0
        elapsed = time.monotonic() - started
        assert elapsed < GRACEFUL_TIMEOUT - 1, f"the master waited out its graceful timeout ({elapsed:.1f} s)"
        # and the worker closed them itself, rather than waiting for their request deadline
        assert elapsed < REQUEST_DEADLINE - 2, f"the stop waited for the idle connections ({elapsed:.1f} s)"
        log = server.log()
        assert "SIGKILL" not in log and "Forcing close" not in log, log
    finally:
        idle.close()
        partial.close()
        server.stop()
