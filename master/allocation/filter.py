"""Filter: keep only the candidates that can serve a demand at all (their kind, the SLA, the
computer's scope and supplies). Each rule is one predicate; `plan` applies them in turn so that a
request that waits says which one stopped it.

A partition never serves a shared demand and a host never serves any other; the services fetch
only the kind a demand needs, but the rule is here."""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.model import OPEN, Candidate, Demand, HostCandidate, PartitionCandidate
from partita.master.allocation.sla import COMPUTER, INSTANCE, MODE, NETWORK, UNIQUE_BY_NETWORK, tag_filters
from partita.slap.states import InstanceState, SupplyState

_DESTROYED = InstanceState.DESTROYED.value
_AVAILABLE = SupplyState.AVAILABLE.value


def partitions_matching(candidates: Iterable[Candidate], demand: Demand) -> list[PartitionCandidate]:
    """Free partitions serve any demand, on the SLA's computer if it names one."""
    computer = demand.sla.get(COMPUTER)
    return [c for c in candidates if isinstance(c, PartitionCandidate)
            and (computer is None or c.computer_reference == computer)]


def matches_sla(candidate: PartitionCandidate, demand: Demand) -> bool:
    """Its computer has every tag the SLA asks for (tag.NAME=value), is in the SLA's network
    (network_guid) and, with mode=unique_by_network, is on a network where no instance of the
    demand's tree runs (a computer in no network is a network of its own)."""
    tags = dict(candidate.tags)
    if any(tags.get(name) != value for name, value in tag_filters(demand.sla).items()):
        return False
    network = demand.sla.get(NETWORK)
    if network is not None and candidate.network != network:
        return False
    if demand.sla.get(MODE) == UNIQUE_BY_NETWORK:
        if candidate.network is None:
            return candidate.tree_instances == 0
        return candidate.network not in demand.tree_networks
    return True


def is_open(candidate: PartitionCandidate) -> bool:
    """Closed and draining computers take nothing new."""
    return candidate.scope == OPEN


def is_supplied(candidate: PartitionCandidate) -> bool:
    """The demanded release is supplied to its computer (asked available, built or not)."""
    return candidate.supply == _AVAILABLE


def hosts_matching(candidates: Iterable[Candidate], demand: Demand) -> list[HostCandidate]:
    """Hosts run the same software release and type and are not destroyed; on the SLA's computer,
    and the SLA's instance, if it names them."""
    computer = demand.sla.get(COMPUTER)
    instance = demand.sla.get(INSTANCE)
    return [
        c for c in candidates
        if isinstance(c, HostCandidate)
        and c.software_release == demand.software_release
        and c.software_type == demand.software_type
        and c.requested_state != _DESTROYED
        and (computer is None or c.computer_reference == computer)
        and (instance is None or c.instance_guid == instance)
    ]
