"""The plain data allocation works on: a demand, the candidates the database narrowed, a decision.

No database types here: the services turn rows into these and apply what `place` returns.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SLA_KEYS_FOR_PARTITIONS = ("computer_guid",)
SLA_KEYS_FOR_HOSTS = ("computer_guid", "instance_guid")


@dataclass(frozen=True)
class Demand:
    """What a request asks for: its software release and type, whether it is shared (served by a
    host instance rather than given a partition), and its SLA filters."""

    software_release: str
    software_type: str = "default"
    sla: Mapping[str, str] = field(default_factory=dict)
    shared: bool = False


@dataclass(frozen=True)
class PartitionCandidate:
    """A free partition. `order` is its formatting order (slappart0 first); `supply` is the
    requested state of the demanded release's supply on its computer (None: never supplied)."""

    partition_id: int
    computer_reference: str
    order: int
    supply: str | None = None


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
    the demand filtered nothing and still found no partition, so no younger request (oldest first)
    can be served either."""

    reason: str
    none_free: bool = False
