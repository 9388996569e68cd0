"""The node's supervisord: one per node, shared by every partition, outliving the node's runs.

Layout under ``instance_root`` (as SlapOS)::

    etc/supervisord.conf            the main configuration (written by `ensure_running`)
    etc/supervisord.conf.d/P.conf   one file per partition P: ``[group:P]`` and its programs
    sv.sock                         the XML-RPC unix socket (mode 0700)
    var/run/supervisord.pid         var/log/supervisord.log, var/log/watchdog.log

Each file of ``<partition>/etc/service`` is a *watched* program: its process is named
``<name>-on-watch`` and the watchdog (`node.watchdog`, the event listener declared in the main
configuration) asks the master to process the instance again when it exits. Each file of
``<partition>/etc/run`` is a program that is started but not watched. Programs never restart by
themselves (``autorestart=false``): the next node pass does it.

`Supervisor` talks to supervisord over the socket with a deadline on every call. A group is
restarted when its definition changes, including the sha256 of a wrapper written as a comment in
the partition's file: supervisord alone would not see that change, so `apply` restarts the group
whenever it rewrites the file. The ``.conf`` files are only ever written with names supervisor
accepts and values it parses back unchanged; anything else is a `SupervisorError`, because one
unreadable file would stop supervisord from reloading any partition.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import pwd
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import Faults, SupervisorTransport, UnixStreamHTTPConnection

from partita.node.config import NodeConfig
from partita.node.errors import SupervisorError
from partita.node.layout import WATCH_SUFFIX
from partita.slap.fileio import atomic_write

WATCHDOG_GROUP = "partita-watchdog"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RPC_TIMEOUT = 10.0
PROBE_TIMEOUT = 5.0
STOP_WAIT_SECONDS = 60
STOP_TIMEOUT = STOP_WAIT_SECONDS + 15.0
MAX_SOCKET_PATH = 100
POLL_INTERVAL = 0.05

# startProcessGroup's per-process results meaning "spawned" (SPAWN_ERROR: it exited at once)
_STARTED = frozenset({Faults.SUCCESS, Faults.ALREADY_STARTED, Faults.SPAWN_ERROR, Faults.ABNORMAL_TERMINATION})
RUNNING_STATES = frozenset({"STARTING", "RUNNING", "BACKOFF", "STOPPING"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,99}$")
_UNSAFE_VALUE = re.compile(r"[\r\n\0]|\s[;#]")


class SupervisorNotRunning(SupervisorError):
    """Nothing listens on the node's supervisord socket."""


@dataclass(frozen=True)
class Program:
    """One service of a partition: a file of ``etc/service`` (watched) or ``etc/run``."""

    name: str
    command: Path
    watched: bool
    digest: str

    @property
    def process_name(self) -> str:
        return self.name + WATCH_SUFFIX if self.watched else self.name


@dataclass(frozen=True)
class ProcessInfo:
    """What supervisord says about one process of a partition."""

    name: str
    state: str
    pid: int
    exitstatus: int
    watched: bool
    description: str


# -- reading a partition's programs ------------------------------------------------------------

