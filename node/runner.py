"""Subprocesses the node runs for software releases and partitions.

Every run has a deadline (past it, the whole process group gets SIGTERM, then SIGKILL), a clean
environment (an explicit PATH, HOME set by the caller, nothing inherited but the locale), no
inherited descriptors, its own session, an optional other user (root mode), and its output both
appended to a log file and kept as a tail for status reasons.

Stopping (`interrupt`, from the node's SIGINT/SIGTERM handler): the process groups of every
subprocess running now get SIGTERM, then SIGKILL after `INTERRUPT_GRACE`; `run` raises
`Interrupted` (no failure to report) for those, and for any it would start afterwards.

The log and pid files often live in a partition's ``.slapgrid``, which its user may swap for a
link: they are opened through `partita.slap.fileio` (no planted link followed, no FIFO or hard
link written into), and a log that cannot be opened so is a `NodeError`, not a write elsewhere.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from partita.node.errors import CommandFailed, Interrupted, NodeError
from partita.slap.fileio import open_regular, walk_directory, write_at

log = logging.getLogger(__name__)

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TAIL_LINES = 30
KILL_GRACE = 5.0
INTERRUPT_GRACE = 1.0

_running: dict[int, subprocess.Popen] = {}   # pid -> the subprocesses `run` waits for now
_interrupted = threading.Event()


@dataclass(frozen=True)
class RunAs:
    """The unix identity a subprocess runs as; None fields mean "the node's own"."""

    name: str
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()

    @property
    def switches(self) -> bool:
        return self.uid is not None and self.uid != os.geteuid()


def clean_environment(home: Path, run_as: RunAs, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a build or a buildout: nothing leaks from the node's."""
    env = {
        "PATH": PATH, "HOME": str(home), "USER": run_as.name, "LOGNAME": run_as.name,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONNOUSERSITE": "1", "TMPDIR": "/tmp",
        "SHELL": "/bin/sh",
    }
    env.update(extra or {})
    return env


@dataclass
class Outcome:
    returncode: int
    tail: str
    timed_out: bool = False
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


def kill_leftover(pid_file: Path, uid: int | None = None) -> None:
    """Kill the process group a previous node recorded in `pid_file` (it died mid-run), if its
    leader still runs as `uid` (the node's own by default)."""
    try:
        fd = open_regular(pid_file)
        with os.fdopen(fd, "rb") as stream:
            pgid = int(stream.read(64).split()[0])
        owner = Path(f"/proc/{pgid}").stat().st_uid
    except (OSError, ValueError, IndexError):
        _unlink(pid_file)
        return
    if pgid > 1 and owner == (os.geteuid() if uid is None else uid):
        try:
            os.killpg(pgid, signal.SIGKILL)
            log.warning("killed the leftover process group %s recorded in %s", pgid, pid_file)
        except (ProcessLookupError, PermissionError):
            pass
    _unlink(pid_file)


def _unlink(path: Path) -> None:
    """Remove `path` (a link itself, never its target; nothing through a planted link above it)."""
    try:
        parent = walk_directory(path.parent)
    except OSError:
        return
    try:
        os.unlink(path.name, dir_fd=parent)
    except OSError:
        pass
    finally:
        os.close(parent)


def _write_pid(pid_file: Path, pid: int) -> None:
    try:
        with contextlib.closing(_Directory(pid_file.parent)) as parent:
            write_at(parent.fd, pid_file.name, f"{pid}\n", mode=0o644)
    except OSError as error:
        log.warning("cannot record the process group in %s: %s", pid_file, error.strerror)


class _Directory:
    def __init__(self, path: Path) -> None:
        self.fd = walk_directory(path)

    def close(self) -> None:
        os.close(self.fd)


