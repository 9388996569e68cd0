"""Subprocesses with a deadline, a clean environment and a log (node.runner)."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from partita.node.errors import CommandFailed
from partita.node.runner import RunAs, check, clean_environment, run

ME = RunAs("me")


def test_output_goes_to_log_and_tail(tmp_path: Path):
    log = tmp_path / "out.log"
    outcome = run(["/bin/sh", "-c", "echo one; echo two >&2; exit 3"], cwd=tmp_path,
                  env=clean_environment(tmp_path, ME), timeout=10, log_path=log)
    assert outcome.returncode == 3
    assert outcome.tail == "one\ntwo"
    assert log.read_text() == "one\ntwo\n"
    with pytest.raises(CommandFailed) as caught:
        check(outcome, "the thing")
    assert "exit status 3" in str(caught.value) and caught.value.tail == "one\ntwo"


def test_environment_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SECRET_OF_THE_NODE", "x")
    outcome = run(["/usr/bin/env"], cwd=tmp_path, env=clean_environment(tmp_path, ME), timeout=10)
    names = {line.split("=", 1)[0] for line in outcome.lines}
    assert "SECRET_OF_THE_NODE" not in names
    assert f"HOME={tmp_path}" in outcome.lines


def test_no_descriptor_leaks(tmp_path: Path):
    leaked = os.open(tmp_path / "f", os.O_CREAT | os.O_WRONLY)
    os.set_inheritable(leaked, True)
    try:
        outcome = run(["/bin/ls", "/proc/self/fd"], cwd=tmp_path, env=clean_environment(tmp_path, ME), timeout=10)
    finally:
        os.close(leaked)
    fds = sorted(int(x) for x in outcome.lines)
    assert leaked not in fds and fds[:3] == [0, 1, 2]


def test_deadline_kills_the_whole_group(tmp_path: Path):
    started = time.monotonic()
    marker = tmp_path / "child.pid"
    outcome = run(["/bin/sh", "-c", f"sleep 300 & echo $! > {marker}; wait"], cwd=tmp_path,
                  env=clean_environment(tmp_path, ME), timeout=1)
    assert outcome.timed_out and time.monotonic() - started < 15
    assert "deadline" in outcome.tail
    child = int(marker.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_missing_program_is_a_failure_not_an_exception(tmp_path: Path):
    outcome = run([str(tmp_path / "nope")], cwd=tmp_path, env=clean_environment(tmp_path, ME), timeout=5)
    assert outcome.returncode == 127 and "cannot run" in outcome.tail


def test_a_leftover_group_from_a_dead_node_is_killed_first(tmp_path: Path):
    leftover = subprocess.Popen(["/bin/sleep", "300"], start_new_session=True)
    pid_file = tmp_path / "build.pid"
    pid_file.write_text(f"{leftover.pid}\n")
    outcome = run(["/bin/true"], cwd=tmp_path, env=clean_environment(tmp_path, ME), timeout=10,
                  pid_file=pid_file)
    assert outcome.returncode == 0
    assert leftover.wait(timeout=10) == -9
    assert not pid_file.exists()


def test_a_planted_log_link_is_refused_not_written_through(tmp_path: Path):
    """Issue 9: the buildout log in a partition's ``.slapgrid`` is opened without following links."""
    from partita.node.errors import NodeError

    (tmp_path / "victim").write_text("precious")
    (tmp_path / "build.log").symlink_to(tmp_path / "victim")
    with pytest.raises(NodeError, match="cannot open the log"):
        run(["echo", "hi"], cwd=tmp_path, env={"PATH": "/bin:/usr/bin"}, timeout=5,
            log_path=tmp_path / "build.log")
    assert (tmp_path / "victim").read_text() == "precious"
