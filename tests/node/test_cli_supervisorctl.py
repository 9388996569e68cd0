"""``slapos node start|stop|restart|status|tail|supervisorctl``: supervisorctl against the node's
supervisord. The real command runs in a subprocess (it replaces itself with supervisorctl); the
argument passing is checked in-process through the exec seam."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from partita.node.cli import supervisor_common
from partita.node.config import NodeConfig
from partita.node.supervisor import Supervisor, main_config_path
from partita.slap.cli.main import cli
from tests.node.test_supervisor import MASTER_URL, node_config, node_root, partition, running_supervisor, \
    short_directory, wait_for, wrapper

__all__ = ["node_root"]  # a fixture, used by name

SLAPOS = str(Path(sys.executable).parent / "slapos")


def write_cfg(root: Path) -> Path:
    cfg = root / "slapos.cfg"
    cfg.write_text(f"[slapos]\ncomputer_id = COMP-test\nmaster_url = {MASTER_URL}\n"
                   f"instance_root = {root / 'srv'}\nsoftware_root = {root / 'opt'}\n")
    return cfg


def slapos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Supervisor, Path]]:
    """A supervisord running the watched service slappart0:hello-web-on-watch; the --cfg file."""
    with short_directory() as root, running_supervisor(node_config(root)) as supervisor:
        config = supervisor.config
        directory = partition(config)
        program = wrapper(directory, "hello-web", "#!/bin/sh\necho hello from the web\nexec sleep 300\n")
        supervisor.apply("slappart0", [program], user=None, home=directory)
        supervisor.start("slappart0")
        wait_for(lambda: "hello from the web" in (directory / ".slappart0_hello-web.log").read_text(),
                 what="the service's output")
        yield supervisor, write_cfg(root)


def test_status_shows_the_services(running: tuple[Supervisor, Path]) -> None:
    _supervisor, cfg = running
    result = slapos("node", "status", "--cfg", str(cfg))
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("slappart0:"))
    assert line.split()[:2] == ["slappart0:hello-web-on-watch", "RUNNING"]
    assert "partita-watchdog" in result.stdout


def test_stop_start_and_tail_pass_their_arguments(running: tuple[Supervisor, Path]) -> None:
    supervisor, cfg = running
    result = slapos("node", "tail", "--cfg", str(cfg), "-100", "slappart0:hello-web-on-watch")
    assert result.returncode == 0 and "hello from the web" in result.stdout
    assert slapos("node", "stop", "slappart0:*", "--cfg", str(cfg)).returncode == 0
    assert [p.state for p in supervisor.processes("slappart0")] == ["STOPPED"]
    assert slapos("node", "status", "slappart0:*", "--cfg", str(cfg)).returncode == 3  # not running
    assert slapos("node", "restart", "slappart0:*", "--cfg", str(cfg)).returncode == 0
    assert [p.state for p in supervisor.processes("slappart0")] == ["RUNNING"]
    result = slapos("node", "supervisorctl", "--cfg", str(cfg), "pid")
    assert result.returncode == 0 and result.stdout.strip() == str(supervisor._call("supervisor.getPID"))


def test_supervisord_down_is_one_line_and_exit_1(node_root: Path) -> None:
    cfg = write_cfg(node_root)
    result = slapos("node", "status", "--cfg", str(cfg))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"slapos: error: the node's supervisord is not running (socket {node_root / 'srv' / 'sv.sock'})"]


@pytest.mark.parametrize("args, passed", [
    (["tail", "-f", "slappart0:hello-web-on-watch"], ["tail", "-f", "slappart0:hello-web-on-watch"]),
    (["tail", "-1600", "slappart0:x"], ["tail", "-1600", "slappart0:x"]),
    (["status"], ["status"]),
    (["start", "slappart0:*"], ["start", "slappart0:*"]),
    (["stop", "all"], ["stop", "all"]),
    (["restart", "slappart0:a", "slappart0:b"], ["restart", "slappart0:a", "slappart0:b"]),
    (["supervisorctl"], []),
    (["supervisorctl", "maintail", "-f"], ["maintail", "-f"]),
])
def test_arguments_reach_supervisorctl(running: tuple[Supervisor, Path], monkeypatch: pytest.MonkeyPatch,
                                       args: list[str], passed: list[str]) -> None:
    supervisor, cfg = running
    calls: list[list[str]] = []
    monkeypatch.setattr(supervisor_common, "_exec", lambda path, argv: calls.append(list(argv)))
    result = CliRunner().invoke(cli, ["node", *args, "--cfg", str(cfg)])
    assert result.exit_code == 0, result.output
    config: NodeConfig = supervisor.config
    assert calls == [[sys.executable, "-m", "supervisor.supervisorctl", "-c", str(main_config_path(config)),
                      *passed]]
