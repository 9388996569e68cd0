"""`slapos node run`: converge, wait for the master to say something changed, converge again.

One iteration: read the computer's state, build or remove software, deploy what changed, destroy
what is requested destroyed. Then wait on ``slapos.wait.v0.compute_node_change`` (the master
answers as soon as anything for this computer changes: no polling), at most until the next
promise is due or a failed partition's retry time comes.

Certificates (`node.certificates`): at the start of an iteration the computer's certificate is
renewed when less than a third of its lifetime is left (at most once per iteration; a failure is
logged and tried again at the next), and the iteration goes on with a client using the new one.
After the instance pass, the partitions' certificates that are due are renewed the same way.

A failed partition is retried with back-off (`node.plan.backoff`), at once if its instance changes.
When the master cannot be reached, services keep running (supervisord does not depend on the
node) and the node retries with back-off until the master is back. Meanwhile a service that
exits is started again locally (issue 10): its restart would otherwise go through the master
(the watchdog's bang), which is down. Each retry starts the exited services of the partitions
whose instance was last seen started and deployed (`Daemon.restart_locally`); what happened is
reported at the next pass once the master is back. ``etc/run`` programs are restarted by
supervisord itself (`node.supervisor.config`).

A node killed hard (its daemon and supervisord SIGKILLed) leaves its services running as orphans
that the next supervisord does not know: it lists their programs "Not started". The partition did
not change, so no pass deploys it again; its check (`node.instance.revive`), and the local restart
above, kill what the dead supervisord left and start those programs (issue 13).

Each iteration (each retry too, while the master is unreachable) first puts back the partitions'
addresses the interface lost (`node.addresses`: a link that went down takes its IPv6 ones).

The daemon never dies of what a later pass can heal (issues 10 and 11): a master answering
5xx (507 STORAGE_FULL, 503) or unreachable, a report it could not take (sent again at a later
pass: `node.instance`, `node.software`), a toolchain that cannot be built yet (`open_with_retry`
retries with back-off), an unexpected error in one iteration (logged with its traceback, then
retried with back-off). It stops on `stop` (SIGTERM, SIGINT: `node.cli.run`), and when the
master refuses the node itself (a 4xx other than 408 and 429, e.g. a revoked certificate).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from partita.node import addresses, certificates, progress, promises
from partita.node import instance as instance_work
from partita.node.config import NodeConfig
from partita.node.context import NodeContext, forget_identities, master_client, open_context
from partita.node.desired import stamp
from partita.node.errors import Interrupted
from partita.node.passes import fetch, instance_pass, report_pass, software_pass
from partita.node.plan import backoff
from partita.node.reason import clip
from partita.slap.errors import ClientError, MasterRefused, MasterUnreachable, PartitaError, RemoteError
from partita.slap.wire.node_state import ComputeNodeState

log = logging.getLogger(__name__)

LONG_POLL = 30.0
RETRY_FIRST = 2.0
RETRY_MAX = 120.0
MASTER_BACKOFF_MAX = 30.0
REFUSED_BACKOFF_MAX = 5.0         # nothing listens (a master restarting): asking again costs it nothing
RETRIED_4XX = (408, 429)          # "not now": retried like a 5xx
START_RETRY_FIRST = 5.0           # a toolchain that cannot be built yet: 5 s, 10 s, … at most 10 min
START_RETRY_MAX = 600.0


@dataclass
class Failure:
    stamp: str
    attempts: int
    retry_at: float


@dataclass
class Daemon:
    ctx: NodeContext
    stop: threading.Event = field(default_factory=threading.Event)
    failures: dict[str, Failure] = field(default_factory=dict)
    waiting: bool = False
    last: ComputeNodeState | None = None   # the master's state as last read (for an outage)
    worked: bool = False                    # the last iteration built, deployed, failed or destroyed

    def run(self) -> None:
        """Loop until `stop` is set (or the node is interrupted: `node.runner.interrupt`)."""
        unreachable = failed = 0
        while not self.stop.is_set():
            try:
                generation, wait = self.iterate()
                unreachable = failed = 0
            except Interrupted:
                return
            except (MasterUnreachable, RemoteError) as error:
                if isinstance(error, RemoteError) and error.status < 500 and error.status not in RETRIED_4XX:
                    raise
                unreachable += 1
                delay = master_backoff(unreachable, error)
                log.warning("master unavailable (%s); services keep running; retrying in %gs", clip(str(error)), delay)
                self.restart_locally()
                self._pause(delay)
                continue
            except Exception as error:  # a bug or a local fault: the next iteration may not meet it
                failed += 1
                delay = backoff(failed, RETRY_FIRST, RETRY_MAX)
                log.error("the iteration failed (%s); retrying in %gs", clip(str(error) or type(error).__name__),
                          delay, exc_info=log.isEnabledFor(logging.INFO))  # the traceback with -v
                self._pause(delay)
                continue
            if self.worked:
                progress.step("done")
            if wait > 0 and not self.stop.is_set():
                self._wait(generation, wait)

    def _pause(self, seconds: float) -> None:
        self.waiting = True
        try:
            self.stop.wait(seconds)
        finally:
            self.waiting = False

    def iterate(self) -> tuple[int, float]:
        """One convergence; the generation to wait from and how long to wait for a change.

        The generation is the one read *first*: whatever changed after it (a request that came
        during the work, a change the pass's bounded rounds left for later, the node's own
        reports) makes the wait return at once, and the next iteration finds out which.
        """
        forget_identities()
        addresses.restore(self.ctx.config.instance_root, self.ctx.config.ipv4_local_network)
        self.renew_computer_certificate()
        ctx = self.ctx
        want = self.last = fetch(ctx)
        start_generation = want.generation
        software = software_pass(ctx, want)
        if software.changed:
            want = fetch(ctx)
        held = self._held(want)
        summary, want = instance_pass(ctx, want, skip=held)
        self._record(want, summary.failed, held)
        self.renew_partition_certificates(want)
        report = report_pass(ctx, want)
        if report.changed:
            want = fetch(ctx)
        self.worked = bool(software.processed or summary.processed or summary.failed or report.processed)
        self.last = want
        return start_generation, self._wait_seconds(want)

    def restart_locally(self) -> list[str]:
        """While the master is unreachable: start the exited services of every partition whose
        instance was last seen started and whose deployment of that state succeeded (its
        ``.timestamp``); the partitions restarted. Failures are logged, never raised."""
        restarted: list[str] = []
        for partition in self.last.compute_partition_list if self.last else ():
            instance = partition.instance
            if instance is None or instance.state != "started":
                continue
            pid = partition.compute_partition_id
            try:
                if instance_work.processed_stamp(self.ctx.partition_path(pid)) != stamp(instance):
                    continue
                services = self.ctx.services()
                processes = services.processes(pid)
                work = self.ctx.work_on(partition)
                exited = instance_work.revive(self.ctx, work, work.user(), processes)
                exited += [p.name for p in processes if p.state in instance_work.EXITED_STATES]
                if not exited:
                    continue
                services.start(pid)
            except (PartitaError, OSError) as error:
                log.warning("%s: cannot restart its services while the master is unreachable: %s", pid, error)
                continue
            log.warning("%s: restarted %s locally (the master is unreachable; reported when it is back)",
                        pid, ", ".join(exited))
            restarted.append(pid)
        return restarted

    def renew_computer_certificate(self) -> bool:
        """Renew the computer's certificate if it is due, then use a client with the new one;
        whether it was renewed. A failure is logged, never raised: the next iteration tries again."""
        config = self.ctx.config
        try:
            if not certificates.computer_certificate_due(config):
                return False
            certificates.renew_computer_certificate(config, self.ctx.client)
            client = master_client(config)
        except (PartitaError, OSError) as error:
            log.warning("renewing the computer certificate failed (%s); trying again at the next iteration",
                        error)
            return False
        previous, self.ctx.client = self.ctx.client, client
        previous.close()
        return True

    def renew_partition_certificates(self, want: ComputeNodeState) -> None:
        """Renew the certificates of the partitions hosting an instance that are due (failures logged)."""
        if not certificates.makes_partition_certificates(self.ctx.config):
            return
        for partition in want.compute_partition_list:
            if partition.instance is None:
                continue
            try:
                user = self.ctx.work_on(partition).user()
                owner = (user.uid, user.gid) if user.switches else None
                certificates.ensure_partition_certificate(self.ctx.config, self.ctx.client,  # type: ignore[arg-type]
                                                          partition.compute_partition_id, owner)
            except (PartitaError, OSError) as error:
                log.warning("%s: renewing the partition certificate failed (%s); trying again later",
                            partition.compute_partition_id, error)

    def _wait(self, generation: int, seconds: float) -> None:
        self.waiting = True
        try:
            self.ctx.client.wait_compute_node_change(self.ctx.config.computer_id, generation, timeout=seconds)
        except ClientError as error:
            log.debug("waiting for a change failed: %s", error)
            self.stop.wait(min(seconds, 1.0))
        finally:
            self.waiting = False

    def _held(self, want: ComputeNodeState) -> set[str]:
        """Failed partitions not due for a retry yet (and whose instance did not change)."""
        now = time.time()
        held = set()
        for partition in want.compute_partition_list:
            failure = self.failures.get(partition.compute_partition_id)
            if failure and partition.instance and stamp(partition.instance) == failure.stamp and now < failure.retry_at:
                held.add(partition.compute_partition_id)
        return held

    def _record(self, want: ComputeNodeState, failed: list[str], held: set[str]) -> None:
        now = time.time()
        for partition in want.compute_partition_list:
            pid = partition.compute_partition_id
            if pid in held and pid not in failed:
                continue  # not attempted this time
            if pid not in failed or partition.instance is None:
                self.failures.pop(pid, None)
                continue
            previous = self.failures.get(pid)
            attempts = previous.attempts + 1 if previous else 1
            retry_at = now + backoff(attempts, RETRY_FIRST, RETRY_MAX)
            self.failures[pid] = Failure(stamp(partition.instance), attempts, retry_at)

    def _wait_seconds(self, want: ComputeNodeState) -> float:
        now = time.time()
        moments = [f.retry_at for f in self.failures.values()]
        for partition in want.compute_partition_list:
            if partition.instance and partition.instance.state == "started":
                due = promises.next_due(self.ctx.partition_path(partition.compute_partition_id))
                if due is not None:
                    moments.append(due)
        soonest = min(moments, default=now + LONG_POLL)
        return max(0.0, min(LONG_POLL, soonest - now))



def master_backoff(attempts: int, error: ClientError) -> float:
    """Seconds before calling the master again after `attempts` failures in a row: 1 s doubling to
    `MASTER_BACKOFF_MAX`, or to `REFUSED_BACKOFF_MAX` while its connection is refused or reset (its
    port closed, as while it restarts: the node is back within seconds of it): the client says so
    with `MasterRefused` (pure)."""
    refused = isinstance(error, MasterRefused)
    return backoff(attempts, 1.0, min(REFUSED_BACKOFF_MAX, MASTER_BACKOFF_MAX) if refused else MASTER_BACKOFF_MAX)


def open_with_retry(config: NodeConfig, stop: threading.Event,
                    opener: Callable[[NodeConfig], NodeContext] = open_context, *,
                    first: float = START_RETRY_FIRST, most: float = START_RETRY_MAX) -> NodeContext | None:
    """`opener(config)` (the toolchain built, supervisord running), retried with back-off while it
    fails (a toolchain build that failed, a check of the software root, a lock held by another
    node), each failure said in one line; None when `stop` is set first."""
    attempts = 0
    while not stop.is_set():
        try:
            return opener(config)
        except Interrupted:
            return None
        except (PartitaError, OSError) as error:
            attempts += 1
            delay = backoff(attempts, first, most)
            message = clip(str(error) or type(error).__name__)
            log.error("cannot start the node: %s; retrying in %gs", message, delay)
            stop.wait(delay)
    return None
