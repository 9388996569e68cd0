"""The compute node state: everything a node must converge to, in one document.

The master renders it in answer to ``slapos.get.v0.compute_node_state`` (OpenAPI
``ComputeNodeState``); the node agent parses it at the start of every pass (`node.desired`).
It holds the software releases supplied to the node (`SoftwareInstallation`, also the entries of
``slapos.allDocs.v0.compute_node_software_installation_list``) and, per partition
(`ComputePartition`), its state, its addresses and the instance it hosts
(`slap.wire.instance.NodeInstanceDocument`). ``generation`` grows on every change that concerns
the node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partita.slap.states import BuildState, PartitionState, SupplyState
from partita.slap.wire._fields import Fields, to_json
from partita.slap.wire.instance import NodeInstanceDocument, parse_node_instance

SUPPLY_STATES = frozenset(s.value for s in SupplyState)
BUILD_STATES = frozenset(s.value for s in BuildState)
PARTITION_STATES = frozenset(s.value for s in PartitionState)


@dataclass(frozen=True)
class SoftwareInstallation:
    software_release_uri: str
    state: str                       # requested: available | destroyed
    reported_state: str | None       # building | available | error | destroyed, None: nothing yet


@dataclass(frozen=True)
class ComputePartition:
    compute_partition_id: str
    state: str                       # free | busy
    ip_list: tuple[tuple[str, str], ...]   # (interface, address)
    instance: NodeInstanceDocument | None
    ipv6_range: str | None = None    # the partition's IPv6 range ("2001:db8::1:0/112"), if any


@dataclass(frozen=True)
class ComputeNodeState:
    computer_guid: str
    generation: int
    software_installation_list: tuple[SoftwareInstallation, ...]
    compute_partition_list: tuple[ComputePartition, ...]

    def partition(self, partition_id: str) -> ComputePartition | None:
        """The partition `partition_id`, if the node has it."""
        for partition in self.compute_partition_list:
            if partition.compute_partition_id == partition_id:
                return partition
        return None


def render_node_state(state: ComputeNodeState) -> dict[str, Any]:
    """The document as the JSON API sends it."""
    return to_json(state)


def parse_node_state(raw: object, where: str = "compute_node_state") -> ComputeNodeState:
    """The master's answer read from JSON; a MalformedDocument naming the field otherwise."""
    fields = Fields(raw, where)
    return ComputeNodeState(
        computer_guid=fields.text("computer_guid"),
        generation=fields.integer("generation"),
        software_installation_list=tuple(
            _software(entry) for entry in fields.objects("software_installation_list")),
        compute_partition_list=tuple(_partition(entry) for entry in fields.objects("compute_partition_list")),
    )


def render_software_installation(software: SoftwareInstallation) -> dict[str, Any]:
    return to_json(software)


def parse_software_installation(raw: object, where: str = "software installation") -> SoftwareInstallation:
    return _software(Fields(raw, where))


def _software(fields: Fields) -> SoftwareInstallation:
    return SoftwareInstallation(
        software_release_uri=fields.text("software_release_uri"),
        state=fields.choice("state", SUPPLY_STATES),
        reported_state=fields.choice("reported_state", BUILD_STATES, nullable=True),
    )


def _partition(fields: Fields) -> ComputePartition:
    raw_instance = fields.raw.get("instance")
    if "instance" not in fields.raw:
        raise fields.fail("instance", "is missing")
    return ComputePartition(
        compute_partition_id=fields.text("compute_partition_id"),
        state=fields.choice("state", PARTITION_STATES),
        ip_list=fields.ip_list("ip_list"),
        instance=None if raw_instance is None else parse_node_instance(raw_instance, f"{fields.where}.instance"),
        ipv6_range=fields.optional_text("ipv6_range") if "ipv6_range" in fields.raw else None,  # older masters
    )
