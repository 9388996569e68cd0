"""Plan: choose one candidate, or say why the request waits. `place` is the package's entry point.

| demand | candidates considered | chosen | none fits |
|---|---|---|---|
| not shared | free partitions, on `computer_guid` if named | best score (supplied computer), then first formatted | "waiting for a free partition (…)" |
| shared | allocated hosts of the same release and type, on `computer_guid` / `instance_guid` if named | the oldest host | "waiting for a host instance of … (…)" |

Deterministic: the ranks of `score` are total orders, so the same data in any order gives the
same choice.
"""
from __future__ import annotations

from collections.abc import Iterable

from partita.master.allocation.filter import hosts_matching, partitions_matching
from partita.master.allocation.model import (
    SLA_KEYS_FOR_HOSTS, SLA_KEYS_FOR_PARTITIONS, Candidate, Demand, Waiting,
)
from partita.master.allocation.score import host_rank, partition_rank


def place(demand: Demand, candidates: Iterable[Candidate]) -> Candidate | Waiting:
    """Where `demand` goes among `candidates`: the chosen candidate, or why it waits.

    The same rule for a new request and for a waiting one: the services narrow the candidates
    with SQL (free partitions, the computer asked for) and apply the choice; this decides."""
    if demand.shared:
        hosts = hosts_matching(candidates, demand)
        if hosts:
            return min(hosts, key=host_rank)
    else:
        partitions = partitions_matching(candidates, demand)
        if partitions:
            return min(partitions, key=partition_rank)
    return Waiting(waiting_reason(demand), none_free=not demand.shared and not _filters(demand))


def waiting_reason(demand: Demand) -> str:
    """The status reason of a request nothing can serve yet: what it waits for, with its filter."""
    if demand.shared:
        return (f"waiting for a host instance of {demand.software_release} "
                f"(type {demand.software_type}; {describe_filter(demand, SLA_KEYS_FOR_HOSTS)})")
    return f"waiting for a free partition ({describe_filter(demand, SLA_KEYS_FOR_PARTITIONS)})"


def describe_filter(demand: Demand, keys: tuple[str, ...]) -> str:
    """The SLA filters that apply, for status reasons: 'computer_guid=COMP-1' or 'any computer'."""
    parts = [f"{key}={demand.sla[key]}" for key in keys if demand.sla.get(key)]
    return ", ".join(parts) if parts else "any computer"


def _filters(demand: Demand) -> bool:
    keys = SLA_KEYS_FOR_HOSTS if demand.shared else SLA_KEYS_FOR_PARTITIONS
    return any(demand.sla.get(key) for key in keys)
