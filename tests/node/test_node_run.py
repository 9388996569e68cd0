"""`slapos node run` as a user runs it (issue 11): it says what it does, one line per step; Ctrl-C
stops it within 2 s with the buildout it started; a toolchain that cannot be built is retried,
never a dead daemon."""
from __future__ import annotations

import configparser
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node import COMPUTER, NodeEnv

pytestmark = pytest.mark.root

SLOW = Path(__file__).parent / "srs" / "slow" / "software.cfg"
SLEEP = "sleep 97.25"  # what the slow release's build runs (a command line no one else runs)
SLOW_INSTANCE = Path(__file__).parent / "srs" / "slow-instance" / "software.cfg"
SLEEP_INSTANCE = "sleep 97.5"  # what its instance buildout runs


def sleeping(command: str = SLEEP) -> list[int]:
    """The pids of the slow release's `sleep`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip() == command.encode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_until(predicate, timeout: float, what: str, output: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen in {timeout:g}s:\n{output.read_text(errors='replace')[-3000:]}")


def start(env: NodeEnv, *options: str) -> tuple[subprocess.Popen, Path]:
    output = env.root / "node-run.out"
    with open(output, "wb") as stream:
        process = subprocess.Popen(env.command(*options, "node", "run", "--cfg", str(env.config_path)),
                                   stdout=stream, stderr=subprocess.STDOUT, env=env._env())
    return process, output


@pytest.fixture
def env() -> Iterator[NodeEnv]:
    env = NodeEnv(partitions=1)
    try:
        env.format()
        yield env
    finally:
        env.close()


def test_ctrl_c_stops_within_two_seconds_and_kills_the_buildout(env: NodeEnv) -> None:
    env.client.supply(COMPUTER, str(SLOW))
    process, output = start(env)
    try:
        wait_until(sleeping, 120, "the slow build's sleep", output)
        text = output.read_text()
        assert f"building {SLOW}" in text.splitlines(), text  # the quiet form: a plain line per step
        assert "INFO" not in text
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert elapsed < 2.0, f"{elapsed:.1f}s\n{text}"
    assert status == 130, text
    assert sleeping() == [], "the buildout's process group survived"
    last = text.strip().splitlines()[-1]
    assert last.startswith("slapos node run: stopped (SIGINT)") and "buildout" in last, text
    assert "Traceback" not in text and "failed" not in text  # an interruption is not a failure


def test_ctrl_c_during_a_deployment_stops_the_instance_buildout(env: NodeEnv) -> None:
    env.supply_and_request("slow", SLOW_INSTANCE)
    env.software()
    process, output = start(env)
    try:
        wait_until(lambda: sleeping(SLEEP_INSTANCE), 120, "the instance buildout's sleep", output)
        assert "deploying slappart0 (slow)" in output.read_text().splitlines(), output.read_text()
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert (status, elapsed < 2.0) == (130, True), f"{status} after {elapsed:.1f}s\n{text}"
    assert sleeping(SLEEP_INSTANCE) == [], "the instance buildout's process group survived"
    assert not env.info("slow")["status_reason"].startswith("buildout failed"), "an interruption was reported"


def bad_toolchain(env: NodeEnv) -> None:
    """Point the node at a Python that does not exist, in a toolchain directory of its own."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(env.config_path)
    parser["slapos"].update({"toolchain_python": "/nonexistent/python3", "toolchain_directory": str(env.root / "tc")})
    with open(env.config_path, "w") as stream:
        parser.write(stream)


def test_a_toolchain_that_cannot_be_built_is_retried_not_a_dead_daemon(env: NodeEnv) -> None:
    bad_toolchain(env)
    process, output = start(env)
    try:
        wait_until(lambda: output.read_text().count("retrying in") >= 2, 30, "two retries", output)
        assert process.poll() is None, output.read_text()
        lines = output.read_text().splitlines()
        retries = [line for line in lines if "retrying in" in line]
        assert retries[0].startswith("ERROR partita.node.daemon: cannot start the node: cannot build the "
                                     "toolchain: /nonexistent/python3 is not an executable Python"), lines
        assert retries[0].endswith("retrying in 5s") and retries[1].endswith("retrying in 10s"), retries
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in output.read_text()


def test_verbose_shows_the_detailed_log(env: NodeEnv) -> None:
    env.client.supply(COMPUTER, str(SLOW))
    process, output = start(env, "-v")
    try:
        wait_until(sleeping, 120, "the slow build's sleep", output)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert f"INFO partita.node.progress: building {SLOW}" in text, text
    assert "INFO partita.node.software: software " in text and "(log: " in text, text
    assert f"\nbuilding {SLOW}\n" not in text  # not twice
