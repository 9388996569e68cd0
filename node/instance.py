"""Deploy one partition (`slapos node instance` does this for each busy partition).

For an instance requested started or stopped:

1. write what the instance's buildout reads: ``.slapgrid/instance.json`` (the instance document,
   its addresses, its shared instances) and ``buildout.cfg`` (the software's ``instance.cfg``
   plus a tail with ``[slap-connection]``, `buildout_tail`); link ``software_release``;
2. run buildout as the partition's user, in its directory, with the buildout deadline;
3. turn ``etc/service/*`` (watched) and ``etc/run/*`` into programs of the node's supervisord;
   start them (a program whose wrapper changed restarts) or stop them as requested;
4. if started: run the promises (waiting up to ``PROMISE_GRACE`` seconds for services that are
   still starting) and check that no watched service exited;
5. on success, send the titles the pass requested (the request transaction written by
   ``partita:request``, `slap.request_transaction`): the master destroys what the partition no
   longer requests;
6. report started / stopped, or the error as the status reason ("buildout failed: …",
   "promise X failing: …", "service X exited …"), and on success record the processed timestamp
   in ``.timestamp``.

`check` is the light path for an unchanged started partition: promises whose period elapsed and
the watched services, reported only when the verdict changes.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from partita.node import promises
from partita.node.context import NodeContext
from partita.node.desired import InstanceWant, PartitionWant, release_digest
from partita.node.errors import CommandFailed, NodeError
from partita.node.files import node_directory, read_text, read_user_file, remove_file, write_file
from partita.node.layout import INSTANCE_FILE, NODE_DIR, TIMESTAMP
from partita.node.runner import RunAs, check as check_outcome, clean_environment, run
from partita.node.software import is_completed
from partita.node.supervisor import programs_in
from partita.slap import request_transaction
from partita.slap.errors import ClientError
from partita.slap.states import InstanceState

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


# -- pure: what the buildout reads -------------------------------------------------------------

def buildout_tail(*, computer_id: str, partition_id: str, master_url: str, instance: InstanceWant,
                  instance_file: Path, software_path: Path, ipv4_network: str,
                  key_file: str = "", cert_file: str = "") -> str:
    """The sections the node appends to the instance profile (SlapOS's tail, plus Partita's keys)."""
    connection = {
        "computer-id": computer_id, "partition-id": partition_id, "server-url": master_url,
        "software-release-url": instance.software_release, "key-file": key_file, "cert-file": cert_file,
        "requested-state": instance.state, "instance-guid": instance.guid,
        "instance-file": str(instance_file), "software-path": str(software_path),
        "shared-part-list": "", "build-time-part-list": "",
    }
    legacy = {k.replace("-", "_"): v for k, v in connection.items() if k not in (
        "shared-part-list", "build-time-part-list", "requested-state")}
    lines = ["", "[buildout]", "bin-directory = ${buildout:directory}/sbin", "newest = false", "",
             "[slap-connection]"]
    lines += [f"{k} = {_one_line(v)}" for k, v in connection.items()]
    lines += ["", "[slap_connection]"] + [f"{k} = {_one_line(v)}" for k, v in legacy.items()]
    lines += ["", "[storage-configuration]", "storage-home = ", "",
              "[network-information]", f"global-ipv4-network = {ipv4_network}", ""]
    return "\n".join(lines)


def _one_line(value: str) -> str:
    """A value on one buildout line (the master refuses control characters anyway)."""
    return " ".join(str(value).split())


def instance_document(ctx: NodeContext, partition: PartitionWant, instance: InstanceWant) -> dict:
    """What ``.slapgrid/instance.json`` holds (read by ``partita:slapconfiguration``)."""
    doc = instance.document
    return {
        "computer_id": ctx.config.computer_id, "partition_id": partition.partition_id,
        "server_url": ctx.config.master_url, "instance_guid": instance.guid, "title": instance.title,
        "root_instance_title": doc.get("root_instance_title") or instance.title,
        "software_release_uri": instance.software_release, "software_type": instance.software_type,
        "state": instance.state, "parameters": doc.get("parameters") or {},
        "connection_parameters": doc.get("connection_parameters") or {},
        "ip_list": [list(pair) for pair in partition.ip_list],
        "shared_instance_list": doc.get("shared_instance_list") or [],
        "timestamp": instance.timestamp,
        "software_path": str(ctx.software_path(release_digest(instance.software_release))),
        "partition_path": str(ctx.partition_path(partition.partition_id)),
    }


# -- local facts --------------------------------------------------------------------------------

def processed_stamp(path: Path) -> str | None:
    """The timestamp last processed successfully (None when the last run failed or never ran)."""
    stamp = read_text(path / TIMESTAMP)
    return stamp.strip() if stamp else None


def software_ready(ctx: NodeContext, instance: InstanceWant) -> bool:
    return is_completed(ctx.software_path(release_digest(instance.software_release)))


# -- processing ---------------------------------------------------------------------------------

def process(ctx: NodeContext, partition: PartitionWant) -> Result:
    """Deploy the partition's instance as requested; never raises for the instance's own faults."""
    instance = partition.instance
    assert instance is not None
    pid = partition.partition_id
    path = ctx.partition_path(pid)
    try:
        user = ctx.partition_user(pid)
        _clear_stamp(path)
        remove_file(path, request_transaction.file_name(pid))
        _prepare(ctx, partition, instance, path, user)
        _buildout(ctx, pid, path, user)
        if instance.state == InstanceState.STARTED.value:
            message = _start(ctx, pid, path, user)
        else:
            _install_programs(ctx, pid, path, user)
            ctx.services().stop(pid)
            message = None
    except CommandFailed as error:
        message = f"buildout failed: {error.tail or error}"
        return _finish(ctx, instance, path, False, message)
    except NodeError as error:
        return _finish(ctx, instance, path, False, f"node error: {error}")
    if message is not None:
        return _finish(ctx, instance, path, False, message)
    _end_request_transaction(ctx, instance, path)
    return _finish(ctx, instance, path, True, instance.state)


def _clear_stamp(path: Path) -> None:
    (path / TIMESTAMP).unlink(missing_ok=True)


def _prepare(ctx: NodeContext, partition: PartitionWant, instance: InstanceWant, path: Path,
             user: RunAs) -> None:
    software_path = ctx.software_path(release_digest(instance.software_release))
    profile = read_text(software_path / "instance.cfg") or read_text(software_path / "template.cfg")
    if profile is None:
        raise NodeError(f"the software release has no instance.cfg in {software_path}")
    node_dir = path / NODE_DIR
    node_directory(node_dir, group=user.gid)
    node_directory(node_dir / "log", group=user.gid)
    owner = (os.geteuid(), user.gid) if user.switches else None
    document = instance_document(ctx, partition, instance)
    write_file(node_dir, INSTANCE_FILE, json.dumps(document, indent=1, sort_keys=True), mode=0o640, owner=owner)
    tail = buildout_tail(
        computer_id=ctx.config.computer_id, partition_id=partition.partition_id,
        master_url=ctx.config.master_url, instance=instance, instance_file=node_dir / INSTANCE_FILE,
        software_path=software_path, ipv4_network=ctx.config.ipv4_local_network,
        key_file=ctx.config.key_file or "", cert_file=ctx.config.cert_file or "",
    )
    user_owner = (user.uid, user.gid) if user.switches else None
    write_file(path, "buildout.cfg", profile.rstrip("\n") + "\n" + tail, mode=0o640, owner=user_owner)
    link = path / "software_release"
    if link.is_symlink() or link.exists():
        if not link.is_symlink() or os.readlink(link) != str(software_path):
            link.unlink()
    if not link.is_symlink():
        link.symlink_to(software_path)


def _buildout(ctx: NodeContext, pid: str, path: Path, user: RunAs) -> None:
    log_path = path / NODE_DIR / "log" / "buildout.log"
    log_path.unlink(missing_ok=True)
    started = time.monotonic()
    outcome = run([str(ctx.toolchain.buildout), "-c", str(path / "buildout.cfg")], cwd=path,
                  env=clean_environment(path, user), timeout=ctx.config.buildout_timeout, run_as=user,
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
            tail = _log_tail(path / f".{pid}_{process.name}.log")
            reason = f"service {process.name} exited with status {process.exitstatus}"
            return f"{reason}: {tail}" if tail else reason
    return None


def _log_tail(path: Path, lines: int = 5) -> str:
    text = read_text(path)
    if not text:
        return ""
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def _end_request_transaction(ctx: NodeContext, instance: InstanceWant, path: Path) -> None:
    """Tell the master which instances this successful pass requested, so that it destroys those
    the partition no longer requests. No transaction file (no request made by a recipe that keeps
    one): nothing is said, so nothing is destroyed."""
    text = read_user_file(path, request_transaction.file_name(path.name), request_transaction.MAX_BYTES)
    if text is None:
        return
    try:
        ctx.client.set_requested_titles(instance.guid, request_transaction.titles(text))
    except ClientError as error:
        log.warning("%s: cannot tell the master what it still requests: %s", instance.title, error)


def _finish(ctx: NodeContext, instance: InstanceWant, path: Path, ok: bool, message: str) -> Result:
    pid = path.name
    if ok:
        log.info("%s: %s", pid, message)
    else:
        log.warning("%s: %s", pid, message)
    reported = _report(ctx, instance, ok, message)
    _save_verdict(path, ok, message)
    if ok and reported:
        write_file(path, TIMESTAMP, instance.stamp, mode=0o644)
    return Result(pid, ok and reported, message)


def _report(ctx: NodeContext, instance: InstanceWant, ok: bool, message: str) -> bool:
    state = instance.state if ok else "error"
    try:
        ctx.client.report_instance_state(instance.guid, state, message)
    except ClientError as error:
        log.warning("%s: cannot report %s to the master: %s", instance.title, state, error)
        return False
    return True


def _save_verdict(path: Path, ok: bool, message: str) -> None:
    node_dir = path / NODE_DIR
    if node_dir.is_dir():
        write_file(node_dir, VERDICT_FILE, json.dumps({"ok": ok, "message": message}), mode=0o640)


def check(ctx: NodeContext, partition: PartitionWant, processes: list | None = None) -> Result:
    """An unchanged started partition: run due promises, look at services, report a changed verdict.
    `processes`: its supervisord processes, when the pass asked for every partition's at once."""
    instance = partition.instance
    assert instance is not None
    pid = partition.partition_id
    path = ctx.partition_path(pid)
    try:
        user = ctx.partition_user(pid)
        problem = (_exited_services(ctx, pid, path, processes)
                   or _failing_promise(ctx, path, user, only_due=True))
    except NodeError as error:
        problem = f"node error: {error}"
    previous = json.loads(read_text(path / NODE_DIR / VERDICT_FILE) or "{}")
    ok = problem is None
    message = problem or instance.state
    if previous.get("ok") == ok and previous.get("message") == message:
        return Result(pid, ok, message)
    if not ok:
        _clear_stamp(path)  # reprocess it on the next pass (restarts what exited)
    return _finish(ctx, instance, path, ok, message)
