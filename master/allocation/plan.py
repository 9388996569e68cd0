"""Plan: choose one candidate, or say why the request waits. `place` is the package's entry point.

| demand | candidates considered, in turn | chosen | the first step that leaves none: status reason |
|---|---|---|---|
| not shared | 1. free partitions, on `computer_guid` if named | | "waiting for a free partition (…)" |
| | 2. whose computer matches the SLA (`tag.NAME`, `network_guid`, `mode=unique_by_network`) | | "waiting for a free partition (…)" |
| | 3. whose computer is open (not closed, not draining) | | "waiting for a free partition on an open computer (…)" |
| | 4. whose computer has a supply of the release (`needs_supply`: on a master) | best `partition_rank` | "waiting for a supply of URL [on computer X]" |
| shared | allocated hosts of the same release and type, on `computer_guid` / `instance_guid` if named | the oldest host | "waiting for a host instance of … (…)" |

The score of a partition (`score.partition_rank`, lowest first): fewest instances of the same
tree on its computer, then fewest busy partitions on its computer, then formatting order.

Deterministic: the ranks of `score` are total orders, so the same data in any order gives the
same choice.
"""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.filter import (
    hosts_matching, is_open, is_supplied, matches_sla, partitions_matching,
)
from partita.master.allocation.model import SLA_KEYS_FOR_HOSTS, Candidate, Demand, Waiting
from partita.master.allocation.score import host_rank, partition_rank
from partita.master.allocation.sla import COMPUTER, TAG_PREFIX


def place(demand: Demand, candidates: Iterable[Candidate]) -> Candidate | Waiting:
    """Where `demand` goes among `candidates`: the chosen candidate, or why it waits.

    The same rule for a new request and for a waiting one: the services narrow the candidates
    with SQL (free partitions, the computer asked for) and apply the choice; this decides."""
    if demand.shared:
        hosts = hosts_matching(candidates, demand)
        if hosts:
            return min(hosts, key=host_rank)
        return Waiting(waiting_reason(demand))
    free = partitions_matching(candidates, demand)
    if not free:
        return Waiting(waiting_reason(demand), none_free=not demand.sla.get(COMPUTER))
    matching = [c for c in free if matches_sla(c, demand)]
    if not matching:
        return Waiting(waiting_reason(demand))
    open_ = [c for c in matching if is_open(c)]
    if not open_:
        return Waiting(f"waiting for a free partition on an open computer ({describe_partition_filter(demand)})")
    supplied = [c for c in open_ if is_supplied(c)] if demand.needs_supply else open_
    if not supplied:
        return Waiting(supply_reason(demand))
    return min(supplied, key=partition_rank)


def waiting_reason(demand: Demand) -> str:
    """The status reason of a request nothing can serve yet: what it waits for, with its filter."""
    if demand.shared:
        return (f"waiting for a host instance of {demand.software_release} "
                f"(type {demand.software_type}; {describe_filter(demand, SLA_KEYS_FOR_HOSTS)})")
    return f"waiting for a free partition ({describe_partition_filter(demand)})"


def supply_reason(demand: Demand) -> str:
    """Partitions are free but no computer that fits has the release: "waiting for a supply"."""
    computer = demand.sla.get(COMPUTER)
    where = f" on computer {computer}" if computer else ""
    return f"waiting for a supply of {demand.software_release}{where} (`slapos supply`)"


def describe_filter(demand: Demand, keys: tuple[str, ...]) -> str:
    """The SLA filters that apply, for status reasons: 'computer_guid=COMP-1' or 'any computer'."""
    parts = [f"{key}={demand.sla[key]}" for key in keys if demand.sla.get(key)]
    return ", ".join(parts) if parts else "any computer"


def describe_partition_filter(demand: Demand) -> str:
    """`describe_filter` of a demand for a partition: its keys, then its tags by name."""
    tags = tuple(sorted(key for key in demand.sla if key.startswith(TAG_PREFIX)))
    return describe_filter(demand, ("computer_guid", "network_guid", "mode", *tags))
