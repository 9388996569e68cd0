"""partita:free-port: the pure rule, and real buildout runs."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from partita.recipes.free_port import Listener, keep_port, listeners
from tests.recipes.helpers import check_fails, check_ok, run_buildout, wait_until

IP = "127.0.1.1"


def write_profile(directory: Path, *lines: str) -> None:
    (directory / "use.in").write_text("${port:ip} ${port:port}\n")
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", "parts = use", "newest = false",
        "[port]", "recipe = partita:free-port", f"ip = {IP}", *lines,
        "[use]", "recipe = partita:template", "url = use.in", "output = use.txt",
    ]) + "\n")


def chosen(directory: Path) -> int:
    ip, port = (directory / "use.txt").read_text().split()
    assert ip == IP
    return int(port)


def listen(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((IP, port))
    sock.listen()
    return sock


@pytest.mark.parametrize(("free", "holders", "kept"), [
    (True, [], True),
    (False, [Listener(IP, 8080, 1000)], True),          # this user's service holds it
    (False, [Listener("0.0.0.0", 8080, 1000)], True),
    (False, [Listener(IP, 8080, 1001)], False),          # another user's process took it
    (False, [Listener("0.0.0.0", 8080, 1001)], False),
    (False, [Listener("127.0.1.2", 8080, 1001)], False),  # bound but no listener seen: choose again
])
def test_keep_port(free: bool, holders: list[Listener], kept: bool) -> None:
    assert keep_port(8080, free, holders, IP, 1000) is kept


def test_listeners_are_read_from_proc() -> None:
    with listen(0) as sock:
        port = sock.getsockname()[1]
        assert Listener(IP, port, os.getuid()) in listeners(4)


def test_a_port_stable_across_runs_even_while_this_user_listens(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path)
    check_ok(run_buildout(toolchain, tmp_path))
    port = chosen(tmp_path)
    assert (tmp_path / "parts" / "port" / "port").read_text() == f"{port}\n"
    with listen(port):  # the service started with it, same user
        check_ok(run_buildout(toolchain, tmp_path))
    assert chosen(tmp_path) == port


def test_a_range_is_honoured(toolchain: Toolchain, tmp_path: Path) -> None:
    with listen(0) as taken:
        low = taken.getsockname()[1]
        write_profile(tmp_path, f"minimum = {low}", f"maximum = {low + 20}")
        check_ok(run_buildout(toolchain, tmp_path))
        assert low < chosen(tmp_path) <= low + 20


@pytest.mark.root
def test_a_port_taken_by_another_user_is_chosen_again(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path)
    check_ok(run_buildout(toolchain, tmp_path))
    port = chosen(tmp_path)
    script = f"import socket,time; s=socket.socket(); s.bind(('{IP}', {port})); s.listen(); time.sleep(60)"
    squatter = subprocess.Popen(["/usr/bin/python3.11", "-c", script], user="nobody")
    try:
        wait_until(lambda: any(entry.port == port for entry in listeners(4)))
        check_ok(run_buildout(toolchain, tmp_path))
        assert chosen(tmp_path) != port
    finally:
        squatter.kill()
        squatter.wait()


@pytest.mark.parametrize(("lines", "expected"), [
    (["ip = nowhere"], "option 'ip' must be an IP address"),
    (["minimum = 9000"], "options 'minimum' and 'maximum' go together"),
    (["minimum = 9000", "maximum = 70000"], "option 'maximum' must be a port"),
])
def test_bad_options_are_one_line(toolchain: Toolchain, tmp_path: Path, lines: list[str], expected: str) -> None:
    write_profile(tmp_path, *lines)
    check_fails(run_buildout(toolchain, tmp_path), "[port]", expected)
