"""A partition's promises: executables and plugins, results kept, thresholds and periods (node.promises)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from partita.node import promises
from partita.node.runner import RunAs
from partita.node.toolchain import Toolchain

ME = RunAs("me")


def executable(partition: Path, name: str, body: str) -> None:
    folder = partition / "etc" / "promise"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def plugin(partition: Path, name: str, body: str) -> None:
    folder = partition / "etc" / "plugin"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(body)


def test_executable_promises_pass_and_fail_with_their_last_line(tmp_path: Path, toolchain: Toolchain):
    executable(tmp_path, "good", "echo fine")
    executable(tmp_path, "bad", "echo checking; echo 'port 80 closed' >&2; exit 3")
    (tmp_path / "etc" / "promise" / "not-executable").write_text("exit 1")
    results = {r.name: r for r in promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)}
    assert set(results) == {"good", "bad"}
    assert results["good"].ok and results["good"].message == "fine"
    assert not results["bad"].ok and results["bad"].message == "port 80 closed" and results["bad"].failing
    assert [r.name for r in promises.failing(list(results.values()))] == ["bad"]
    assert promises.describe_failure(results["bad"]) == "promise bad failing: port 80 closed"


def test_a_stuck_executable_times_out(tmp_path: Path, toolchain: Toolchain):
    executable(tmp_path, "stuck", "sleep 60")
    started = time.monotonic()
    [result] = promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=1)
    assert time.monotonic() - started < 15
    assert not result.ok and result.message == "timed out after 1s"


def test_plugin_threshold_counts_consecutive_failures(tmp_path: Path, toolchain: Toolchain):
    flag = tmp_path / "healthy"
    plugin(tmp_path, "flaky", f"""
import os
from partita.slap.promise import Promise as Base, PromiseFailed
class Promise(Base):
    failure_threshold = 2
    period = 3600
    def check(self):
        if not os.path.exists({str(flag)!r}):
            raise PromiseFailed("not healthy yet")
        return "healthy"
""")
    first = promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)[0]
    assert not first.ok and first.failures == 1 and not first.failing  # below the threshold
    second = promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)[0]
    assert second.failures == 2 and second.failing and second.message == "not healthy yet"
    flag.touch()
    third = promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)[0]
    assert third.ok and third.failures == 0 and third.period == 3600


def test_only_due_promises_run_again(tmp_path: Path, toolchain: Toolchain):
    counter = tmp_path / "runs"
    plugin(tmp_path, "counted", f"""
class Promise:
    period = 3600
    def __init__(self, config): pass
    def check(self):
        with open({str(counter)!r}, "a") as f:
            f.write("x")
        return "ok"
""")
    promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)
    promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10, only_due=True)
    assert counter.read_text() == "x"  # not due: its last result is reused
    due = promises.next_due(tmp_path)
    assert due is not None and 3500 < due - time.time() <= 3600
    promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)
    assert counter.read_text() == "xx"


def test_a_broken_plugin_is_a_failing_promise(tmp_path: Path, toolchain: Toolchain):
    plugin(tmp_path, "broken", "import no_such_module\n")
    [result] = promises.run_all(tmp_path, toolchain=toolchain, run_as=ME, timeout=10)
    assert result.failing and "cannot load the plugin" in result.message
    assert os.path.exists(tmp_path / ".slapgrid" / "promise" / "broken.json")
