"""Deploy one partition (`slapos node instance` does this for each busy partition).

For an instance requested started or stopped:

1. write what the instance's buildout reads: ``.slapgrid/instance.json`` (the instance document,
   its addresses, its shared instances) and ``buildout.cfg`` (the software's ``instance.cfg``
   plus the tail with ``[slap-connection]``, both contracts of `slap.wire`, naming the partition's
   own key and certificate on a node that has certificates, `node.certificates`); link
   ``software_release``;
2. run buildout as the partition's user, in its directory, with the buildout deadline;
3. turn ``etc/service/*`` (watched) and ``etc/run/*`` into programs of the node's supervisord;
   start them (a program whose wrapper changed restarts) or stop them as requested;
4. if started: run the promises (waiting up to ``PROMISE_GRACE`` seconds for services that are
   still starting) and check that no watched service exited and, in root mode, that no socket of
   the partition's user is on another partition's address (`node.listeners`: its services are
   stopped then);
5. on success, send the titles the pass requested (the request transaction written by
   ``partita:request``, `slap.request_transaction`): the master destroys what the partition no
   longer requests;
6. report started / stopped, or the error as the status reason ("buildout failed: …",
   "promise X failing: …", "service X exited …"), and on success record the processed timestamp
   in ``.timestamp``.

`check` is the light path for an unchanged started partition: promises whose period elapsed and
the watched services, reported only when the verdict changes. Its programs that the current
supervisord never started (it was started after the previous one died, with the node: issue 13)
are started first, once the processes the dead one left behind are killed (`revive`).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from partita.node import claims, progress, promises
from partita.node.certificates import PartitionFiles, ensure_partition_certificate
from partita.node.context import NodeContext, PartitionWork
from partita.node.desired import release_digest, stamp
from partita.node.errors import CommandFailed, Interrupted, NodeError
from partita.node.files import node_directory, read_text, read_user_file, remove_file, write_file
from partita.node.layout import INSTANCE_FILE, NODE_DIR, TIMESTAMP
from partita.node.listeners import kill_orphans, kill_squatters, read_listeners, squats
from partita.node.package_index import pip_environment
from partita.node.reason import clip, status_reason
from partita.node.runner import RunAs, check as check_outcome, clean_environment, run
from partita.node.software import is_completed
from partita.node.supervisor import programs_in
from partita.slap import request_transaction
from partita.slap.errors import ClientError
from partita.slap.fileio import open_regular
from partita.slap.states import InstanceState
from partita.slap.wire.connection import buildout_tail, for_instance_file
from partita.slap.wire.instance import NodeInstanceDocument
from partita.slap.wire.instance_file import InstanceFile, render_instance_file
from partita.slap.wire.node_state import ComputePartition

log = logging.getLogger(__name__)

VERDICT_FILE = "verdict.json"
PROMISE_GRACE = 10.0
PROMISE_RETRY = 0.3
EXITED_STATES = ("EXITED", "FATAL", "BACKOFF", "UNKNOWN")


@dataclass(frozen=True)
class Result:
    partition_id: str
    ok: bool
    message: str


# -- what the buildout reads ---------------------------------------------------------------

def instance_file(ctx: NodeContext, work: PartitionWork) -> InstanceFile:
    """What ``.slapgrid/instance.json`` holds for the partition's instance (`slap.wire.instance_file`)."""
    instance = work.instance
    return InstanceFile(
        computer_id=ctx.config.computer_id, partition_id=work.pid, server_url=ctx.config.master_url,
        instance_guid=instance.instance_guid, title=instance.title,
        root_instance_title=instance.root_instance_title or instance.title,
        software_release_uri=instance.software_release_uri, software_type=instance.software_type or "default",
        state=instance.state, parameters=dict(instance.parameters),
        connection_parameters=dict(instance.connection_parameters), ip_list=work.partition.ip_list,
        shared_instance_list=instance.shared_instance_list, timestamp=instance.timestamp,
        software_path=str(ctx.software_path(release_digest(instance.software_release_uri))),
        partition_path=str(work.path), ipv6_range=work.partition.ipv6_range,
    )


# -- local facts --------------------------------------------------------------------------------

def processed_stamp(path: Path) -> str | None:
    """The timestamp last processed successfully (None when the last run failed or never ran)."""
    stamp = read_text(path / TIMESTAMP)
    return stamp.strip() if stamp else None


def software_ready(ctx: NodeContext, instance: NodeInstanceDocument) -> bool:
    return is_completed(ctx.software_path(release_digest(instance.software_release_uri)))


