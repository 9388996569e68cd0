"""Real server processes for tests: `slapos proxy start` and `slapos master start` on loopback."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

SLAPOS = str(Path(sys.executable).parent / "slapos")
START_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    config_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def write_config(directory: Path, port: int, *, database: str, computer_id: str = "local_computer",
                 workers: int = 1, authentication: str = "none") -> Path:
    """One SlapOS-format file driving the proxy, the master and the client. The master believes
    every caller (``authentication = none``, plain HTTP on loopback) unless `authentication` is
    ``certificates`` (see `tests.support.secure_master`)."""
    config = directory / "slapos.cfg"
    config.write_text(
        "[slapos]\n"
        f"computer_id = {computer_id}\n"
        f"master_url = http://127.0.0.1:{port}\n"
        "[slapproxy]\n"
        "host = 127.0.0.1\n"
        f"port = {port}\n"
        f"database_uri = {database}\n"
        "[slapmaster]\n"
        "host = 127.0.0.1\n"
        f"port = {port}\n"
        f"database_uri = {database}\n"
        f"workers = {workers}\n"
        "threads = 16\n"
        f"authentication = {authentication}\n"
    )
    return config


def start(directory: Path, command: Sequence[str], *, database: str | None = None,
          workers: int = 1, slapos: str = SLAPOS) -> ServerProcess:
    """Start `slapos <command> --cfg ...` (e.g. ("proxy", "start")) and wait until it answers.
    `slapos`: the command to run (another installation's, for the packaging tests); it runs in
    `directory`, so a checkout in the current directory is not what it imports."""
    port = free_port()
    config = write_config(directory, port, database=database or str(directory / "proxy.db"), workers=workers)
    log_path = directory / f"{'-'.join(command)}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [slapos, *command, "--cfg", str(config)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=directory,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path, config)
    _wait_ready(server)
    return server


def restart(server: ServerProcess) -> ServerProcess:
    """Start the same server again (same configuration, port and database) after `stop()`."""
    with open(server.log_path, "ab") as log:
        process = subprocess.Popen(list(server.process.args), stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=server.config_path.parent)
    again = ServerProcess(server.url, process, server.log_path, server.config_path)
    _wait_ready(again)
    return again


def _wait_ready(server: ServerProcess) -> None:
    """Until `server` answers; a server that never does is stopped, whatever ends the wait."""
    deadline = time.monotonic() + START_DEADLINE
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
            try:
                requests.get(server.url + "/openapi.json", timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):  # bound before it serves: a wait, not a failure
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {START_DEADLINE} s:\n{server.log()}")
    except BaseException:
        server.stop()
        raise
