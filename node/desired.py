"""What the master wants of this node, as plain data (from ``slapos.get.v0.compute_node_state``).

Pure: no IO. `parse` refuses an answer that lacks what the node needs, with one line.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from partita.node.errors import NodeError


def release_digest(url: str) -> str:
    """md5 of a software release's URL: its directory name under software_root, as in SlapOS."""
    return hashlib.md5(url.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SoftwareWant:
    url: str
    state: str                    # available | destroyed
    reported_state: str | None    # building | available | error | destroyed | None

    @property
    def digest(self) -> str:
        return release_digest(self.url)


@dataclass(frozen=True)
class InstanceWant:
    guid: str
    title: str
    state: str                    # started | stopped | destroyed
    software_release: str
    software_type: str
    timestamp: float
    reported_state: str | None
    document: dict[str, Any]      # the whole instance document (parameters, shared instances…)

    @property
    def stamp(self) -> str:
        """The timestamp as the text kept in ``<partition>/.timestamp``."""
        return repr(float(self.timestamp))


@dataclass(frozen=True)
class PartitionWant:
    partition_id: str
    ip_list: tuple[tuple[str, str], ...]
    instance: InstanceWant | None


@dataclass(frozen=True)
class NodeWant:
    computer_id: str
    generation: int
    software: tuple[SoftwareWant, ...]
    partitions: tuple[PartitionWant, ...]

    def partition(self, partition_id: str) -> PartitionWant | None:
        for partition in self.partitions:
            if partition.partition_id == partition_id:
                return partition
        return None


def parse(answer: dict[str, Any]) -> NodeWant:
    """The master's answer as a NodeWant; a NodeError if it is not what the API documents."""
    try:
        return NodeWant(
            computer_id=str(answer["computer_guid"]),
            generation=int(answer["generation"]),
            software=tuple(SoftwareWant(str(s["software_release_uri"]), str(s["state"]), s.get("reported_state"))
                           for s in answer["software_installation_list"]),
            partitions=tuple(_partition(p) for p in answer["compute_partition_list"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise NodeError(f"the master's compute_node_state answer is malformed: {error!r}") from None


def _partition(raw: dict[str, Any]) -> PartitionWant:
    instance = raw.get("instance")
    return PartitionWant(
        partition_id=str(raw["compute_partition_id"]),
        ip_list=tuple((str(i), str(a)) for i, a in raw.get("ip_list") or ()),
        instance=_instance(instance) if instance else None,
    )


def _instance(raw: dict[str, Any]) -> InstanceWant:
    return InstanceWant(
        guid=str(raw["instance_guid"]),
        title=str(raw["title"]),
        state=str(raw["state"]),
        software_release=str(raw["software_release_uri"]),
        software_type=str(raw.get("software_type") or "default"),
        timestamp=float(raw.get("timestamp") or 0.0),
        reported_state=raw.get("reported_state"),
        document=raw,
    )
