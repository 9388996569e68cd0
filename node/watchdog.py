"""The watchdog: a supervisord event listener that asks the master to process an instance again
when one of its watched services (``etc/service/*``, process ``<name>-on-watch``) exits.

supervisord runs it from the node's main configuration::

    python -m partita.node.watchdog --master-url URL --computer-id ID --instance-root DIR

and sends it ``PROCESS_STATE_EXITED`` and ``PROCESS_STATE_FATAL`` events over supervisor's
event listener protocol, spoken by supervisor's own `supervisor.childutils.listener` (``wait`` for
the next event's headers and payload, ``ok`` to acknowledge it) and ``get_headers`` (the payload's
``key:value`` tokens).

For a watched process of group ``P`` it bangs the instance of partition ``P`` at most once per
processed deployment: ``P/.timestamp`` (written by the node after a successful pass) is compared
with ``P/.slapgrid/watchdog-bang``; when they differ, the timestamp is recorded there first and the
instance named by ``P/.slapgrid/instance.json`` (key ``instance_guid``) is banged with the message
``service NAME exited with status N``. The bang makes the master bump the instance tree, and the
next node pass restarts the service.

It never dies on an event it cannot handle (missing files, master down): it writes one line to
stderr (supervisord keeps it in ``var/log/watchdog.log``) and acknowledges the event. Files are
read and written without following symbolic links, since partitions belong to their users.
"""
from __future__ import annotations

import argparse
import errno
import io
import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from supervisor.childutils import get_headers, listener

from partita.node.layout import INSTANCE_FILE, NODE_DIR, TIMESTAMP, WATCH_SUFFIX
from partita.slap.fileio import write_at

EVENTS = ("PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL")
BANG_FILE = "watchdog-bang"
BANG_TIMEOUT = 10.0
RPC_TIMEOUT = 5.0
MAX_FILE_SIZE = 64 * 1024
_PARTITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class WatchdogError(Exception):
    """An event that cannot be acted upon; its message is the line logged."""


@dataclass(frozen=True)
class Settings:
    master_url: str
    computer_id: str
    instance_root: Path
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None

    @property
    def socket(self) -> Path:
        return self.instance_root / "sv.sock"


@dataclass(frozen=True)
class ServiceExit:
    """A watched service of a partition that exited (or could not be started)."""

    partition: str
    service: str
    process: str
    event: str
    pid: int | None


@dataclass(frozen=True)
class Decision:
    bang: bool
    reason: str


# -- pure logic --------------------------------------------------------------------------------

def service_exit(headers: dict[str, str], payload: dict[str, str]) -> ServiceExit | None:
    """The watched service an event is about, or None when the event is not for the watchdog."""
    event = headers.get("eventname", "")
    process = payload.get("processname", "")
    partition = payload.get("groupname", "")
    if event not in EVENTS or not process.endswith(WATCH_SUFFIX) or not _PARTITION.match(partition):
        return None
    service = process[: -len(WATCH_SUFFIX)]
    if not service:
        return None
    pid = payload.get("pid", "")
    return ServiceExit(partition, service, process, event, int(pid) if pid.isdigit() else None)


def decide(deployed: str | None, last_bang: str | None) -> Decision:
    """Bang once per processed deployment (`deployed`: the partition's ``.timestamp``)."""
    if not deployed:
        return Decision(False, "the partition was never deployed (.timestamp missing): no bang")
    if deployed == last_bang:
        return Decision(False, f"already banged for the deployment {deployed}")
    return Decision(True, f"first exit since the deployment {deployed}")


def bang_message(exited: ServiceExit, exitstatus: int | None) -> str:
    if exited.event == "PROCESS_STATE_FATAL":
        return f"service {exited.service} could not be started (FATAL)"
    status = "unknown" if exitstatus is None else str(exitstatus)
    return f"service {exited.service} exited with status {status}"


def instance_guid(text: str | None) -> str:
    """The ``instance_guid`` of an ``instance.json`` text."""
    if text is None:
        raise WatchdogError("no .slapgrid/instance.json: cannot tell which instance to bang")
    try:
        guid = json.loads(text).get("instance_guid")
    except (ValueError, AttributeError):
        raise WatchdogError(".slapgrid/instance.json is not a JSON object") from None
    if not isinstance(guid, str) or not guid:
        raise WatchdogError(".slapgrid/instance.json has no instance_guid")
    return guid


# -- files (no symbolic links followed) --------------------------------------------------------