# -- processing ---------------------------------------------------------------------------------

def process(ctx: NodeContext, partition: ComputePartition) -> Result:
    """Deploy the partition's instance as requested; never raises for the instance's own faults."""
    work = ctx.work_on(partition)
    pid, path = work.pid, work.path
    progress.step("deploying %s (%s)", pid, work.instance.title)
    try:
        user = work.user()
        _clear_stamp(path)
        remove_file(path, request_transaction.file_name(pid))
        _prepare(ctx, work, user)
        _buildout(ctx, pid, path, user)
        if work.instance.state == InstanceState.STARTED.value:
            message = _start(ctx, pid, path, user) or _squatting(ctx, work, user)
        else:
            _install_programs(ctx, pid, path, user)
            ctx.services().stop(pid)
            message = None
    except Interrupted:
        raise
    except CommandFailed as error:
        log_path = path / NODE_DIR / "log" / "buildout.log"
        log.warning("%s: %s; the end of its output:\n%s", pid, error, error.tail)
        return _finish(ctx, work, False, status_reason(f"buildout failed: {error}", error.tail, log_path))
    except NodeError as error:
        return _finish(ctx, work, False, f"node error: {error}")
    if message is not None:
        return _finish(ctx, work, False, message)
    _end_request_transaction(ctx, work)
    return _finish(ctx, work, True, work.instance.state)


def _clear_stamp(path: Path) -> None:
    (path / TIMESTAMP).unlink(missing_ok=True)


def _prepare(ctx: NodeContext, work: PartitionWork, user: RunAs) -> None:
    path = work.path
    software_path = ctx.software_path(release_digest(work.instance.software_release_uri))
    profile = read_text(software_path / "instance.cfg") or read_text(software_path / "template.cfg")
    if profile is None:
        raise NodeError(f"the software release has no instance.cfg in {software_path}")
    node_dir = path / NODE_DIR
    node_directory(node_dir, group=user.gid)
    node_directory(node_dir / "log", group=user.gid)
    owner = (os.geteuid(), user.gid) if user.switches else None
    document = instance_file(ctx, work)
    text = json.dumps(render_instance_file(document), indent=1, sort_keys=True)
    write_file(node_dir, INSTANCE_FILE, text, mode=0o640, owner=owner)
    files = _partition_certificate(ctx, work, user)
    connection = for_instance_file(document, instance_file=str(node_dir / INSTANCE_FILE),
                                   key_file=files.key_file if files else "",
                                   cert_file=files.cert_file if files else "",
                                   ca_file=(ctx.config.ca_file or "") if files else "")
    tail = buildout_tail(connection, ipv4_network=ctx.config.ipv4_local_network)
    user_owner = (user.uid, user.gid) if user.switches else None
    write_file(path, "buildout.cfg", profile.rstrip("\n") + "\n" + tail, mode=0o640, owner=user_owner)
    _link_software(path, software_path)


def _link_software(path: Path, software_path: Path) -> None:
    """``software_release`` -> the software's directory. The partition's user may have put
    anything there: a wrong link is replaced, anything else is an error of the partition."""
    link = path / "software_release"
    try:
        if link.is_symlink() and os.readlink(link) == str(software_path):
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        link.symlink_to(software_path)
    except OSError as error:
        raise NodeError(f"cannot link {link} to the software: {error.strerror or error} "
                        "(the partition put something else there)") from None


def _previous_verdict(path: Path) -> dict[str, object]:
    """The verdict the last check wrote ({} if it is missing or not what the node writes: the
    partition's user may have replaced it)."""
    try:
        previous = json.loads(read_text(path / NODE_DIR / VERDICT_FILE) or "{}")
    except ValueError:
        return {}
    return previous if isinstance(previous, dict) else {}


def _partition_certificate(ctx: NodeContext, work: PartitionWork, user: RunAs) -> PartitionFiles | None:
    """The partition's own key and certificate (`node.certificates`), made or renewed when due;
    None on a node without certificates (the proxy's mode)."""
    owner = (user.uid, user.gid) if user.switches else None
    try:
        return ensure_partition_certificate(ctx.config, ctx.client, work.pid, owner)  # type: ignore[arg-type]
    except ClientError as error:
        raise NodeError(f"cannot get the partition's certificate: {error}") from None


INSTALLED = ".installed.cfg"  # zc.buildout's record of the parts it installed in the partition


