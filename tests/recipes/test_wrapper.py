"""partita:wrapper, through real buildout runs and by running the scripts it writes."""
from __future__ import annotations

import re
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, run_buildout, wait_until

SCRIPT_TIMEOUT = 10


def write_profile(directory: Path, *lines: str, parts: str = "service") -> Path:
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", f"parts = {parts}", "newest = false",
        "[service]", "recipe = partita:wrapper", "wrapper-path = ${buildout:directory}/etc/service/app",
        *lines,
    ]) + "\n")
    return directory / "etc" / "service" / "app"


def run_script(path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(path), *arguments], capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
                          env={"PATH": "/usr/bin:/bin"})


def hash_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith("# hash-files sha256: "))


def test_the_script_execs_the_command_with_its_arguments_quoted(toolchain: Toolchain, tmp_path: Path) -> None:
    wrapper = write_profile(
        tmp_path, """command-line = printf '%s|' "two words" '$HOME' 'it''s' "a;b" ${buildout:directory}""",
        "environment =", "    GREETING=Hello world", "    QUOTE=it's $HOME",
    )
    check_ok(run_buildout(toolchain, tmp_path))
    assert stat.S_IMODE(wrapper.stat().st_mode) == 0o750
    result = run_script(wrapper, "extra arg")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"two words|$HOME|its|a;b|{tmp_path}|extra arg|"
    text = wrapper.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "export GREETING='Hello world'\n" in text
    environment = write_profile(tmp_path, "command-line = /bin/sh -c 'echo \"$GREETING/$QUOTE\"'",
                                "environment =", "    GREETING=Hello world", "    QUOTE=it's $HOME")
    check_ok(run_buildout(toolchain, tmp_path))
    assert run_script(environment).stdout == "Hello world/it's $HOME\n"


def test_hash_files_change_the_script_when_their_content_changes(toolchain: Toolchain, tmp_path: Path) -> None:
    config = tmp_path / "etc" / "app.conf"
    config.parent.mkdir()
    config.write_text("greeting = Hello\n")
    wrapper = write_profile(tmp_path, "command-line = /bin/true", f"hash-files = {config}")
    check_ok(run_buildout(toolchain, tmp_path))
    first = hash_line(wrapper)
    assert re.fullmatch(r"# hash-files sha256: [0-9a-f]{64}", first)
    check_ok(run_buildout(toolchain, tmp_path))
    assert hash_line(wrapper) == first  # same content, same script
    config.write_text("greeting = Bonjour\n")  # the buildout options do not change: update()
    check_ok(run_buildout(toolchain, tmp_path))
    assert hash_line(wrapper) != first


def test_hash_files_must_exist(toolchain: Toolchain, tmp_path: Path) -> None:
    wrapper = write_profile(tmp_path, "command-line = /bin/true", f"hash-files = {tmp_path}/missing.conf")
    check_fails(run_buildout(toolchain, tmp_path), "[service]", "cannot read hash-files", "missing.conf")
    assert not wrapper.exists()


def test_wait_for_files_waits_then_gives_up(toolchain: Toolchain, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    wrapper = write_profile(tmp_path, "command-line = echo started", f"wait-for-files = {flag}",
                            "wait-for-files-timeout = 5")
    check_ok(run_buildout(toolchain, tmp_path))
    timer = threading.Timer(0.5, flag.touch)
    timer.start()
    started = time.monotonic()
    result = run_script(wrapper)
    timer.join()
    assert (result.returncode, result.stdout) == (0, "started\n")
    assert time.monotonic() - started >= 0.4

    impatient = write_profile(tmp_path, "command-line = echo started", f"wait-for-files = {tmp_path}/never",
                              "wait-for-files-timeout = 0.3")
    check_ok(run_buildout(toolchain, tmp_path))
    result = run_script(impatient)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"gave up after 0.3s waiting for: {tmp_path}/never"


def test_pidfile_refuses_a_second_copy(toolchain: Toolchain, tmp_path: Path) -> None:
    pidfile = tmp_path / "var" / "run" / "app.pid"
    wrapper = write_profile(tmp_path, "command-line = sleep 30", f"pidfile = {pidfile}")
    check_ok(run_buildout(toolchain, tmp_path))
    first = subprocess.Popen([str(wrapper)], env={"PATH": "/usr/bin:/bin"})
    try:
        wait_until(lambda: pidfile.is_file() and pidfile.read_text().strip() == str(first.pid))
        second = run_script(wrapper)
        assert second.returncode == 1
        assert f"already running with pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()


def test_removing_the_part_removes_the_script(toolchain: Toolchain, tmp_path: Path) -> None:
    wrapper = write_profile(tmp_path, "command-line = /bin/true")
    check_ok(run_buildout(toolchain, tmp_path))
    write_profile(tmp_path, "command-line = /bin/true", parts="")
    check_ok(run_buildout(toolchain, tmp_path))
    assert not wrapper.exists()


@pytest.mark.parametrize(("lines", "expected"), [
    ([], "needs option 'command-line'"),
    (["command-line = echo 'unclosed"], "cannot split command-line: No closing quotation"),
    (["command-line = /bin/true", "environment = 1BAD=x"], "environment lines must be NAME=value"),
    (["command-line = /bin/true", "wait-for-files = x", "wait-for-files-timeout = soon"],
     "option 'wait-for-files-timeout' must be a number"),
])
def test_bad_options_are_one_line_errors(toolchain: Toolchain, tmp_path: Path, lines: list[str],
                                         expected: str) -> None:
    wrapper = write_profile(tmp_path, *lines)
    check_fails(run_buildout(toolchain, tmp_path), "[service]", expected)
    assert not wrapper.exists()


def test_wrapper_path_is_required(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "buildout.cfg").write_text(
        "[buildout]\nparts = service\nnewest = false\n[service]\nrecipe = partita:wrapper\ncommand-line = ls\n")
    check_fails(run_buildout(toolchain, tmp_path), "[service] needs option 'wrapper-path'")
