"""What to do with each software release and partition: pure functions of wanted vs. local facts.

Software release::

    wanted available, not built (no completion marker)   -> BUILD
    wanted available, built, master not told so          -> REPORT_AVAILABLE
    wanted destroyed, still on disk                       -> REMOVE
    wanted destroyed, gone, master not told               -> REPORT_DESTROYED
    otherwise                                             -> NOTHING

Partition::

    free                                                  -> NOTHING
    instance destroyed                                    -> DESTROY  (the report pass)
    software not built yet                                -> WAIT_SOFTWARE
    timestamp processed and the last run succeeded        -> CHECK (promises due) if started,
                                                             NOTHING if stopped
    otherwise (new timestamp, or the last run failed)     -> PROCESS
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from partita.node.desired import stamp
from partita.slap.states import InstanceState, SupplyState
from partita.slap.wire.node_state import ComputePartition, SoftwareInstallation


class SoftwareAction(enum.Enum):
    NOTHING = "nothing"
    BUILD = "build"
    REPORT_AVAILABLE = "report-available"
    REMOVE = "remove"
    REPORT_DESTROYED = "report-destroyed"


class PartitionAction(enum.Enum):
    NOTHING = "nothing"
    PROCESS = "process"
    CHECK = "check"
    WAIT_SOFTWARE = "wait-software"
    DESTROY = "destroy"


def software_action(want: SoftwareInstallation, *, completed: bool, present: bool) -> SoftwareAction:
    if want.state == SupplyState.DESTROYED.value:
        if present:
            return SoftwareAction.REMOVE
        return SoftwareAction.NOTHING if want.reported_state == "destroyed" else SoftwareAction.REPORT_DESTROYED
    if not completed:
        return SoftwareAction.BUILD
    return SoftwareAction.NOTHING if want.reported_state == "available" else SoftwareAction.REPORT_AVAILABLE


@dataclass(frozen=True)
class LocalPartition:
    """What the node knows locally about a partition."""

    processed_stamp: str | None   # content of .timestamp: the last timestamp processed successfully
    software_ready: bool          # the instance's software release is built


def partition_action(want: ComputePartition, local: LocalPartition) -> PartitionAction:
    instance = want.instance
    if instance is None:
        return PartitionAction.NOTHING
    if instance.state == InstanceState.DESTROYED.value:
        return PartitionAction.DESTROY
    if not local.software_ready:
        return PartitionAction.WAIT_SOFTWARE
    if local.processed_stamp == stamp(instance):
        return PartitionAction.CHECK if instance.state == InstanceState.STARTED.value else PartitionAction.NOTHING
    return PartitionAction.PROCESS


def backoff(attempts: int, first: float, most: float) -> float:
    """Seconds to wait after `attempts` failures in a row: `first`, doubling, at most `most`."""
    return min(first * 2 ** max(attempts - 1, 0), most)
