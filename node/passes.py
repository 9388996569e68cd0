"""One pass of each kind over the whole computer: software, instance, report.

The instance pass processes partitions concurrently (at most ``maximum_concurrency`` at a time); a
failing partition never blocks the others. Then it reads the master's state again: partitions whose
timestamp moved because of this pass's own work (a child published, so its requester was bumped;
a child was allocated here) are processed again, for at most `MAX_ROUNDS` rounds, so a tree
converges in one pass.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from partita.node import instance as instance_work
from partita.node import report as report_work
from partita.node import software as software_work
from partita.node.accept import Acceptance, Refusal, screen
from partita.node.context import NodeContext
from partita.node.desired import parse, release_digest, stamp
from partita.node.errors import Interrupted
from partita.node.plan import LocalPartition, PartitionAction, SoftwareAction, partition_action, software_action
from partita.slap.errors import ClientError
from partita.slap.wire.node_state import ComputeNodeState, ComputePartition

log = logging.getLogger(__name__)

MAX_ROUNDS = 4


@dataclass
class PassSummary:
    processed: int = 0
    failed: list[str] = field(default_factory=list)     # partition ids (or SR URLs) that failed
    changed: bool = False                               # something was built, deployed or freed


def fetch(ctx: NodeContext) -> ComputeNodeState:
    """The master's state, without what the node refuses to work on (`node.accept`): each refusal
    is logged and reported once (per process) as the release's or the instance's error."""
    state = parse(ctx.client.get_compute_node_state(ctx.config.computer_id))
    config = ctx.config
    allowed = Acceptance(frozenset(config.partition_ids()), PurePosixPath(config.instance_root),
                         PurePosixPath(config.software_root),
                         tuple(PurePosixPath(root) for root in config.allowed_software_roots))
    kept, refusals = screen(state, allowed)
    for refusal in refusals:
        _report_refusal(ctx, refusal)
    return kept


_REPORTED: set[Refusal] = set()


def _report_refusal(ctx: NodeContext, refusal: Refusal) -> None:
    if refusal in _REPORTED:
        return
    log.error("%s", refusal.reason)
    try:
        if refusal.kind == "software":
            ctx.client.report_software_installation_state(ctx.config.computer_id, refusal.key, "error",
                                                          refusal.reason)
        else:
            ctx.client.report_instance_state(refusal.key, "error", refusal.reason)
    except ClientError as error:
        log.warning("cannot report the refusal to the master: %s", error)
        return
    _REPORTED.add(refusal)


def software_pass(ctx: NodeContext, want: ComputeNodeState) -> PassSummary:
    summary = PassSummary()
    for software in want.software_installation_list:
        path = ctx.software_path(release_digest(software.software_release_uri))
        action = software_action(software, completed=software_work.is_completed(path), present=path.exists())
        if action == SoftwareAction.BUILD:
            summary.processed += 1
            if software_work.build(ctx, software):
                summary.changed = True
            elif not software_work.is_completed(path):
                summary.failed.append(software.software_release_uri)
        elif action == SoftwareAction.REMOVE:
            software_work.remove(ctx, software)
            summary.changed = True
        elif action == SoftwareAction.REPORT_AVAILABLE:
            software_work.report_available(ctx, software)
        elif action == SoftwareAction.REPORT_DESTROYED:
            software_work.report_destroyed(ctx, software)
    return summary


def _local(ctx: NodeContext, partition: ComputePartition) -> LocalPartition:
    instance = partition.instance
    if instance is None:
        return LocalPartition(None, False)
    path = ctx.partition_path(partition.compute_partition_id)
    return LocalPartition(instance_work.processed_stamp(path), instance_work.software_ready(ctx, instance))


def _work(ctx: NodeContext, partition: ComputePartition, action: PartitionAction,
          processes: dict[str, list] | None) -> instance_work.Result | None:
    if action == PartitionAction.PROCESS:
        return instance_work.process(ctx, partition)
    if action == PartitionAction.CHECK:
        known = None if processes is None else processes.get(partition.compute_partition_id, [])
        return instance_work.check(ctx, partition, known)
    if action == PartitionAction.DESTROY:
        # stop it now; `report_pass` frees it
        ctx.services().stop(partition.compute_partition_id)
    return None


def instance_pass(ctx: NodeContext, want: ComputeNodeState, *,
                  skip: set[str] | None = None) -> tuple[PassSummary, ComputeNodeState]:
    """Process what changed, then again what this work changed; the summary and the last state read.

    Partitions in `skip` (failed ones waiting for their retry time) are left alone unless their
    instance changes during the pass.
    """
    summary = PassSummary()
    done: dict[str, str] = {p.compute_partition_id: stamp(p.instance) for p in want.compute_partition_list
                            if p.instance is not None and p.compute_partition_id in (skip or ())}
    for round_number in range(MAX_ROUNDS):
        todo = []
        for partition in want.compute_partition_list:
            if partition.instance is None:
                continue
            if done.get(partition.compute_partition_id) == stamp(partition.instance):
                continue
            action = partition_action(partition, _local(ctx, partition))
            if round_number and action == PartitionAction.CHECK:
                continue
            todo.append((partition, action))
        if not todo:
            break
        results = _run_concurrently(ctx, todo)
        worked = False
        for (partition, action), result in zip(todo, results):
            if result is None:
                continue
            pid = partition.compute_partition_id
            done[pid] = stamp(partition.instance)  # type: ignore[arg-type]
            if action == PartitionAction.PROCESS:
                worked = True
                summary.processed += 1
                summary.changed = True
            if not result.ok and pid not in summary.failed:
                summary.failed.append(pid)
            if result.ok and pid in summary.failed:
                summary.failed.remove(pid)
        if not worked:
            break
        want = fetch(ctx)
    return summary, want


def _run_concurrently(ctx: NodeContext, todo: list) -> list:
    checks = sum(1 for _, action in todo if action == PartitionAction.CHECK)
    processes = ctx.services().all_processes() if checks > 1 else None

    def one(item: tuple[ComputePartition, PartitionAction]) -> instance_work.Result | None:
        partition, action = item
        try:
            return _work(ctx, partition, action, processes)
        except Interrupted:
            raise  # the node is stopping: the pass ends here (see `node.runner.interrupt`)
        except Exception:  # a bug on one partition must not stop the others: log it fully
            log.exception("%s: unexpected error", partition.compute_partition_id)
            return instance_work.Result(partition.compute_partition_id, False, "node error (see the node's log)")

    with ThreadPoolExecutor(max_workers=ctx.config.maximum_concurrency) as pool:
        return list(pool.map(one, todo))


def report_pass(ctx: NodeContext, want: ComputeNodeState) -> PassSummary:
    """Destroy and free every partition whose instance is requested destroyed."""
    summary = PassSummary()
    for partition in want.compute_partition_list:
        if partition.instance is None or partition.instance.state != "destroyed":
            continue
        summary.processed += 1
        if report_work.destroy(ctx, partition):
            summary.changed = True
        else:
            summary.failed.append(partition.compute_partition_id)
    return summary
