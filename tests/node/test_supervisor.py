"""The node's supervisord (`node.supervisor`): configuration text, the transport, then a real supervisord.

Each test runs its own supervisord under a short directory of /tmp (a unix socket path must stay
under ~100 bytes) and shuts it down in a finalizer. The helpers here are shared by the watchdog and
CLI tests.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from partita.node.config import NodeConfig
from partita.node.errors import SupervisorError
from partita.node.supervisor import (
    Program,
    Supervisor,
    SupervisorNotRunning,
    file_digest,
    main_config_path,
    programs_in,
    render_group,
    render_main_config,
    rpc,
)

T = TypeVar("T")
MASTER_URL = "http://127.0.0.1:9"
SLEEPER = "#!/bin/sh\nexec sleep 300\n"


# -- helpers shared with the other node supervisor tests ---------------------------------------

@contextmanager
def short_directory() -> Iterator[Path]:
    """A short, world-readable directory of /tmp (removed afterwards)."""
    path = Path(tempfile.mkdtemp(prefix="ptsv", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node_root() -> Iterator[Path]:
    with short_directory() as path:
        yield path


def node_config(root: Path, master_url: str = MASTER_URL, computer_id: str = "COMP-test") -> NodeConfig:
    return NodeConfig(computer_id=computer_id, master_url=master_url, instance_root=root / "srv",
                      software_root=root / "opt")


@contextmanager
def running_supervisor(config: NodeConfig) -> Iterator[Supervisor]:
    """A started supervisord, always shut down (killed if it does not stop) at the end."""
    supervisor = Supervisor(config)
    try:
        supervisor.ensure_running(timeout=20)
        yield supervisor
    finally:
        stop_supervisord(config)


def stop_supervisord(config: NodeConfig) -> None:
    try:
        Supervisor(config).shutdown(timeout=20)
    except SupervisorError:
        pid_file = config.instance_root / "var/run/supervisord.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        raise


@pytest.fixture
def supervisor(node_root: Path) -> Iterator[Supervisor]:
    with running_supervisor(node_config(node_root)) as running:
        yield running


def partition(config: NodeConfig, partition_id: str = "slappart0") -> Path:
    path = config.partition_path(partition_id)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def wrapper(partition_dir: Path, name: str, body: str = SLEEPER, *, watched: bool = True) -> Program:
    """Write an executable wrapper in etc/service (watched) or etc/run; its Program."""
    directory = partition_dir / ("etc/service" if watched else "etc/run")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    path.chmod(0o755)
    return Program(name, path, watched, file_digest(path))


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s (last: {value!r})")
        time.sleep(0.05)


def supervisord_pids(config: NodeConfig) -> list[int]:
    """The live supervisord processes using this node's configuration."""
    needle = str(main_config_path(config)).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"supervisor.supervisord" in cmdline and needle in cmdline:
            pids.append(int(entry.name))
    return pids


def state_of(supervisor: Supervisor, partition_id: str = "slappart0") -> dict[str, str]:
    return {process.name: process.state for process in supervisor.processes(partition_id)}


# -- configuration text ------------------------------------------------------------------------

