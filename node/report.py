"""Destroy what the master wants destroyed and free its partition (`slapos node report`).

Every step is idempotent, and the master is told last: a node killed half-way simply does the
whole destruction again on its next pass, and a partition is never freed half-destroyed.

1. remove the partition's programs from supervisord (stops them, their process groups included);
2. in root mode, kill whatever still runs as the partition's user;
3. wipe the directory's content (keeping ``.slapos-resource``, written by `slapos node format`),
   and give the directory back to its user with mode 0750;
4. report ``destroyed``: the master frees the partition (and gives it to a waiting request).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

from partita.node import progress
from partita.node.certificates import remove_partition_certificate
from partita.node.context import NodeContext
from partita.node.errors import NodeError
from partita.node.layout import RESOURCE_FILE
from partita.node.runner import RunAs
from partita.slap.errors import ClientError
from partita.slap.wire.node_state import ComputePartition

log = logging.getLogger(__name__)

KEEP = frozenset({RESOURCE_FILE})
KILL_WAIT = 5.0


def destroy(ctx: NodeContext, partition: ComputePartition) -> bool:
    """Destroy the partition's instance and tell the master; False if something failed."""
    work = ctx.work_on(partition)
    try:
        user = work.user()
        ctx.services().remove(work.pid)
        if user.switches:
            _kill_user_processes(user)
        wipe(work.path, user)
        remove_partition_certificate(ctx.config, work.pid)  # the master revokes it when it frees the partition
    except (NodeError, OSError) as error:
        log.error("%s: cannot destroy: %s", work.pid, error)
        return False
    try:
        ctx.client.report_instance_state(work.instance.instance_guid, "destroyed")
    except ClientError as error:
        log.warning("%s: destroyed, but cannot tell the master: %s", work.pid, error)
        return False
    log.info("%s: destroyed %s and freed the partition", work.pid, work.instance.title)
    progress.step("%s (%s): destroyed, partition freed", work.pid, work.instance.title)
    return True


def wipe(path: Path, user: RunAs) -> None:
    """Empty a partition directory and reset its ownership and mode."""
    if path.is_symlink() or not path.is_dir():
        raise NodeError(f"{path} is not a partition directory")
    for entry in path.iterdir():
        if entry.name in KEEP:
            continue
        if entry.is_dir() and not entry.is_symlink():
            _make_removable(entry)
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if user.switches:
        os.chown(path, user.uid, user.gid)  # type: ignore[arg-type]
    path.chmod(0o750)


def _make_removable(directory: Path) -> None:
    """Give back write permission on directories a service made read-only (rmtree needs it),
    through each directory's own descriptor: a link in the tree is never followed or chmodded."""
    for _root, _dirs, _files, fd in os.fwalk(directory):
        os.fchmod(fd, os.fstat(fd).st_mode | 0o700)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except FileNotFoundError:
            continue
    return pids


def _kill_user_processes(user: RunAs) -> None:
    """SIGKILL every process of the partition's user, and wait until they are gone."""
    assert user.uid is not None and user.uid != 0
    deadline = time.monotonic() + KILL_WAIT
    while pids := _pids_of(user.uid):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise NodeError(f"processes of {user.name} survive SIGKILL: {pids[:5]}")
        time.sleep(0.05)
