"""Score: rank the feasible candidates. Each rank is a total order key: lower sorts first.

Partitions spread: the computer with the fewest instances of the demand's tree first (the workers
of one cluster land on different nodes before any doubles up), then the computer with the fewest
busy partitions (new trees spread over computers too), then formatting order, then id (so equal
candidates in any order give the same choice)."""
from __future__ import annotations

from partita.master.allocation.model import HostCandidate, PartitionCandidate


def partition_rank(candidate: PartitionCandidate) -> tuple[int, int, int, int]:
    """(instances of the same tree on its computer, busy partitions of its computer, formatting
    order, id)."""
    return candidate.tree_instances, candidate.allocated, candidate.order, candidate.partition_id


def host_rank(candidate: HostCandidate) -> tuple[int, int]:
    """Hosts are all equal: the oldest first."""
    return candidate.order, candidate.instance_id
