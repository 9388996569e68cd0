"""The text of the node's supervisord configuration: pure functions of the node's configuration
and a partition's programs.

The ``.conf`` files are only ever written with names supervisor accepts and values it parses back
unchanged; anything else is a `SupervisorError`, because one unreadable file would stop supervisord
from reloading any partition. The watchdog (`node.watchdog`) is declared in the main configuration
as the event listener ``partita-watchdog``.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from partita.node.config import NodeConfig
from partita.node.errors import SupervisorError
from partita.node.layout import WATCH_SUFFIX
from partita.slap.fileio import open_beneath, open_regular

WATCHDOG_GROUP = "partita-watchdog"
STOP_WAIT_SECONDS = 60
RUN_START_SECONDS = 1
RUN_START_RETRIES = 3
MAX_SOCKET_PATH = 100

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,99}$")
_UNSAFE_VALUE = re.compile(r"[\r\n\0]|\s[;#]")


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


# -- reading a partition's programs ------------------------------------------------------------

def file_digest(path: Path) -> str:
    """The sha256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry_digest(directory_fd: int, name: str) -> str | None:
    """The digest of a wrapper, read without following a link: a regular file's content, a link's
    target text (its user runs and resolves it; root does not read through it); None for anything
    else."""
    info = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        return hashlib.sha256(b"link:" + os.fsencode(os.readlink(name, dir_fd=directory_fd))).hexdigest()
    if not stat.S_ISREG(info.st_mode):
        return None
    fd = open_regular(name, dir_fd=directory_fd)
    with os.fdopen(fd, "rb") as stream:
        digest = hashlib.sha256()
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def programs_in(partition_dir: Path) -> list[Program]:
    """The programs of a partition: every regular file (or link) of ``etc/service`` (watched) and
    ``etc/run`` (not watched), hidden files excepted, sorted by name.

    The partition's user owns these directories: a link planted above them is not followed, and
    a link in them is a program whose digest is its target's name (`_entry_digest`)."""
    programs = []
    for subdirectory, watched in (("etc/service", True), ("etc/run", False)):
        directory = partition_dir / subdirectory
        try:
            directory_fd = open_beneath(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            for name in sorted(os.listdir(directory_fd)):
                if name.startswith("."):
                    continue
                try:
                    digest = _entry_digest(directory_fd, name)
                except OSError:
                    continue
                if digest is not None:
                    programs.append(Program(name, directory / name, watched, digest))
        finally:
            os.close(directory_fd)
    return programs


# -- where things are --------------------------------------------------------------------------

def main_config_path(config: NodeConfig) -> Path:
    return config.supervisor_directory / "supervisord.conf"


def check_socket_path(config: NodeConfig) -> None:
    """A one-line SupervisorError when the socket path is too long for a unix socket."""
    length = len(os.fsencode(str(config.supervisor_socket)))
    if length > MAX_SOCKET_PATH:
        raise SupervisorError(f"the supervisord socket path {config.supervisor_socket} is too long for a unix "
                              f"socket ({length} > {MAX_SOCKET_PATH} bytes): use a shorter instance_root")


# -- configuration text ------------------------------------------------------------------------

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
    if config.ca_file:
        watchdog += ["--ca-file", config.ca_file]
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


def _restart_policy(program: Program) -> list[str]:
    """A watched service (``etc/service``) is not restarted by supervisord: its exit is the
    instance's status (the watchdog tells the master, the next pass restarts it; during a master
    outage the daemon restarts it, `node.daemon`). An ``etc/run`` program is restarted by
    supervisord itself whenever it dies with a status other than 0, master or not (issue 10): one
    that dies within a second of starting is retried three times, then left FATAL (no crash loop)."""
    if program.watched:
        return ["autorestart=false", "startsecs=0", "startretries=0"]
    return ["autorestart=unexpected", f"startsecs={RUN_START_SECONDS}", f"startretries={RUN_START_RETRIES}"]


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
        *_restart_policy(program),
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