def file_digest(path: Path) -> str:
    """The sha256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def programs_in(partition_dir: Path) -> list[Program]:
    """The programs of a partition: every regular file of ``etc/service`` (watched) and
    ``etc/run`` (not watched), hidden files excepted, sorted by name."""
    programs = []
    for subdirectory, watched in (("etc/service", True), ("etc/run", False)):
        directory = partition_dir / subdirectory
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            programs.append(Program(entry.name, entry, watched, file_digest(entry)))
    return programs


# -- configuration text (pure) -----------------------------------------------------------------

def _value(value: str, what: str) -> str:
    """`value` as supervisor reads it back: ``%`` doubled; line breaks and inline comments refused."""
    if _UNSAFE_VALUE.search(value):
        raise SupervisorError(f"supervisor cannot take {what} {value!r} (a line break or ' ;'/' #')")
    return value.replace("%", "%%")


def _command(argv: Sequence[str], what: str) -> str:
    return _value(" ".join(shlex.quote(str(arg)) for arg in argv), what)


def _environment(pairs: dict[str, str]) -> str:
    for key, value in pairs.items():
        if '"' in value:
            raise SupervisorError(f"supervisor cannot take the environment value {key}={value!r} (a double quote)")
    return ",".join(f'{key}="{_value(value, "the environment value " + key)}"' for key, value in pairs.items())


def check_names(partition_id: str, programs: Sequence[Program]) -> None:
    """A SupervisorError unless every name is one supervisor (and the watchdog) can take."""
    if not _NAME.match(partition_id) or "+" in partition_id or "@" in partition_id:
        raise SupervisorError(f"supervisor cannot take the partition name {partition_id!r}")
    seen: set[str] = set()
    for program in programs:
        if not _NAME.match(program.name):
            raise SupervisorError(f"{partition_id}: supervisor cannot take the program name {program.name!r} "
                                  "(letters, digits and . _ + @ - only)")
        if not program.watched and program.name.endswith(WATCH_SUFFIX):
            raise SupervisorError(f"{partition_id}: etc/run/{program.name} must not end with {WATCH_SUFFIX}")
        if program.name in seen:
            raise SupervisorError(f"{partition_id}: two programs are named {program.name!r} "
                                  "(etc/service and etc/run)")
        seen.add(program.name)


def render_main_config(config: NodeConfig, python: str = sys.executable) -> str:
    """The text of ``etc/supervisord.conf``."""
    root = config.instance_root
    socket_path = str(config.supervisor_socket)
    watchdog = [python, "-m", "partita.node.watchdog", "--master-url", config.master_url,
                "--computer-id", config.computer_id, "--instance-root", str(root)]
    if config.cert_file and config.key_file:
        watchdog += ["--cert-file", config.cert_file, "--key-file", config.key_file]
    return "\n".join([
        "# The Partita node's supervisord. Written by the node: do not edit.",
        "[unix_http_server]",
        f"file={_value(socket_path, 'the socket path')}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_value(str(root / 'var/log/supervisord.log'), 'the log path')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=5",
        "loglevel=info",
        f"pidfile={_value(str(root / 'var/run/supervisord.pid'), 'the pid file path')}",
        f"childlogdir={_value(str(root / 'var/log'), 'the log directory')}",
        "identifier=partita",
        *([] if config.single_user else ["user=root"]),  # says so, rather than warn about it
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_value(socket_path, 'the socket path')}",
        "",
        f"[eventlistener:{WATCHDOG_GROUP}]",
        f"command={_command(watchdog, 'the watchdog command')}",
        "events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL",
        "autostart=true",
        "autorestart=true",
        "buffer_size=100",
        "stdout_logfile=NONE",
        f"stderr_logfile={_value(str(root / 'var/log/watchdog.log'), 'the log path')}",
        "stderr_logfile_maxbytes=1MB",
        "stderr_logfile_backups=2",
        "",
        "[include]",
        "files = supervisord.conf.d/*.conf",
        "",
    ])


def render_group(partition_id: str, directory: Path, programs: Sequence[Program], *,
                 user: str | None, login: str, home: Path) -> str:
    """The text of ``etc/supervisord.conf.d/<partition_id>.conf``: one group, one program each.

    `user` is written as ``user=`` (root mode); `login` is what USER and LOGNAME say.
    """
    check_names(partition_id, programs)
    ordered = sorted(programs, key=lambda program: program.name)
    lines = [
        f"# Services of {partition_id}. Written by the Partita node: do not edit.",
        f"[group:{partition_id}]",
        "programs=" + ",".join(f"{partition_id}_{program.name}" for program in ordered),
    ]
    for program in ordered:
        # The digest is in the environment, not only in a comment: supervisord then sees a changed
        # wrapper as a changed program itself, even if the node died before restarting it.
        environment = _environment({"USER": login, "LOGNAME": login, "HOME": str(home),
                                    "PARTITA_WRAPPER_SHA256": program.digest})
        lines += ["", f"[program:{partition_id}_{program.name}]"]
        lines += _program_lines(partition_id, directory, program, user, environment)
    return "\n".join(lines) + "\n"


def _program_lines(partition_id: str, directory: Path, program: Program, user: str | None,
                   environment: str) -> list[str]:
    log = directory / f".{partition_id}_{program.name}.log"
    lines = [
        f"command={_command([str(program.command)], 'the command')}",
        f"process_name={program.process_name}",
        f"directory={_value(str(directory), 'the directory')}",
    ]
    if user is not None:
        lines.append(f"user={_value(user, 'the user')}")
    return lines + [
        f"environment={environment}",
        "autostart=false",
        "autorestart=false",
        "startsecs=0",
        "startretries=0",
        "exitcodes=0",
        "stopsignal=TERM",
        f"stopwaitsecs={STOP_WAIT_SECONDS}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={_value(str(log), 'the log path')}",
        "stdout_logfile_maxbytes=100KB",
        "stdout_logfile_backups=1",
    ]


# -- files -------------------------------------------------------------------------------------

def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` at once (a temporary name supervisor's ``*.conf`` does not match)."""
    atomic_write(path, text, mode=0o644)


