"""Filter: keep only the candidates that can serve a demand at all (their kind, the SLA).

A partition never serves a shared demand and a host never serves any other; the services fetch
only the kind a demand needs, but the rule is here."""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.model import Candidate, Demand, HostCandidate, PartitionCandidate
from partita.slap.states import InstanceState

_DESTROYED = InstanceState.DESTROYED.value


def partitions_matching(candidates: Iterable[Candidate], demand: Demand) -> list[PartitionCandidate]:
    """Free partitions serve any demand, on the SLA's computer if it names one."""
    computer = demand.sla.get("computer_guid")
    return [c for c in candidates if isinstance(c, PartitionCandidate)
            and (computer is None or c.computer_reference == computer)]


def hosts_matching(candidates: Iterable[Candidate], demand: Demand) -> list[HostCandidate]:
    """Hosts run the same software release and type and are not destroyed; on the SLA's computer,
    and the SLA's instance, if it names them."""
    computer = demand.sla.get("computer_guid")
    instance = demand.sla.get("instance_guid")
    return [
        c for c in candidates
        if isinstance(c, HostCandidate)
        and c.software_release == demand.software_release
        and c.software_type == demand.software_type
        and c.requested_state != _DESTROYED
        and (computer is None or c.computer_reference == computer)
        and (instance is None or c.instance_guid == instance)
    ]
