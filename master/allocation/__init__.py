"""Allocation: where a request goes, decided by pure functions over plain data.

SQL narrows, allocation decides. The services (`master.services.allocator`) ask the database only
what cannot be known without it — the first free partition of each computer (on the computer the
SLA names, if any) with its computer's tags, network, scope and load, the supplies of the release,
where the request's tree already runs, the allocated hosts of a release and type — and turn the
rows into the plain candidates of `model`. `sla` says which SLA keys exist (anything else is
refused before anything is stored). `place(demand, candidates)` then decides, split like Nomad's
scheduler:

    filter   the candidates that can serve the demand at all (their kind, the SLA's computer,
             tags, network and mode, an open computer, a supplied release on a master)
    score    rank them (fewest instances of the same tree, then fewest busy partitions, then
             formatting order: spread)
    plan     `place`: the best one, or `Waiting` with the status reason of the step that left none

The services lock the chosen row and apply it (a partition taken, or a host attached). The same
`place` serves a new request (placed before its one INSERT) and a waiting one (allocated when a
partition is formatted or freed). Nothing here imports SQLAlchemy, Flask or the database layer.
"""
from partita.master.allocation.model import Candidate, Demand, HostCandidate, PartitionCandidate, Waiting
from partita.master.allocation.plan import place

__all__ = ["Candidate", "Demand", "HostCandidate", "PartitionCandidate", "Waiting", "place"]