def _drop_empty_record(pid: str, path: Path) -> None:
    """zc.buildout can leave an empty `INSTALLED` when it fails half-way through installing, and
    then fails on it at every later run ("KeyError: 'buildout'"): an empty one is removed (by
    descriptor, never followed), so the next run installs every part again."""
    try:
        fd = open_regular(path / INSTALLED)
    except OSError:
        return  # none, or not a plain file: buildout (as the partition's user) says what is wrong
    try:
        empty = os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
    if empty:
        log.warning("%s: removed an empty %s (left by a failed buildout): every part is installed again",
                    pid, INSTALLED)
        remove_file(path, INSTALLED)


def _buildout(ctx: NodeContext, pid: str, path: Path, user: RunAs) -> None:
    log_path = path / NODE_DIR / "log" / "buildout.log"
    remove_file(log_path.parent, log_path.name)  # never by path: .slapgrid is the partition's
    _drop_empty_record(pid, path)
    started = time.monotonic()
    outcome = run([str(ctx.toolchain.buildout), "-c", str(path / "buildout.cfg")], cwd=path,
                  env=clean_environment(path, user, pip_environment(ctx.config)),
                  timeout=ctx.config.buildout_timeout, run_as=user,
                  log_path=log_path, umask=0o027, pid_file=path / NODE_DIR / "buildout.pid")
    log.info("%s: buildout exited %s in %.1fs", pid, outcome.returncode, time.monotonic() - started)
    check_outcome(outcome, "the instance buildout")


def _install_programs(ctx: NodeContext, pid: str, path: Path, user: RunAs) -> bool:
    user_name = user.name if user.switches else None
    return ctx.services().apply(pid, programs_in(path), user=user_name, home=path)


def _start(ctx: NodeContext, pid: str, path: Path, user: RunAs) -> str | None:
    """Start the programs, then give the promises `PROMISE_GRACE` seconds to pass; the failure
    message, or None."""
    _install_programs(ctx, pid, path, user)
    ctx.services().start(pid)
    deadline = time.monotonic() + PROMISE_GRACE
    while True:
        exited = _exited_services(ctx, pid, path)
        if exited:
            return exited  # waiting longer does not bring it back
        failing = _failing_promise(ctx, path, user, only_due=False)
        if failing is None:
            return _exited_services(ctx, pid, path)  # a service may have died while promises ran
        if time.monotonic() >= deadline:
            return failing
        time.sleep(PROMISE_RETRY)


def _failing_promise(ctx: NodeContext, path: Path, user: RunAs, *, only_due: bool) -> str | None:
    """The status reason of the partition's first failing promise, or None."""
    results = promises.run_all(path, toolchain=ctx.toolchain, run_as=user,
                               timeout=ctx.config.promise_timeout, only_due=only_due)
    failing = promises.failing(results)
    return promises.describe_failure(failing[0]) if failing else None


def _exited_services(ctx: NodeContext, pid: str, path: Path, processes: list | None = None) -> str | None:
    if processes is None:
        processes = ctx.services().processes(pid)
    for process in processes:
        if process.watched and process.state in EXITED_STATES:
            log_path = path / f".{pid}_{process.name}.log"
            return status_reason(f"service {process.name} exited with status {process.exitstatus}",
                                 _log_tail(log_path, lines=1), log_path)
    return None


def _squatting(ctx: NodeContext, work: PartitionWork, user: RunAs) -> str | None:
    """Root mode: a socket of the partition's user on another partition's address stops its
    services (`node.listeners`); the message, or None."""
    if not user.switches or user.uid is None:
        return None
    networks = [ipaddress.ip_network(ctx.config.ipv4_local_network, strict=False),
                ipaddress.ip_network(ctx.config.ipv6_local_network, strict=False)]
    record = claims.read_record(ctx.config.instance_root)  # issue 13: the IPv6 network and ranges format chose
    if record is not None and record.ipv6_network:
        networks.append(ipaddress.ip_network(record.ipv6_network, strict=False))
    found = squats(read_listeners(), user.uid, (address for _, address in work.partition.ip_list), networks)
    own_range = record.partition_range(work.pid) if record is not None else None
    found = [f for f in found if own_range is None or ipaddress.ip_address(f.address) not in own_range]
    if not found:
        return None
    ctx.services().stop(work.pid)
    killed = kill_squatters(found, user.uid)  # what left supervisord's care and still holds them
    if killed:
        log.warning("%s: killed processes %s of %s holding another partition's address", work.pid,
                    ", ".join(map(str, killed)), user.name)
    shown = ", ".join(str(listener) for listener in found[:5])
    return (f"a service listens on {shown}: not an address of this partition (another partition's); "
            "its services were stopped")