def _restore(path: Path, previous: str | None) -> None:
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomic(path, previous)


def _current_login() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _alive(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


# -- XML-RPC over the unix socket --------------------------------------------------------------

class _Connection(UnixStreamHTTPConnection):
    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socketfile)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _Transport(SupervisorTransport):
    """supervisor's transport, with a deadline on connecting and on every read."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__(serverurl="unix://" + socket_path)

        def connect() -> _Connection:
            connection = _Connection("localhost", timeout=timeout)
            connection.socketfile = socket_path
            return connection

        self._get_connection = connect


def rpc(socket_path: Path, method: str, *args: Any, timeout: float = RPC_TIMEOUT) -> Any:
    """Call ``method`` (e.g. ``supervisor.getState``) on the supervisord listening on `socket_path`.

    Raises `SupervisorNotRunning` when nothing listens, `SupervisorError` when it does not answer
    in time; a supervisor Fault is passed on as `xmlrpc.client.Fault`.
    """
    transport = _Transport(str(socket_path), timeout)
    proxy = xmlrpc.client.ServerProxy("http://localhost", transport=transport)
    try:
        return getattr(proxy, method)(*args)
    except xmlrpc.client.Fault:
        raise
    except (FileNotFoundError, ConnectionRefusedError):
        raise SupervisorNotRunning(f"the node's supervisord is not running (socket {socket_path})") from None
    except TimeoutError:
        raise SupervisorError(f"the node's supervisord (socket {socket_path}) did not answer {method} "
                              f"within {timeout:g}s") from None
    except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as error:
        raise SupervisorError(f"cannot talk to the node's supervisord (socket {socket_path}): "
                              f"{getattr(error, 'strerror', None) or error}") from None
    finally:
        transport.close()


def main_config_path(config: NodeConfig) -> Path:
    return config.supervisor_directory / "supervisord.conf"


def check_socket_path(config: NodeConfig) -> None:
    """A one-line SupervisorError when the socket path is too long for a unix socket."""
    length = len(os.fsencode(str(config.supervisor_socket)))
    if length > MAX_SOCKET_PATH:
        raise SupervisorError(f"the supervisord socket path {config.supervisor_socket} is too long for a unix "
                              f"socket ({length} > {MAX_SOCKET_PATH} bytes): use a shorter instance_root")


class Supervisor:
    """The node's supervisord, seen from the node. Every method has a deadline."""

    def __init__(self, config: NodeConfig) -> None:
        check_socket_path(config)
        self.config = config
        self.socket = config.supervisor_socket
        self.main_config = main_config_path(config)
        self.include_directory = config.supervisor_directory / "supervisord.conf.d"

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, timeout: float = RPC_TIMEOUT,
              accept: Iterable[int] = ()) -> Any:
        """`rpc`, with the faults in `accept` meaning "already done" (None) and others a SupervisorError."""
        try:
            return rpc(self.socket, method, *args, timeout=timeout)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in set(accept):
                return None
            raise SupervisorError(f"supervisord refused {method}{tuple(args)!r}: {fault.faultString}") from None

    def _state(self, timeout: float = PROBE_TIMEOUT) -> str | None:
        try:
            return str(self._call("supervisor.getState", timeout=timeout)["statename"])
        except SupervisorNotRunning:
            return None

    def running(self) -> bool:
        """Whether supervisord answers on the socket (a SupervisorError if it is there but mute)."""
        return self._state() == "RUNNING"

    def config_path(self, partition_id: str) -> Path:
        return self.include_directory / f"{partition_id}.conf"

    def _reload(self) -> tuple[list[str], list[str], list[str]]:
        """``reloadConfig``: the groups (added, changed, removed) compared with what runs."""
        try:
            [[added, changed, removed]] = rpc(self.socket, "supervisor.reloadConfig", timeout=RPC_TIMEOUT)
        except xmlrpc.client.Fault as fault:
            raise SupervisorError(f"supervisord cannot read its configuration: {fault.faultString}") from None
        return added, changed, removed

    def _add(self, group: str) -> None:
        self._call("supervisor.addProcessGroup", group, accept={Faults.ALREADY_ADDED})

    def _replace(self, group: str) -> None:
        self.stop(group)
        self._call("supervisor.removeProcessGroup", group, accept={Faults.BAD_NAME})
        self._add(group)

    def _group_states(self, group: str) -> list[dict[str, Any]]:
        return [info for info in self._call("supervisor.getAllProcessInfo") if info["group"] == group]

    # -- supervisord itself --------------------------------------------------------------------

    def ensure_running(self, timeout: float = 30.0) -> None:
        """Adopt the supervisord answering on the socket, else write the configuration and start
        one (it daemonizes, so it outlives the node); return once it answers."""
        deadline = time.monotonic() + timeout
        for directory in (self.include_directory, self.config.instance_root / "var/run",
                          self.config.instance_root / "var/log"):
            directory.mkdir(parents=True, exist_ok=True)
        text = render_main_config(self.config)
        changed = _read_text(self.main_config) != text
        if changed:
            _write_atomic(self.main_config, text)
        state = self._state(timeout=min(PROBE_TIMEOUT, timeout))
        while state not in (None, "RUNNING") and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)  # shutting down or restarting: wait until it is gone or back
            state = self._state(timeout=min(PROBE_TIMEOUT, timeout))
        if state == "RUNNING":
            if changed:
                self._refresh_watchdog()
            return
        self._launch(deadline, timeout)

    def _launch(self, deadline: float, timeout: float) -> None:
        argv = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.main_config)]
        env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       env=env, cwd=str(self.config.instance_root), close_fds=True)
            try:
                code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
                raise SupervisorError(f"supervisord did not daemonize within {timeout:g}s") from None
            # A failed start (exit status != 0) may be a concurrent start that won: look briefly.
            wait_until = deadline if code == 0 else min(deadline, time.monotonic() + 3.0)
            while time.monotonic() < wait_until:
                if self._state(timeout=min(PROBE_TIMEOUT, timeout)) == "RUNNING":
                    return
                time.sleep(POLL_INTERVAL)
            output.seek(0)
            said = " | ".join(line.strip() for line in output.read().decode(errors="replace").splitlines()
                              if line.strip())[-500:]
        log = self.config.instance_root / "var/log/supervisord.log"
        raise SupervisorError(f"supervisord did not start within {timeout:g}s (exit status {code}"
                              f"{': ' + said if said else ''}); see {log}")

    def _refresh_watchdog(self) -> None:
        """The main configuration changed under a running supervisord: restart the watchdog."""
        added, changed, _removed = self._reload()
        if WATCHDOG_GROUP in changed:
            self._replace(WATCHDOG_GROUP)
        elif WATCHDOG_GROUP in added:
            self._add(WATCHDOG_GROUP)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop supervisord and every program; nothing to do when it is not running."""
        deadline = time.monotonic() + timeout
        try:
            pid = int(self._call("supervisor.getPID", timeout=min(PROBE_TIMEOUT, timeout)))
        except SupervisorNotRunning:
            return
        try:
            self._call("supervisor.shutdown", timeout=min(RPC_TIMEOUT, timeout), accept={Faults.SHUTDOWN_STATE})
        except SupervisorNotRunning:
            return
        except SupervisorError:
            pass  # it may close the connection as it goes: its pid tells
        while _alive(pid):
            if time.monotonic() > deadline:
                raise SupervisorError(f"supervisord (pid {pid}) did not stop within {timeout:g}s")
            time.sleep(POLL_INTERVAL)

    # -- partitions ----------------------------------------------------------------------------

    def apply(self, partition_id: str, programs: list[Program], *, user: str | None, home: Path) -> bool:
        """Make supervisord run `programs` as the group `partition_id` (not started here).

        Writes the partition's file only when its text changes; a new group is added, a changed
        one (a changed wrapper digest too) is stopped, removed and added again. `user` is the
        partition's unix user (ignored in single-user mode). No programs removes the group.
        Returns True when the group's definition changed.
        """
        if not programs:
            existed = self.config_path(partition_id).exists()
            self.remove(partition_id)
            return existed
        effective_user = None if self.config.single_user else user
        text = self._group_text(partition_id, programs, effective_user, home)
        path = self.config_path(partition_id)
        previous = _read_text(path)
        written = previous != text
        if written:
            _write_atomic(path, text)
        try:
            added, changed, _removed = self._reload()
        except SupervisorNotRunning:
            raise  # the file is right: a supervisord started later reads it
        except SupervisorError:
            if written:
                _restore(path, previous)  # never leave a file that stops every reload
            raise
        if partition_id in added:
            self._add(partition_id)
            return True
        if written or partition_id in changed:
            self._replace(partition_id)
            return True
        return False

    def _group_text(self, partition_id: str, programs: Sequence[Program], user: str | None, home: Path) -> str:
        check_names(partition_id, programs)
        directory = self.config.partition_path(partition_id)
        if not directory.is_dir():
            raise SupervisorError(f"{partition_id}: the partition directory {directory} does not exist")
        if user is not None:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise SupervisorError(f"{partition_id}: there is no unix user {user!r}") from None
        return render_group(partition_id, directory, programs, user=user,
                            login=user or _current_login(), home=home)

    def start(self, partition_id: str) -> None:
        """Start every program of the group that is not running; do not wait for them.

        A program that exits at once is not an error here: `processes` shows it EXITED or FATAL
        (and the watchdog sees it). A wrapper that is missing or not executable is a
        SupervisorError. A group supervisord does not know (no programs) has nothing to start.
        """
        results = self._call("supervisor.startProcessGroup", partition_id, False, accept={Faults.BAD_NAME})
        failed = [f"{result['name']} ({result['description']})" for result in results or ()
                  if result["status"] not in _STARTED]
        if failed:
            raise SupervisorError(f"{partition_id}: could not start {', '.join(failed)}")

    def stop(self, partition_id: str) -> None:
        """Stop every program of the group and wait until they are stopped (at most
        ``stopwaitsecs`` and a margin: supervisord kills what does not stop in time)."""
        if self._call("supervisor.stopProcessGroup", partition_id, False, accept={Faults.BAD_NAME}) is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            busy = [info["name"] for info in self._group_states(partition_id) if info["statename"] in RUNNING_STATES]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise SupervisorError(f"{partition_id}: {', '.join(busy)} did not stop within {STOP_TIMEOUT:g}s")
            time.sleep(POLL_INTERVAL)

    def remove(self, partition_id: str) -> None:
        """Stop the group, forget it and delete its file. Idempotent."""
        check_names(partition_id, ())
        self.config_path(partition_id).unlink(missing_ok=True)
        self._reload()
        self.stop(partition_id)
        self._call("supervisor.removeProcessGroup", partition_id, accept={Faults.BAD_NAME})

    def processes(self, partition_id: str) -> list[ProcessInfo]:
        """The processes of the group, by name (none when supervisord does not know it)."""
        return sorted((_process_info(info) for info in self._group_states(partition_id)),
                      key=lambda process: process.name)

    def all_processes(self) -> dict[str, list[ProcessInfo]]:
        """Every group's processes in one call (a pass over many partitions asks once)."""
        grouped: dict[str, list[ProcessInfo]] = {}
        for info in self._call("supervisor.getAllProcessInfo"):
            grouped.setdefault(str(info["group"]), []).append(_process_info(info))
        return {group: sorted(found, key=lambda process: process.name) for group, found in grouped.items()}


def _process_info(info: dict[str, Any]) -> ProcessInfo:
    name = str(info["name"])
    watched = name.endswith(WATCH_SUFFIX)
    return ProcessInfo(
        name=name[: -len(WATCH_SUFFIX)] if watched else name,
        state=str(info["statename"]),
        pid=int(info["pid"]),
        exitstatus=int(info["exitstatus"]),
        watched=watched,
        description=str(info["description"]),
    )
