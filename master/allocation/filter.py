"""Keep only the candidates that satisfy a demand's SLA."""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.model import Demand, HostCandidate, PartitionCandidate


def partitions_matching(candidates: Iterable[PartitionCandidate], demand: Demand) -> list[PartitionCandidate]:
    computer = demand.sla.get("computer_guid")
    return [c for c in candidates if computer is None or c.computer_reference == computer]


def hosts_matching(candidates: Iterable[HostCandidate], demand: Demand) -> list[HostCandidate]:
    """Hosts run the same software release and type, on the SLA's computer or instance if named."""
    computer = demand.sla.get("computer_guid")
    instance = demand.sla.get("instance_guid")
    return [
        c for c in candidates
        if c.software_release == demand.software_release
        and c.software_type == demand.software_type
        and (computer is None or c.computer_reference == computer)
        and (instance is None or c.instance_guid == instance)
    ]