def revive(ctx: NodeContext, work: PartitionWork, user: RunAs, processes: list | None = None) -> list[str]:
    """Start the partition's programs the current supervisord never started (it was started after
    its predecessor died hard), once the processes the dead one left running are killed: those of
    the partition's user outside the current supervisord and the node (in single-user mode, those
    of them holding a listening socket on the partition's addresses). The programs started."""
    services = ctx.services()
    if processes is None:
        processes = services.processes(work.pid)
    never = [process.name for process in processes if process.never_started]
    if not never:
        return []
    keepers = {services.pid(), os.getpid()}
    if user.switches and user.uid is not None:
        killed = kill_orphans(user.uid, keepers)
    else:
        killed = kill_orphans(os.getuid(), keepers, addresses=[address for _, address in work.partition.ip_list])
    if killed:
        log.warning("%s: killed %s, left running by a supervisord that died", work.pid, ", ".join(map(str, killed)))
    services.start(work.pid)
    log.warning("%s: started %s (not started by the running supervisord)", work.pid, ", ".join(never))
    return never


def _log_tail(path: Path, lines: int = 5) -> str:
    text = read_text(path)
    if not text:
        return ""
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def _end_request_transaction(ctx: NodeContext, work: PartitionWork) -> None:
    """Tell the master which instances this successful pass requested, so that it destroys those
    the partition no longer requests. No transaction file (no request made by a recipe that keeps
    one): nothing is said, so nothing is destroyed."""
    text = read_user_file(work.path, request_transaction.file_name(work.pid), request_transaction.MAX_BYTES)
    if text is None:
        return
    try:
        ctx.client.set_requested_titles(work.instance.instance_guid, request_transaction.titles(text))
    except ClientError as error:
        log.warning("%s: cannot tell the master what it still requests: %s", work.instance.title, error)


def _finish(ctx: NodeContext, work: PartitionWork, ok: bool, message: str) -> Result:
    """Report the outcome; the verdict and (on success) the timestamp are kept only once the
    master has it: a report the master could not take (507, 503, unreachable) is sent again at
    a later pass, since the partition is processed or checked again."""
    message = clip(message)
    log.info("%s: %s", work.pid, message)
    (progress.step if ok else progress.failed)("%s (%s): %s", work.pid, work.instance.title, message)
    reported = _report(ctx, work.instance, ok, message)
    if reported:
        _save_verdict(work.path, ok, message)
    if ok and reported:
        write_file(work.path, TIMESTAMP, stamp(work.instance), mode=0o644)
    return Result(work.pid, ok and reported, message)


def _report(ctx: NodeContext, instance: NodeInstanceDocument, ok: bool, message: str) -> bool:
    """Tell the master; False (logged) when it could not take it."""
    state = instance.state if ok else "error"
    try:
        ctx.client.report_instance_state(instance.instance_guid, state, message)
    except ClientError as error:
        log.warning("%s: cannot report %s to the master: %s", instance.title, state, error)
        return False
    return True


def _save_verdict(path: Path, ok: bool, message: str) -> None:
    node_dir = path / NODE_DIR
    if node_dir.is_dir():
        write_file(node_dir, VERDICT_FILE, json.dumps({"ok": ok, "message": message}), mode=0o640)


def check(ctx: NodeContext, partition: ComputePartition, processes: list | None = None) -> Result:
    """An unchanged started partition: run due promises, look at services, report a changed verdict.
    `processes`: its supervisord processes, when the pass asked for every partition's at once."""
    work = ctx.work_on(partition)
    pid, path = work.pid, work.path
    try:
        user = work.user()
        if revive(ctx, work, user, processes):
            processes = None  # read again: they were just started
        problem = (_exited_services(ctx, pid, path, processes) or _squatting(ctx, work, user)
                   or _failing_promise(ctx, path, user, only_due=True))
    except Interrupted:
        raise
    except NodeError as error:
        problem = f"node error: {error}"
    previous = _previous_verdict(path)
    ok = problem is None
    message = clip(problem or work.instance.state)
    if previous.get("ok") == ok and previous.get("message") == message:
        return Result(pid, ok, message)
    if not ok:
        _clear_stamp(path)  # reprocess it on the next pass (restarts what exited)
    return _finish(ctx, work, ok, message)
