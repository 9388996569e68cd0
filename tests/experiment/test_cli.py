"""Bad input to ``slapos experiment``: one readable line, exit status 1, nothing done or written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SLAPOS = str(Path(sys.executable).parent / "slapos")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SLAPOS, "experiment", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_up_refuses_a_bad_hosts_file_before_doing_anything(tmp_path: Path) -> None:
    (tmp_path / "nodes").write_text("good\n-oProxyCommand=touch${IFS}/tmp/owned\n")
    done = run("up", "--hosts", "nodes", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "slapos: error: line 2: '-oProxyCommand=touch${IFS}/tmp/owned' is not a host name or an IP address"]
    assert not (tmp_path / "partita-experiment").exists()


def test_up_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "nodes").write_text("a\nb\n")
    for options, message in [
        (["--node-setting", "no-value"], "--node-setting 'no-value': KEY=VALUE or SECTION.KEY=VALUE is needed"),
        (["--remote-dir", "relative"], "remote directory 'relative': an absolute path below / without '..'"),
        (["--remote-dir", "/x/{user}"], "unknown placeholder {user}"),
        (["--software", "missing/software.cfg"], "neither an http(s) URL nor a file of this machine"),
        (["--ipv4-network", "10.0.0.0/24"], "at least a /23 is needed"),
    ]:
        done = run("up", "--hosts", "nodes", *options, cwd=tmp_path)
        assert done.returncode == 1, options
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "partita-experiment").exists()


def test_the_other_commands_need_an_experiment(tmp_path: Path) -> None:
    for args in (["status"], ["down"], ["collect", "out"]):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr.strip() == ("slapos: error: no experiment under "
                                       f"{tmp_path / 'partita-experiment'} (run 'slapos experiment up' first, "
                                       "or give --dir)")
    assert not (tmp_path / "out").exists()
