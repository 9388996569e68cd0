"""JSON API methods about compute nodes, their partitions and their software installations.

Each method receives a body already validated against ``openapi.yaml``, runs one service
transaction and answers a document from `json_rpc_documents`. No business rule lives here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request

from partita.master.api import context
from partita.master.api import json_rpc_documents as documents
from partita.master.services import (
    access, computer_placement, computer_registry, computer_views, computers, lifecycle, supplies, views,
)
from partita.master.services.computers import AddressSpec, PartitionSpec
from partita.slap.states import BuildState, parse_build_state, parse_supply_state


def get_compute_partition(body: dict[str, Any]) -> dict[str, Any]:
    """The instance a partition hosts (404 for an unknown or free partition)."""
    with context.database().read() as session:
        instance = lifecycle.instance_on(session, context.caller(), body["computer_guid"], body["compute_partition_id"])
        return documents.instance_document(views.instance_view(session, instance))


def _managed_view(reference: str) -> Any:
    """The computer's view, if the caller may manage the computer."""
    caller = context.caller()
    with context.database().read() as session:
        computer = computers.get_computer(session, reference)
        access.check_computer(session, caller, computer)
        return computer_views.computer_view(session, computer)


def compute_node_instance_list(body: dict[str, Any]) -> dict[str, Any]:
    computer = _managed_view(body["computer_guid"])
    return {"result_list": [
        documents.compute_node_instance_entry(p.reference, p.instance)
        for p in computer.partitions if p.instance is not None
    ]}


def software_installation_list(body: dict[str, Any]) -> dict[str, Any]:
    reference = body["computer_guid"]
    with context.database().read() as session:
        rows = [views.supply_view(reference, s) for s in supplies.list_supplies(session, context.caller(), reference)]
    return {"result_list": [documents.software_installation(s) for s in rows]}


def post_software_installation(body: dict[str, Any]) -> dict[str, Any]:
    """Supply a software release to a compute node (or ask for its removal)."""
    reference, url = body["computer_guid"], body["software_release_uri"]
    state = parse_supply_state(body.get("state", "available"))
    caller = context.caller()
    context.database().run_write(lambda session: supplies.supply(session, caller, reference, url, state))
    return documents.success(f"Supplied {url} to be {state.value}")


def put_compute_node_format(body: dict[str, Any]) -> dict[str, Any]:
    """Register the compute node's partitions and addresses; waiting requests get allocated."""
    specs = [
        PartitionSpec(
            reference=partition["partition_id"],
            addresses=tuple(
                AddressSpec(address=ip["ip-address"], netmask=ip.get("netmask", ""),
                            interface=ip.get("network-interface", ""))
                for ip in partition.get("ip_list", ())
            ),
            ipv6_range=partition.get("ipv6_range"),
        )
        for partition in body["compute_partition_list"]
    ]
    caller = context.caller()
    context.database().run_write(
        lambda session: computers.format_computer(session, caller, body["computer_guid"], specs)
    )
    context.heard_from(body["computer_guid"])  # a formatted node is online, not "never seen"
    return documents.success("Formatted")


def put_installation_reported_state(body: dict[str, Any]) -> dict[str, Any]:
    state = parse_build_state(body["reported_state"])
    _report_build(body, state, body.get("error_log", ""))
    return documents.success("Destroyed" if state == BuildState.DESTROYED else "Recorded")


def put_installation_error(body: dict[str, Any]) -> dict[str, Any]:
    _report_build(body, BuildState.ERROR, body["message"])
    return documents.success("Recorded")


def _report_build(body: dict[str, Any], state: BuildState, log: str) -> None:
    reference, url = body["computer_guid"], body["software_release_uri"]
    caller = context.caller()
    context.database().run_write(lambda session: supplies.report_build(session, caller, reference, url, state, log))


def _known_computer(reference: str) -> None:
    """404 unless the compute node exists; 403 unless the caller may manage it."""
    caller = context.caller()
    with context.database().read() as session:
        access.check_computer(session, caller, computers.get_computer(session, reference))


def ignored(body: dict[str, Any]) -> dict[str, Any]:
    """Accepted and ignored (compute node bang, usage, certificate removal) for a known node."""
    _known_computer(body["computer_guid"])
    return documents.success("Ignored")


def compute_node_status(body: dict[str, Any]) -> dict[str, Any]:
    computer = _managed_view(body["computer_guid"])
    return {"text": documents.compute_node_status(computer)}


def compute_node_list(body: dict[str, Any]) -> dict[str, Any]:
    """slapproxy's work-in-progress list; on an authenticated master, the caller's computers."""
    caller = context.caller()
    with context.database().read() as session:
        if caller.authenticated:
            found = [(e.reference, e.title) for e in computer_registry.list_computers(session, caller)]
        else:
            found = [(c.reference, c.title or c.reference) for c in computers.list_computers(session)]
    return {"result_list": [{"computer_guid": reference, "title": title} for reference, title in found]}


def put_compute_node_tags(body: dict[str, Any]) -> dict[str, Any]:
    """Set and remove tags of a compute node (owner or admin); its tags after the change."""
    caller, reference = context.caller(), body["computer_guid"]
    tags = context.database().run_write(lambda session: computer_placement.set_tags(
        session, caller, reference, body.get("set", {}), body.get("unset", [])))
    return {**documents.success(f"Tagged {reference}"), "computer_guid": reference, "tags": tags}


def put_compute_node_network(body: dict[str, Any]) -> dict[str, Any]:
    """Put a compute node in a network, or out of any ("") (owner or admin)."""
    caller, reference = context.caller(), body["computer_guid"]
    network = context.database().run_write(lambda session: computer_placement.set_network(
        session, caller, reference, body["network_guid"]))
    return {**documents.success(f"Network of {reference} set"), "computer_guid": reference,
            "network_guid": network}


def put_compute_node_allocation_scope(body: dict[str, Any]) -> dict[str, Any]:
    """Open, close or drain a compute node to new instances (owner or admin)."""
    caller, reference = context.caller(), body["computer_guid"]
    scope = context.database().run_write(lambda session: computer_placement.set_scope(
        session, caller, reference, body["allocation_scope"]))
    return {**documents.success(f"Allocation scope of {reference} set"), "computer_guid": reference,
            "allocation_scope": scope}


def hateoas_url(body: dict[str, Any]) -> dict[str, Any]:
    """The absolute URL of this server's HATEOAS API (honours the script root)."""
    return {"hateoas_url": request.url_root.rstrip("/") + "/hateoas/"}


METHODS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "slapos.get.v0.compute_partition": get_compute_partition,
    "slapos.allDocs.v0.compute_node_instance_list": compute_node_instance_list,
    "slapos.allDocs.v0.compute_node_software_installation_list": software_installation_list,
    "slapos.post.v0.software_installation": post_software_installation,
    "slapos.put.v0.compute_node_format": put_compute_node_format,
    "slapos.put.v0.software_installation_reported_state": put_installation_reported_state,
    "slapos.put.v0.software_installation_error": put_installation_error,
    "slapos.put.v0.compute_node_bang": ignored,
    "slapos.post.v0.compute_node_usage": ignored,
    "slapos.remove.v0.compute_node_certificate": ignored,
    "slapos.get.v0.compute_node_status": compute_node_status,
    "slapos.allDocs.WIP.compute_node_list": compute_node_list,
    "slapos.get.v0.hateoas_url": hateoas_url,
    "slapos.put.v0.compute_node_tags": put_compute_node_tags,
    "slapos.put.v0.compute_node_network": put_compute_node_network,
    "slapos.put.v0.compute_node_allocation_scope": put_compute_node_allocation_scope,
}