def test_main_config_names_socket_include_and_watchdog(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    text = render_main_config(config, python="/opt/py/bin/python")
    root = config.instance_root
    assert f"file={root}/sv.sock\nchmod=0700" in text
    assert f"pidfile={root}/var/run/supervisord.pid" in text
    assert f"logfile={root}/var/log/supervisord.log" in text
    assert f"serverurl=unix://{root}/sv.sock" in text
    assert "[include]\nfiles = supervisord.conf.d/*.conf" in text
    assert (f"command=/opt/py/bin/python -m partita.node.watchdog --master-url {MASTER_URL} "
            f"--computer-id COMP-test --instance-root {root}") in text
    assert "events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL" in text


def test_the_watchdog_gets_the_nodes_certificate_and_the_masters_ca(tmp_path: Path) -> None:
    config = dataclasses.replace(node_config(tmp_path), key_file="/ssl/c.key", cert_file="/ssl/c.crt",
                                 ca_file="/ssl/ca.crt")
    text = render_main_config(config, python="/opt/py/bin/python")
    assert "--cert-file /ssl/c.crt --key-file /ssl/c.key --ca-file /ssl/ca.crt\n" in text


def test_group_text_watched_run_user_and_quoting(tmp_path: Path) -> None:
    service = Program("hello-web", Path("/p/etc/service/hello-web"), True, "ab" * 32)
    run = Program("init", Path("/p/etc/run/in it%"), False, "cd" * 32)
    text = render_group("slappart0", Path("/p"), [service, run], user="slapuser0", login="slapuser0",
                        home=Path("/home/a,b"))
    assert "[group:slappart0]\nprograms=slappart0_hello-web,slappart0_init\n" in text
    assert "[program:slappart0_hello-web]\n" in text
    assert "process_name=hello-web-on-watch" in text
    assert "process_name=init\n" in text
    assert "command='/p/etc/run/in it%%'" in text
    assert "user=slapuser0" in text
    assert ('environment=USER="slapuser0",LOGNAME="slapuser0",HOME="/home/a,b",'
            f'PARTITA_WRAPPER_SHA256="{"ab" * 32}"') in text
    assert "stdout_logfile=/p/.slappart0_hello-web.log" in text
    for line in ("autostart=false", "exitcodes=0",
                 "stopsignal=TERM", "stopwaitsecs=60", "stopasgroup=true", "killasgroup=true",
                 "redirect_stderr=true", "stdout_logfile_maxbytes=100KB", "stdout_logfile_backups=1"):
        assert line in text
    watched, run = text.split("[program:slappart0_init]")
    assert "autorestart=false\nstartsecs=0\nstartretries=0\n" in watched
    assert "autorestart=unexpected\nstartsecs=1\nstartretries=3\n" in run  # issue 10: restarted by supervisord
    single = render_group("slappart0", Path("/p"), [service], user=None, login="me", home=Path("/p"))
    assert "user=" not in single.replace("USER=", "")
    changed = render_group("slappart0", Path("/p"), [Program("hello-web", service.command, True, "ef" * 32)],
                           user=None, login="me", home=Path("/p"))
    assert changed != single


@pytest.mark.parametrize("name", ["with space", "a:b", "a,b", "a%b", "", ".hidden", "a/b", "x]"])
def test_names_supervisor_cannot_take_are_refused(name: str) -> None:
    program = Program(name, Path("/p/etc/service/x"), True, "0" * 64)
    with pytest.raises(SupervisorError, match="cannot take the program name"):
        render_group("slappart0", Path("/p"), [program], user=None, login="me", home=Path("/p"))


def test_duplicate_and_misleading_names_are_refused() -> None:
    same = [Program("a", Path("/p/etc/service/a"), True, "0"), Program("a", Path("/p/etc/run/a"), False, "0")]
    with pytest.raises(SupervisorError, match="two programs"):
        render_group("slappart0", Path("/p"), same, user=None, login="me", home=Path("/p"))
    fake = [Program("a-on-watch", Path("/p/etc/run/a-on-watch"), False, "0")]
    with pytest.raises(SupervisorError, match="must not end with -on-watch"):
        render_group("slappart0", Path("/p"), fake, user=None, login="me", home=Path("/p"))
    with pytest.raises(SupervisorError, match="partition name"):
        render_group("slap part", Path("/p"), [], user=None, login="me", home=Path("/p"))


def test_long_socket_path_is_one_clear_line(tmp_path: Path) -> None:
    config = node_config(tmp_path / ("x" * 120))
    with pytest.raises(SupervisorError) as caught:
        Supervisor(config)
    message = str(caught.value)
    assert "too long" in message and "\n" not in message


def test_programs_in_lists_service_and_run(tmp_path: Path) -> None:
    web = wrapper(tmp_path, "web")
    init = wrapper(tmp_path, "init", "#!/bin/sh\ntrue\n", watched=False)
    (tmp_path / "etc/service/.swp").write_text("")
    assert programs_in(tmp_path) == [web, init]
    assert programs_in(tmp_path / "missing") == []


# -- the XML-RPC transport ---------------------------------------------------------------------

def test_rpc_says_when_nothing_listens_or_nothing_answers(node_root: Path) -> None:
    path = node_root / "mute.sock"
    with pytest.raises(SupervisorNotRunning, match="not running"):
        rpc(path, "supervisor.getState", timeout=1)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:  # accepts, never answers
        mute.bind(str(path))
        mute.listen(1)
        started = time.monotonic()
        with pytest.raises(SupervisorError, match="did not answer supervisor.getState within 0.5s"):
            rpc(path, "supervisor.getState", timeout=0.5)
        assert time.monotonic() - started < 5


# -- a real supervisord ------------------------------------------------------------------------

def test_ensure_running_starts_one_and_a_second_adopts_it(node_root: Path) -> None:
    config = node_config(node_root)
    with running_supervisor(config) as first:
        pid = first._call("supervisor.getPID")
        assert first.running()
        assert oct(config.supervisor_socket.stat().st_mode & 0o777) == "0o700"
        second = Supervisor(config)
        second.ensure_running(timeout=10)
        assert second._call("supervisor.getPID") == pid
        assert supervisord_pids(config) == [pid]
    assert not Supervisor(config).running()
    Supervisor(config).shutdown()  # nothing left to stop: no error


def test_apply_start_restart_stop_remove(supervisor: Supervisor) -> None:
    directory = partition(supervisor.config)
    program = wrapper(directory, "hello-web")
    assert supervisor.apply("slappart0", [program], user=None, home=directory) is True
    assert state_of(supervisor) == {"hello-web": "STOPPED"}
    supervisor.start("slappart0")
    [running] = wait_for(lambda: [p for p in supervisor.processes("slappart0") if p.state == "RUNNING"],
                         what="hello-web RUNNING")
    assert running.watched and running.pid > 0
    supervisor.start("slappart0")  # already running: nothing to do
    assert supervisor.apply("slappart0", [program], user=None, home=directory) is False
    assert supervisor.processes("slappart0")[0].pid == running.pid

    changed = wrapper(directory, "hello-web", SLEEPER + "# v2\n")
    assert supervisor.apply("slappart0", [changed], user=None, home=directory) is True
    assert state_of(supervisor) == {"hello-web": "STOPPED"}
    supervisor.start("slappart0")
    [restarted] = wait_for(lambda: [p for p in supervisor.processes("slappart0") if p.state == "RUNNING"])
    assert restarted.pid != running.pid

    supervisor.stop("slappart0")
    assert state_of(supervisor) == {"hello-web": "STOPPED"}
    supervisor.remove("slappart0")
    assert supervisor.processes("slappart0") == []
    assert not supervisor.config_path("slappart0").exists()
    supervisor.remove("slappart0")  # idempotent
    supervisor.remove("slappart9")  # never known


def test_run_program_and_a_program_that_exits(supervisor: Supervisor) -> None:
    directory = partition(supervisor.config)
    programs = [wrapper(directory, "crash", "#!/bin/sh\necho bye\nexit 3\n"),
                wrapper(directory, "helper", watched=False)]
    supervisor.apply("slappart0", programs, user=None, home=directory)
    supervisor.start("slappart0")
    wait_for(lambda: state_of(supervisor) == {"crash": "EXITED", "helper": "RUNNING"},
             what="crash EXITED and helper RUNNING")
    crash, helper = supervisor.processes("slappart0")
    assert crash.exitstatus == 3 and crash.watched and not helper.watched
    assert "bye" in (directory / ".slappart0_crash.log").read_text()


def test_supervisord_restarts_a_killed_run_program_itself(supervisor: Supervisor) -> None:
    """Issue 10: an etc/run program killed is started again by supervisord, without the node or
    the master; one that dies at once ends FATAL after a few retries (no crash loop)."""
    directory = partition(supervisor.config)
    programs = [wrapper(directory, "helper", watched=False),
                wrapper(directory, "broken", "#!/bin/sh\nexit 3\n", watched=False)]
    supervisor.apply("slappart0", programs, user=None, home=directory)
    supervisor.start("slappart0")
    [first] = wait_for(lambda: [p for p in supervisor.processes("slappart0") if p.name == "helper"
                                and p.state == "RUNNING"], what="helper RUNNING")
    time.sleep(1.2)  # past startsecs: a death from now on is a crash, not a failed start
    os.kill(first.pid, signal.SIGKILL)
    [again] = wait_for(lambda: [p for p in supervisor.processes("slappart0") if p.name == "helper"
                                and p.state == "RUNNING" and p.pid not in (0, first.pid)],
                       what="helper restarted by supervisord")
    assert again.pid != first.pid
    wait_for(lambda: state_of(supervisor).get("broken") == "FATAL", timeout=30, what="broken FATAL")


def test_empty_program_list_removes_the_group(supervisor: Supervisor) -> None:
    directory = partition(supervisor.config)
    supervisor.apply("slappart0", [wrapper(directory, "web")], user=None, home=directory)
    supervisor.start("slappart0")
    assert supervisor.apply("slappart0", [], user=None, home=directory) is True
    assert supervisor.processes("slappart0") == []
    assert supervisor.apply("slappart0", [], user=None, home=directory) is False
    supervisor.start("slappart0")  # a group supervisord does not know: nothing to start


def test_missing_partition_directory_or_user_is_refused(supervisor: Supervisor) -> None:
    directory = partition(supervisor.config)
    program = wrapper(directory, "web")
    with pytest.raises(SupervisorError, match="does not exist"):
        supervisor.apply("slappart5", [program], user=None, home=directory)
    if not supervisor.config.single_user:
        with pytest.raises(SupervisorError, match="no unix user"):
            supervisor.apply("slappart0", [program], user=f"nobody{uuid.uuid4().hex[:6]}", home=directory)
    assert not supervisor.config_path("slappart0").exists()


def test_programs_outlive_the_object_and_are_adopted(node_root: Path) -> None:
    config = node_config(node_root)
    with running_supervisor(config) as first:
        directory = partition(config)
        first.apply("slappart0", [wrapper(directory, "web")], user=None, home=directory)
        first.start("slappart0")
        [before] = wait_for(lambda: [p for p in Supervisor(config).processes("slappart0") if p.state == "RUNNING"])
        daemon = first._call("supervisor.getPID")
        del first
        again = Supervisor(config)
        again.ensure_running(timeout=10)
        assert again._call("supervisor.getPID") == daemon
        assert again.processes("slappart0") == [before]
        assert again.apply("slappart0", programs_in(directory), user=None, home=directory) is False
        assert again.processes("slappart0")[0].pid == before.pid


@pytest.mark.root
def test_root_mode_runs_the_program_as_the_partition_user(supervisor: Supervisor) -> None:
    user = f"ptsv{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True, timeout=30, capture_output=True)
    try:
        directory = partition(supervisor.config)
        supervisor.apply("slappart0", [wrapper(directory, "web")], user=user, home=directory)
        assert f"user={user}" in supervisor.config_path("slappart0").read_text()
        supervisor.start("slappart0")
        [process] = wait_for(lambda: [p for p in supervisor.processes("slappart0") if p.state == "RUNNING"])
        # RUNNING is said at fork (startsecs=0): wait until the wrapper has exec'd its sleep
        wait_for(lambda: Path(f"/proc/{process.pid}/cmdline").read_bytes().startswith(b"sleep"),
                 what="the wrapper's exec")
        status = Path(f"/proc/{process.pid}/status").read_text()
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        assert uid == int(subprocess.run(["id", "-u", user], check=True, timeout=10, capture_output=True,
                                         text=True).stdout)
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert f"USER={user}".encode() in environ and f"HOME={directory}".encode() in environ
    finally:
        supervisor.remove("slappart0")  # no process of the user left, or userdel refuses
        subprocess.run(["userdel", user], timeout=30, capture_output=True)
    assert user not in Path("/etc/passwd").read_text()


def test_a_missing_wrapper_is_an_error_at_start(supervisor: Supervisor) -> None:
    directory = partition(supervisor.config)
    program = wrapper(directory, "gone")
    supervisor.apply("slappart0", [program], user=None, home=directory)
    program.command.unlink()
    with pytest.raises(SupervisorError, match="could not start gone-on-watch"):
        supervisor.start("slappart0")


def test_an_unreadable_configuration_is_reported_and_ours_not_left_behind(supervisor: Supervisor) -> None:
    directory = partition(supervisor.config)
    broken = supervisor.include_directory / "slappart9.conf"
    broken.write_text("[program:broken]\nstartsecs=soon\n")
    try:
        with pytest.raises(SupervisorError, match="cannot read its configuration"):
            supervisor.apply("slappart0", [wrapper(directory, "web")], user=None, home=directory)
        assert not supervisor.config_path("slappart0").exists()
    finally:
        broken.unlink()
    assert supervisor.apply("slappart0", [wrapper(directory, "web")], user=None, home=directory) is True


def test_a_new_master_url_restarts_the_watchdog_of_an_adopted_supervisord(node_root: Path) -> None:
    def watchdog_command(supervisor: Supervisor) -> str:
        [info] = [i for i in supervisor._call("supervisor.getAllProcessInfo") if i["group"] == "partita-watchdog"]
        try:
            return Path(f"/proc/{info['pid'] or 'none'}/cmdline").read_bytes().decode().replace("\0", " ")
        except FileNotFoundError:
            return ""

    with running_supervisor(node_config(node_root)) as first:
        wait_for(lambda: "--master-url http://127.0.0.1:9 " in watchdog_command(first), what="the watchdog")
        moved = Supervisor(node_config(node_root, master_url="http://127.0.0.1:8"))
        moved.ensure_running(timeout=10)
        assert moved._call("supervisor.getPID") == first._call("supervisor.getPID")
        wait_for(lambda: "--master-url http://127.0.0.1:8 " in watchdog_command(moved), what="the new watchdog")


def test_supervisord_opens_its_logs_without_following_links(tmp_path: Path) -> None:
    """Issue 9: supervisord (root) writes a service's log in its partition: a link or a FIFO a
    partition's user planted there is refused, never written through or blocked on."""
    from partita.node.supervisor.supervisord import open_log

    (tmp_path / "victim").write_text("precious")
    (tmp_path / ".slappart0_web.log").symlink_to(tmp_path / "victim")
    os.mkfifo(tmp_path / "fifo")
    for name in (".slappart0_web.log", "fifo"):
        with pytest.raises(OSError):
            open_log(str(tmp_path / name), "ab")
    assert (tmp_path / "victim").read_text() == "precious"
    with open_log(str(tmp_path / "new.log"), "ab") as stream:
        stream.write(b"one\n")
    with open_log(str(tmp_path / "new.log"), "wb") as stream:  # a rotation truncates
        stream.write(b"two\n")
    assert (tmp_path / "new.log").read_text() == "two\n"


def test_programs_in_does_not_read_through_links(tmp_path: Path) -> None:
    """Issue 9: ``etc/run`` swapped for a link is not listed; a wrapper that is a link is a
    program whose digest is its target's name, not the target's content."""
    outside = tmp_path / "outside"
    (outside / "run").mkdir(parents=True)
    (outside / "run" / "evil").write_text("#!/bin/sh\n")
    partition = tmp_path / "partition"
    (partition / "etc" / "service").mkdir(parents=True)
    (partition / "etc" / "run").symlink_to(outside / "run")
    (partition / "etc" / "service" / "web").symlink_to(outside / "run" / "evil")
    programs = programs_in(partition)
    assert [p.name for p in programs] == ["web"]
    assert programs[0].digest != file_digest(outside / "run" / "evil")