def open_log(log_path: Path) -> BinaryIO:
    """`log_path` opened for appending: a new file or a regular file with one name, reached
    without following a planted link (a NodeError otherwise)."""
    try:
        fd = open_regular(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:
        raise NodeError(f"cannot open the log {log_path}: its directory is missing") from None
    except OSError as error:
        raise NodeError(f"cannot open the log {log_path}: {error.strerror}") from None
    return os.fdopen(fd, "ab")


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float,
        run_as: RunAs | None = None, log_path: Path | None = None, umask: int = 0o022,
        on_line: Callable[[str], None] | None = None, pid_file: Path | None = None) -> Outcome:
    """Run `command` to completion or until `timeout`; never raises for a failing command.

    With `pid_file`, the process group is recorded there while it runs, and a group left there by
    a node that died mid-run is killed first: a restarted node never runs two builds of one thing.
    """
    if _interrupted.is_set():
        raise Interrupted(f"not running {command[0]}: the node is stopping")
    if pid_file is not None:
        kill_leftover(pid_file, run_as.uid if run_as is not None and run_as.switches else None)
    switch = run_as is not None and run_as.switches
    started = time.monotonic()
    lines: deque[str] = deque(maxlen=TAIL_LINES)
    logfile = open_log(log_path) if log_path is not None else None
    try:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, close_fds=True, start_new_session=True, umask=umask,
            user=run_as.uid if switch else None, group=run_as.gid if switch else None,
            extra_groups=list(run_as.groups) if switch else None,
        )
    except OSError as error:
        if logfile:
            logfile.close()
        return Outcome(127, f"cannot run {command[0]}: {error.strerror or error}")
    _running[process.pid] = process
    if _interrupted.is_set():  # the stop came while it started
        _signal_group(process.pid, signal.SIGKILL)
    if pid_file is not None:
        _write_pid(pid_file, process.pid)
    reader = threading.Thread(target=_pump, args=(process, lines, logfile, on_line), daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process)
    finally:
        _running.pop(process.pid, None)
    reader.join(timeout=2 * INTERRUPT_GRACE if _interrupted.is_set() else KILL_GRACE)
    if logfile:
        logfile.close()
    if pid_file is not None:
        _unlink(pid_file)
    elapsed = time.monotonic() - started
    log.debug("%s exited %s after %.2fs", command[0], process.returncode, elapsed)
    if _interrupted.is_set():
        raise Interrupted(f"{command[0]} was stopped: the node is stopping")
    tail = "\n".join(lines)
    if timed_out:
        tail = (tail + "\n" if tail else "") + f"(stopped after the {timeout:g}s deadline)"
    return Outcome(process.returncode if not timed_out else -1, tail, timed_out, lines)


def check(outcome: Outcome, what: str) -> None:
    """Raise CommandFailed (with the output's tail) unless the run succeeded."""
    if outcome.timed_out:
        raise CommandFailed(f"{what} ran past its deadline", outcome.tail)
    if outcome.returncode != 0:
        raise CommandFailed(f"{what} failed with exit status {outcome.returncode}", outcome.tail)


def _pump(process: subprocess.Popen, lines: deque[str], logfile: object,
          on_line: Callable[[str], None] | None) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        if logfile is not None:
            logfile.write(raw)  # type: ignore[attr-defined]
            logfile.flush()  # type: ignore[attr-defined]
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            lines.append(line)
            if on_line is not None:
                on_line(line)
    process.stdout.close()


def interrupt() -> list[int]:
    """Stop every subprocess `run` is waiting for now (SIGTERM to its process group, SIGKILL
    `INTERRUPT_GRACE` later) and refuse to start any other; the process groups signalled. Safe
    to call from a signal handler: it only sends signals and starts a timer thread."""
    _interrupted.set()
    groups = list(_running)
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    if groups:
        timer = threading.Timer(INTERRUPT_GRACE, lambda: [_signal_group(g, signal.SIGKILL) for g in groups])
        timer.daemon = True
        timer.start()
    return groups


def interrupted() -> bool:
    """Whether `interrupt` was called in this process."""
    return _interrupted.is_set()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            # the leader is gone; make sure nothing of its group survives
            os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return
