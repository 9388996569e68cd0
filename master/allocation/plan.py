"""Choose one candidate: the best score, then the first formatted, deterministically."""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.filter import hosts_matching, partitions_matching
from partita.master.allocation.model import Demand, HostCandidate, PartitionCandidate
from partita.master.allocation.score import partition_score


def choose_partition(candidates: Iterable[PartitionCandidate], demand: Demand) -> PartitionCandidate | None:
    eligible = partitions_matching(candidates, demand)
    if not eligible:
        return None
    return min(eligible, key=lambda c: (-partition_score(c), c.order))


def choose_host(candidates: Iterable[HostCandidate], demand: Demand) -> HostCandidate | None:
    eligible = hosts_matching(candidates, demand)
    if not eligible:
        return None
    return min(eligible, key=lambda c: c.order)


def describe_filter(demand: Demand, keys: tuple[str, ...]) -> str:
    """The SLA filters that apply, for status reasons: 'computer_guid=COMP-1' or 'any computer'."""
    parts = [f"{key}={demand.sla[key]}" for key in keys if demand.sla.get(key)]
    return ", ".join(parts) if parts else "any computer"
