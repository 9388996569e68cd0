"""Filter: keep only the candidates that can serve a demand at all (its kind and its SLA)."""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.model import Candidate, Demand, HostCandidate, PartitionCandidate
from partita.slap.states import InstanceState


def feasible(candidates: Iterable[Candidate], demand: Demand) -> list[Candidate]:
    """Partitions for a demand that is not shared, hosts for a shared one, each as its SLA says."""
    if demand.shared:
        return [c for c in candidates if isinstance(c, HostCandidate) and host_matches(c, demand)]
    return [c for c in candidates if isinstance(c, PartitionCandidate) and partition_matches(c, demand)]


def partition_matches(candidate: PartitionCandidate, demand: Demand) -> bool:
    """A free partition serves any demand, on the SLA's computer if it names one."""
    computer = demand.sla.get("computer_guid")
    return computer is None or candidate.computer_reference == computer


def host_matches(candidate: HostCandidate, demand: Demand) -> bool:
    """A host runs the same software release and type, is not destroyed, and is on the SLA's
    computer and is the SLA's instance if they are named."""
    computer = demand.sla.get("computer_guid")
    instance = demand.sla.get("instance_guid")
    return (
        candidate.software_release == demand.software_release
        and candidate.software_type == demand.software_type
        and candidate.requested_state != InstanceState.DESTROYED.value
        and (computer is None or candidate.computer_reference == computer)
        and (instance is None or candidate.instance_guid == instance)
    )
