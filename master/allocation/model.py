"""The plain data the allocation functions work on."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SLA_KEYS_FOR_PARTITIONS = ("computer_guid",)
SLA_KEYS_FOR_HOSTS = ("computer_guid", "instance_guid")


@dataclass(frozen=True)
class Demand:
    """What a request asks for: its software release, type and SLA filters."""

    software_release: str
    software_type: str = "default"
    sla: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionCandidate:
    """A free partition. `order` is its formatting order on its computer (slappart0 first)."""

    partition_id: int
    computer_reference: str
    order: int
    supplied: bool = False


@dataclass(frozen=True)
class HostCandidate:
    """An allocated, non-shared instance that could serve a shared request."""

    instance_id: int
    instance_guid: str
    computer_reference: str
    software_release: str
    software_type: str
    order: int
