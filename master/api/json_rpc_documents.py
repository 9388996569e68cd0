"""JSON API documents built from the service layer's views (plain data in, plain dicts out).

The shapes are slapproxy's JSON-RPC v0 ones (§2.7 of the protocol reference) plus Partita's
extra fields, all described in ``openapi.yaml``. The documents other processes read (instance
documents, tree entries, software installations, the compute node state) are `slap.wire`'s
contracts: this module only fills them from the views and renders them.
"""
from __future__ import annotations

from typing import Any

from partita.master.services.views import ComputerView, InstanceView, PartitionView, SharedView, SupplyView
from partita.slap.wire.instance import (
    InstanceDocument, NodeInstanceDocument, SharedInstance, TreeEntry, render_instance, render_tree_entry,
)
from partita.slap.wire.node_state import (
    ComputeNodeState, ComputePartition, SoftwareInstallation, render_node_state, render_software_installation,
)

NOTHING_TO_DESTROY = "no such instance: nothing to destroy"


def success(title: str) -> dict[str, Any]:
    return {"type": "success", "title": title}


def _instance_fields(view: InstanceView) -> dict[str, Any]:
    return {
        "title": view.title,
        "instance_guid": view.guid,
        "software_release_uri": view.software_release,
        "software_type": view.software_type,
        "state": view.requested_state,
        "connection_parameters": dict(view.connection_parameters),
        "parameters": dict(view.parameters),
        "shared": view.shared,
        "root_instance_title": view.root_title,
        "ip_list": tuple((interface, address) for interface, address in view.ip_list),
        "full_ip_list": (),
        "sla_parameters": dict(view.sla),
        "computer_guid": view.computer,
        "compute_partition_id": view.partition,
        "processing_timestamp": int(view.timestamp or 0),
        "access_status_message": "",
        "status_reason": view.status,
        "reported_state": view.reported_state,
        "timestamp": float(view.timestamp or 0.0),
    }


def instance_document(view: InstanceView) -> dict[str, Any]:
    """slapproxy's instance document, plus status_reason, reported_state and timestamp."""
    return render_instance(InstanceDocument(**_instance_fields(view)))


def nothing_to_destroy(title: str, root_title: str, software_release: str, software_type: str | None,
                       parameters: dict[str, Any], shared: bool) -> dict[str, Any]:
    """The answer to destroying an instance that does not exist: nothing was stored."""
    return render_instance(InstanceDocument(
        title=title, instance_guid=None, software_release_uri=software_release,
        software_type=software_type or "default", state="destroyed", connection_parameters={},
        parameters=dict(parameters), shared=shared, root_instance_title=root_title, ip_list=(),
        full_ip_list=(), sla_parameters={}, computer_guid=None, compute_partition_id=None,
        processing_timestamp=0, access_status_message="", status_reason=NOTHING_TO_DESTROY,
        reported_state=None, timestamp=0.0,
    ))


def tree_entry(view: InstanceView) -> dict[str, Any]:
    return render_tree_entry(TreeEntry(
        title=view.title, instance_guid=view.guid, state=view.requested_state, status_reason=view.status,
        software_release_uri=view.software_release, software_type=view.software_type,
        compute_partition_id=view.partition, computer_guid=view.computer, shared=view.shared,
    ))


def compute_node_instance_entry(partition: str, view: InstanceView) -> dict[str, Any]:
    return {
        "title": view.title, "instance_guid": view.guid, "state": view.requested_state,
        "compute_partition_id": partition, "software_release_uri": view.software_release,
        "software_type": view.software_type, "status_reason": view.status,
    }


def hosted_shared_entry(shared: SharedView, host: InstanceView) -> dict[str, Any]:
    return {
        "instance_guid": shared.guid, "title": shared.title, "software_type": shared.software_type,
        "state": shared.requested_state, "parameters": dict(shared.parameters),
        "compute_partition_id": host.partition, "software_release_uri": host.software_release,
        "connection_parameters": dict(shared.connection_parameters),
    }


def _software_installation(supply: SupplyView) -> SoftwareInstallation:
    return SoftwareInstallation(software_release_uri=supply.url, state=supply.requested_state,
                                reported_state=supply.reported_state)


def software_installation(supply: SupplyView) -> dict[str, Any]:
    return render_software_installation(_software_installation(supply))


def _node_instance(view: InstanceView) -> NodeInstanceDocument:
    """An instance document as the node sees it, with the shared instances it serves."""
    served = tuple(
        SharedInstance(instance_guid=shared.guid, title=shared.title, software_type=shared.software_type,
                       parameters=dict(shared.parameters),
                       connection_parameters=dict(shared.connection_parameters))
        for shared in view.hosted if shared.served
    )
    return NodeInstanceDocument(**_instance_fields(view), shared_instance_list=served)


def _partition(partition: PartitionView) -> ComputePartition:
    return ComputePartition(
        compute_partition_id=partition.reference,
        state=partition.state,
        ip_list=tuple((a.interface, a.address) for a in partition.addresses),
        instance=_node_instance(partition.instance) if partition.instance else None,
        ipv6_range=partition.ipv6_range,
    )


def compute_node_state(computer: ComputerView) -> dict[str, Any]:
    """Everything a node must converge to (`slapos.get.v0.compute_node_state`)."""
    return render_node_state(ComputeNodeState(
        computer_guid=computer.reference,
        generation=computer.generation,
        software_installation_list=tuple(_software_installation(s) for s in computer.supplies),
        compute_partition_list=tuple(_partition(p) for p in computer.partitions),
    ))


def compute_node_status(computer: ComputerView) -> str:
    """One line about a compute node, for `slapos.get.v0.compute_node_status`."""
    busy = sum(1 for p in computer.partitions if p.instance is not None)
    built = sum(1 for s in computer.supplies if s.reported_state == "available")
    failed = sum(1 for s in computer.supplies if s.reported_state == "error")
    return (
        f"{computer.reference}: {len(computer.partitions)} partitions ({busy} busy), "
        f"{len(computer.supplies)} software releases ({built} available, {failed} failed), "
        f"generation {computer.generation}"
    )
