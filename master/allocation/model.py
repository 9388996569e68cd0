"""The plain data allocation works on: a demand, the candidates the database narrowed, a decision.

No database types here: the services turn rows into these and apply what `place` returns.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SLA_KEYS_FOR_PARTITIONS = ("computer_guid", "network_guid", "mode")  # and every tag.NAME
SLA_KEYS_FOR_HOSTS = ("computer_guid", "instance_guid")

# A computer's allocation scope (`slapos computer open|close|drain`): only an open computer takes
# new instances; a draining one is also closed, and is reported until its instances are gone.
OPEN, CLOSED, DRAINING = "open", "close", "drain"
SCOPES = (OPEN, CLOSED, DRAINING)


@dataclass(frozen=True)
class Demand:
    """What a request asks for: its software release and type, whether it is shared (served by a
    host instance rather than given a partition), and its SLA filters.

    `needs_supply`: place it only on a computer where its release is supplied (a master; the proxy
    places as slapproxy does). `tree`: the id of its instance tree's root (None for a new root);
    `tree_networks`: the networks where an instance of that tree already runs (for
    ``mode=unique_by_network``)."""

    software_release: str
    software_type: str = "default"
    sla: Mapping[str, str] = field(default_factory=dict)
    shared: bool = False
    needs_supply: bool = False
    tree: int | None = None
    tree_networks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PartitionCandidate:
    """A free partition (the first free one of its computer), with what placement needs of its
    computer. `order` is its formatting order (slappart0 first); `supply` is the requested state of
    the demanded release's supply on its computer (None: never supplied); `tags`, `network` and
    `scope` are its computer's; `tree_instances` counts the instances of the demand's tree on its
    computer and `allocated` the computer's busy partitions."""

    partition_id: int
    computer_reference: str
    order: int
    supply: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    scope: str = OPEN
    tree_instances: int = 0
    allocated: int = 0


@dataclass(frozen=True)
class HostCandidate:
    """An allocated, non-shared instance that could serve a shared request."""

    instance_id: int
    instance_guid: str
    computer_reference: str
    software_release: str
    software_type: str
    order: int
    requested_state: str = "started"


Candidate = PartitionCandidate | HostCandidate


@dataclass(frozen=True)
class Waiting:
    """No candidate fits: the request waits. `reason` is its status reason; `none_free` says that
    no partition is free at all (the demand named no computer), so no younger request (oldest
    first) can be served either."""

    reason: str
    none_free: bool = False
