"""Allocation: where a request goes, decided by pure functions over plain data.

SQL narrows, allocation decides. The services (`master.services.allocator`) ask the database only
what cannot be known without it — the free partitions (on the computer the SLA names, if any),
the supplies of the release, the allocated hosts of a release and type — and turn the rows into
the plain candidates of `model`. `place(demand, candidates)` then decides, split like Nomad's
scheduler:

    filter   the candidates that can serve the demand at all (their kind, the SLA filters)
    score    rank them (a computer where the release is supplied first, then formatting order)
    plan     `place`: the best one, or `Waiting` with the status reason

The services lock the chosen row and apply it (a partition taken, or a host attached). The same
`place` serves a new request (placed before its one INSERT) and a waiting one (allocated when a
partition is formatted or freed). Nothing here imports SQLAlchemy, Flask or the database layer.
"""
from partita.master.allocation.model import Candidate, Demand, HostCandidate, PartitionCandidate, Waiting
from partita.master.allocation.plan import place

__all__ = ["Candidate", "Demand", "HostCandidate", "PartitionCandidate", "Waiting", "place"]
