"""Score: rank the feasible candidates. Each rank is a total order key: lower sorts first."""
from __future__ import annotations

from partita.master.allocation.model import HostCandidate, PartitionCandidate
from partita.slap.states import SupplyState

_AVAILABLE = SupplyState.AVAILABLE.value


def partition_rank(candidate: PartitionCandidate) -> tuple[bool, int, int]:
    """A computer where the release is supplied (built or being built) first, then formatting
    order, then id (so equal candidates in any order give the same choice)."""
    return candidate.supply != _AVAILABLE, candidate.order, candidate.partition_id


def host_rank(candidate: HostCandidate) -> tuple[int, int]:
    """Hosts are all equal: the oldest first."""
    return candidate.order, candidate.instance_id