def _open_directory(path: str | Path, parent: int | None = None) -> int | None:
    """A descriptor of the directory `path` (relative to the descriptor `parent` if given)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise WatchdogError(f"cannot open {path}: {error.strerror}") from None


def _read_at(directory: int | None, name: str, *, link_is_missing: bool = False) -> str | None:
    """The stripped text of a small regular file, None when it is missing (or, with
    `link_is_missing`, a symbolic link: for the watchdog's own file, replaced when written)."""
    if directory is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except FileNotFoundError:
        return None
    except OSError as error:
        if link_is_missing and error.errno == errno.ELOOP:
            return None
        raise WatchdogError(f"cannot read {name}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WatchdogError(f"{name} is not a regular file")
        data = stream.read(MAX_FILE_SIZE + 1)
    if len(data) > MAX_FILE_SIZE:
        raise WatchdogError(f"{name} is larger than {MAX_FILE_SIZE} bytes")
    return data.decode("utf-8", errors="replace").strip()


def _write_at(directory: int, name: str, text: str) -> None:
    """Replace `name` in `directory` by `text` (a new file renamed over it)."""
    try:
        write_at(directory, name, text + "\n", mode=0o644)
    except OSError as error:
        raise WatchdogError(f"cannot write .slapgrid/{name}: {error.strerror}") from None


# -- acting on an event ------------------------------------------------------------------------

BangFunction = Callable[[Settings, str, str, str], None]
StatusFunction = Callable[[Settings, ServiceExit], "int | None"]


def master_bang(settings: Settings, partition: str, guid: str, message: str) -> None:
    """Bang the instance `guid` on the master, as its partition."""
    from partita.slap.client import connect

    with connect(settings.master_url, key_file=settings.key_file, cert_file=settings.cert_file,
                 ca_file=settings.ca_file, partition=(settings.computer_id, partition), timeout=BANG_TIMEOUT) as client:
        client.bang(guid, message)


def supervisor_exit_status(settings: Settings, exited: ServiceExit) -> int | None:
    """The exit status supervisord recorded for the process (None when it cannot tell)."""
    from partita.node.supervisor.rpc import rpc

    try:
        info = rpc(settings.socket, "supervisor.getProcessInfo", f"{exited.partition}:{exited.process}",
                   timeout=RPC_TIMEOUT)
        return int(info["exitstatus"])
    except Exception:  # noqa: BLE001 - the message says "unknown" instead
        return None


def handle_event(settings: Settings, headers: dict[str, str], payload: str, *,
                 bang: BangFunction = master_bang,
                 exit_status: StatusFunction = supervisor_exit_status) -> str:
    """Act on one event; the line to log ("" for an event that does not concern the watchdog)."""
    exited = service_exit(headers, get_headers(payload))
    if exited is None:
        return ""
    where = f"{exited.partition}: {exited.process}"
    try:
        guid, reason = claim_bang(settings.instance_root / exited.partition)
    except WatchdogError as error:
        raise WatchdogError(f"{where} {_verb(exited)}; {error}") from None
    if guid is None:
        return f"{where} {_verb(exited)}; {reason}"
    message = bang_message(exited, exit_status(settings, exited))
    try:
        bang(settings, exited.partition, guid, message)
    except Exception as error:  # noqa: BLE001 - logged, the event is acknowledged
        raise WatchdogError(f"{where}: cannot bang instance {guid}: {error}") from None
    return f"{where}: banged instance {guid}: {message}"


def claim_bang(partition_dir: Path) -> tuple[str | None, str]:
    """Decide for the partition; when it is to be banged, record the deployment's timestamp
    first (at most one bang per deployment) and return the instance's guid, else None and why."""
    partition_fd = _open_directory(partition_dir)
    slapgrid_fd = None
    try:
        slapgrid_fd = _open_directory(NODE_DIR, partition_fd) if partition_fd is not None else None
        deployed = _read_at(partition_fd, TIMESTAMP)
        decision = decide(deployed, _read_at(slapgrid_fd, BANG_FILE, link_is_missing=True))
        if not decision.bang or deployed is None:
            return None, decision.reason
        guid = instance_guid(_read_at(slapgrid_fd, INSTANCE_FILE))
        if slapgrid_fd is not None:  # always so: instance.json was read from it
            _write_at(slapgrid_fd, BANG_FILE, deployed)
        return guid, decision.reason
    finally:
        for fd in (slapgrid_fd, partition_fd):
            if fd is not None:
                os.close(fd)


def _verb(exited: ServiceExit) -> str:
    return "is FATAL" if exited.event == "PROCESS_STATE_FATAL" else "exited"


# -- supervisor's event listener protocol ------------------------------------------------------

def log(stream: TextIO, line: str) -> None:
    stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} partita-watchdog: {line}\n")
    stream.flush()


def run(settings: Settings, stdin: TextIO, stdout: TextIO, stderr: TextIO,
        handler: Callable[[Settings, dict[str, str], str], str] = handle_event) -> None:
    """Serve events until supervisord closes stdin; every event is acknowledged, whatever happens.

    `stdin` must count characters as supervisor counts the payload's ``len``: in bytes (`main`
    reads it as latin-1, one character per byte); the payload is then decoded as UTF-8.
    """
    while True:
        try:
            headers, raw = listener.wait(stdin, stdout)
        except KeyError:
            return  # no header line: supervisord closed stdin
        except ValueError as error:
            raise SystemExit(f"partita-watchdog: bad event header: {error}") from None
        payload = raw.encode("latin-1", errors="replace").decode("utf-8", errors="replace")
        try:
            message = handler(settings, headers, payload)
        except WatchdogError as error:
            message = str(error)
        except Exception as error:  # noqa: BLE001 - never die on one event
            message = f"cannot handle {headers.get('eventname', 'an event')}: {type(error).__name__}: {error}"
        if message:
            log(stderr, message)
        listener.ok(stdout)


def parse_arguments(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m partita.node.watchdog", description=__doc__.splitlines()[0])
    parser.add_argument("--master-url", required=True)
    parser.add_argument("--computer-id", required=True)
    parser.add_argument("--instance-root", required=True, type=Path)
    parser.add_argument("--cert-file")
    parser.add_argument("--key-file")
    parser.add_argument("--ca-file")
    args = parser.parse_args(argv)
    return Settings(args.master_url, args.computer_id, args.instance_root, args.cert_file, args.key_file,
                    args.ca_file)


def main(argv: list[str] | None = None) -> None:
    settings = parse_arguments(argv)
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="latin-1", newline="")
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
    run(settings, stdin, stdout, sys.stderr)


if __name__ == "__main__":
    main()
