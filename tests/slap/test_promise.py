"""The promise plugin contract and its runner (slap.promise)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from partita.slap.promise import run
from partita.slap.wire.promise_result import PromiseAnswer, parse_promise_answer


def plugin(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "check.py"
    path.write_text(body)
    return path


def test_passing_plugin_answers_ok_with_its_settings(tmp_path: Path):
    path = plugin(tmp_path, """
from partita.slap.promise import Promise as Base
class Promise(Base):
    period = 5
    failure_threshold = 3
    def check(self):
        return "listening on " + self.config["port"]
config = {"port": "8080"}
""")
    answer, status = run(path)
    assert status == 0
    assert answer == PromiseAnswer(ok=True, message="listening on 8080", period=5.0, timeout=20.0,
                                   failure_threshold=3)


def test_failing_check_gives_its_message_on_one_line(tmp_path: Path):
    path = plugin(tmp_path, """
class Promise:
    def __init__(self, config): pass
    def check(self):
        raise RuntimeError("connection refused\\non 127.0.0.1:8080")
""")
    answer, status = run(path)
    assert status == 0 and answer.ok is False
    assert answer.message == "connection refused on 127.0.0.1:8080"


def test_broken_plugin_file_is_exit_status_2(tmp_path: Path):
    answer, status = run(plugin(tmp_path, "this is not python"))
    assert status == 2 and not answer.ok and "cannot load the plugin" in answer.message
    answer, status = run(plugin(tmp_path, "x = 1"))
    assert status == 2 and "no class Promise" in answer.message


def test_timeout_is_a_failure_and_the_process_exits(tmp_path: Path):
    path = plugin(tmp_path, """
import time
class Promise:
    timeout = 0.5
    def __init__(self, config): pass
    def check(self):
        time.sleep(60)
""")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "partita.slap.promise", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert time.monotonic() - started < 10
    assert result.returncode == 0
    answer = parse_promise_answer(json.loads(result.stdout))
    assert answer.ok is False and answer.message == "timed out after 0.5s"
