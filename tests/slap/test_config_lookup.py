"""Which configuration file a command reads without ``--cfg`` (issue 11): one order for every
command (`slap.config.find_config_file`), and `slapos configure local` writes where it looks."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from partita.slap import config
from partita.slap.config import config_candidates, find_config_file
from partita.slap.errors import ConfigurationError
from tests.support.server import SLAPOS, free_port

SR = "https://example.invalid/hello/software.cfg"
HOME = Path("/home/someone")


def test_cfg_then_the_variable_then_the_defaults() -> None:
    assert config_candidates("x.cfg", client=True, environ={"SLAPOS_CLIENT_CONFIGURATION": "/c"}, home=HOME) == (
        [Path("x.cfg")], "--cfg")
    assert config_candidates("~/a.cfg", client=False, environ={}, home=HOME) == ([HOME / "a.cfg"], "--cfg")
    assert config_candidates(None, client=True, environ={"SLAPOS_CLIENT_CONFIGURATION": "~/c.cfg",
                                                         "SLAPOS_CONFIGURATION": "/n"}, home=HOME) == (
        [HOME / "c.cfg"], "$SLAPOS_CLIENT_CONFIGURATION")
    assert config_candidates(None, client=False, environ={"SLAPOS_CLIENT_CONFIGURATION": "/c",
                                                          "SLAPOS_CONFIGURATION": "/n.cfg"}, home=HOME) == (
        [Path("/n.cfg")], "$SLAPOS_CONFIGURATION")
    user, system = HOME / ".slapos" / "slapos.cfg", Path("/etc/opt/slapos/slapos.cfg")
    assert config_candidates(None, client=False, environ={"SLAPOS_CONFIGURATION": ""}, home=HOME) == (
        [user, system], "default")
    assert config_candidates(None, client=True, environ={}, home=HOME) == (
        [HOME / ".slapos" / "slapos-client.cfg", user, system], "default")


def test_the_first_default_that_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SLAPOS_CONFIGURATION", raising=False)
    monkeypatch.delenv("SLAPOS_CLIENT_CONFIGURATION", raising=False)
    (tmp_path / ".slapos").mkdir()
    local = tmp_path / ".slapos" / "slapos.cfg"
    local.write_text("[slapos]\n")
    assert find_config_file(None, client=False) == local
    assert find_config_file(None, client=True) == local  # no client file: the local one
    client = tmp_path / ".slapos" / "slapos-client.cfg"
    client.write_text("[slapos]\n")
    assert find_config_file(None, client=True) == client
    assert find_config_file(None, client=False) == local  # the node never reads the client's file


def test_no_file_anywhere_is_one_line_naming_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "etc" / "slapos.cfg"  # this machine may have a node configuration
    monkeypatch.setattr(config, "NODE_DEFAULT", str(system))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SLAPOS_CONFIGURATION", raising=False)
    with pytest.raises(ConfigurationError) as error:
        find_config_file(None, client=False)
    assert str(error.value) == (
        f"no configuration file found (looked for {tmp_path}/.slapos/slapos.cfg, {system}); "
        "give one with --cfg, or write one with slapos configure local")
    system.parent.mkdir()
    system.write_text("[slapos]\n")
    assert find_config_file(None, client=False) == system


def test_a_missing_file_named_by_the_variable_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "SLAPOS_CONFIGURATION": str(tmp_path / "gone.cfg")}
    done = subprocess.run([SLAPOS, "proxy", "show"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    assert done.stderr == (f"slapos: error: configuration file not found: {tmp_path / 'gone.cfg'} "
                           "(named by $SLAPOS_CONFIGURATION)\n")


def clean_env(home: Path) -> dict[str, str]:
    """No SLAPOS_* variable, HOME as given."""
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "HOME": str(home)}


def run_as(user: str | None, home: Path, *args: str, slapos: str = SLAPOS, check: bool = True,
           ) -> subprocess.CompletedProcess[str]:
    env = clean_env(home)
    command = [slapos, *args] if user is None else ["runuser", "-u", user, "--", "env", f"HOME={home}", slapos, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=home)
    if check and done.returncode != 0:
        raise AssertionError(f"slapos {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def start_proxy(user: str | None, home: Path, slapos: str = SLAPOS) -> subprocess.Popen:
    """`slapos proxy start` without --cfg, as `user`, until its ready file names it."""
    ready = home / ".slapos" / "proxy.ready"
    env = clean_env(home)
    prefix = [] if user is None else ["runuser", "-u", user, "--", "env", f"HOME={home}"]
    process = subprocess.Popen([*prefix, slapos, "proxy", "start", "--ready-file", str(ready)], env=env, cwd=home,
                               stdout=subprocess.DEVNULL, stderr=open(home / "proxy.log", "wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ready.exists() and started_by(json.loads(ready.read_text())["pid"], process.pid):
            return process
        assert process.poll() is None, (home / "proxy.log").read_text()
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the proxy did not start:\n" + (home / "proxy.log").read_text())


def started_by(pid: int, parent: int) -> bool:
    """Whether `pid` is `parent` or its child (``runuser`` runs the command as its child)."""
    try:
        return pid == parent or int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
    except (OSError, ValueError, IndexError):
        return False


def stop(process: subprocess.Popen, home: Path) -> None:
    """SIGTERM the proxy the ready file names (runuser passes no signal on), then wait for it."""
    ready = home / ".slapos" / "proxy.ready"
    try:
        os.kill(json.loads(ready.read_text())["pid"], signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def test_every_command_finds_the_home_configuration_without_cfg(tmp_path: Path) -> None:
    home = tmp_path
    port = str(free_port())
    written = run_as(None, home, "configure", "local", "--slapos-configuration-directory", str(home / ".slapos"),
                     "--daemon-listen-port", port)
    assert written.stdout.splitlines() == [f"wrote {home}/.slapos/slapos.cfg", "next: slapos proxy start"]
    proxy = start_proxy(None, home)
    try:
        run_as(None, home, "supply", SR, "local_computer")
        assert run_as(None, home, "request", "web", SR, check=False).returncode == 2  # no partition yet: kept
        shown = json.loads(run_as(None, home, "proxy", "show", "--format", "json").stdout)
        assert shown["supplies"][0]["software_release"] == SR
        assert json.loads(run_as(None, home, "info", "web", "--format", "json").stdout)["title"] == "web"
    finally:
        stop(proxy, home)


@pytest.mark.root
def test_an_ordinary_user_configures_locally_and_every_command_finds_it() -> None:
    """As an unprivileged user: `configure local` puts everything under ~/.slapos, and the proxy,
    the node and the client then run without --cfg."""
    from tests.support.node import NODE_USER, node_slapos

    slapos = node_slapos()
    home = Path(tempfile.mkdtemp(prefix="pthome", dir="/tmp"))
    user = pwd.getpwnam(NODE_USER)
    os.chown(home, user.pw_uid, user.pw_gid)
    try:
        port = str(free_port())
        written = run_as(NODE_USER, home, "configure", "local", "--daemon-listen-port", port,
                         "--partition-number", "2", "--ipv4-local-network", "127.0.251.0/24", slapos=slapos)
        config = home / ".slapos" / "slapos.cfg"
        assert written.stdout.splitlines() == [f"wrote {config}", "next: slapos proxy start"]
        text = config.read_text()
        assert f"instance_root = {home}/.slapos/srv/slapgrid" in text
        assert f"software_root = {home}/.slapos/opt/slapgrid" in text
        assert f"database_uri = {home}/.slapos/proxy.db" in text
        proxy = start_proxy(NODE_USER, home, slapos)
        try:
            run_as(NODE_USER, home, "node", "format", slapos=slapos)
            assert (home / ".slapos" / "srv" / "slapgrid" / "slappart1").stat().st_uid == user.pw_uid
            run_as(NODE_USER, home, "supply", SR, "local_computer", slapos=slapos)
            run_as(NODE_USER, home, "request", "web", SR, slapos=slapos)
            info = json.loads(run_as(NODE_USER, home, "info", "web", "--format", "json", slapos=slapos).stdout)
            assert info["partition"] == "slappart0"
            assert (home / ".slapos" / "proxy.db").stat().st_uid == user.pw_uid
        finally:
            stop(proxy, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
