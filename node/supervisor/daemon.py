"""The node's supervisord seen from the node: start or adopt it, shut it down, and make it run
each partition's programs.

`Supervisor` talks to supervisord over the socket (`node.supervisor.rpc`) with a deadline on every
call. A group is restarted when its definition changes, including the sha256 of a wrapper written
in the partition's file (`node.supervisor.config`): supervisord alone would not see that change, so
`apply` restarts the group whenever it rewrites the file. Programs never restart by themselves
(``autorestart=false``): the next node pass does it.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import Faults

from partita.node.config import NodeConfig
from partita.node.errors import SupervisorError
from partita.node.layout import WATCH_SUFFIX
from partita.node.supervisor.config import (
    STOP_WAIT_SECONDS,
    WATCHDOG_GROUP,
    Program,
    check_names,
    check_socket_path,
    main_config_path,
    render_group,
    render_main_config,
)
from partita.node.supervisor.rpc import RPC_TIMEOUT, SupervisorNotRunning, rpc
from partita.slap.fileio import atomic_write

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROBE_TIMEOUT = 5.0
STOP_TIMEOUT = STOP_WAIT_SECONDS + 15.0
POLL_INTERVAL = 0.05
PRIVATE_DIRECTORY = 0o700  # etc, etc/supervisord.conf.d, var/run, var/log under instance_root

# startProcessGroup's per-process results meaning "spawned" (SPAWN_ERROR: it exited at once)
_STARTED = frozenset({Faults.SUCCESS, Faults.ALREADY_STARTED, Faults.SPAWN_ERROR, Faults.ABNORMAL_TERMINATION})
RUNNING_STATES = frozenset({"STARTING", "RUNNING", "BACKOFF", "STOPPING"})


@dataclass(frozen=True)
class ProcessInfo:
    """What supervisord says about one process of a partition."""

    name: str
    state: str
    pid: int
    exitstatus: int
    watched: bool
    description: str
    never_started: bool = False   # STOPPED and never started by this supervisord ("Not started")


# -- files -------------------------------------------------------------------------------------

def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` at once (a temporary name supervisor's ``*.conf`` does not match)."""
    atomic_write(path, text, mode=0o600)


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
        for directory in (self.config.supervisor_directory, self.include_directory,
                          self.config.instance_root / "var/run", self.config.instance_root / "var/log"):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(PRIVATE_DIRECTORY)  # the node's state: no partition reads it
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
        argv = [sys.executable, "-m", "partita.node.supervisor.supervisord", "-c", str(self.main_config)]
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

    def pid(self) -> int:
        """supervisord's own process id."""
        return int(self._call("supervisor.getPID"))

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
        never_started=str(info["statename"]) == "STOPPED" and not info.get("start"),
    )
