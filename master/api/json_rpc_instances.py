"""JSON API methods about software instances and instance trees.

Each method receives a body already validated against ``openapi.yaml``, runs one service
transaction and answers a document from `json_rpc_documents`. No business rule lives here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from partita.master.api import context
from partita.master.api import json_rpc_documents as documents
from partita.master.db.models import SoftwareInstance
from partita.master.services import access, instances, lifecycle, release_schemas, views
from partita.master.services.identity import Caller
from partita.master.services.instances import RequestSpec
from partita.slap.states import ReportedState, parse_reported_state


def post_software_instance(body: dict[str, Any]) -> dict[str, Any]:
    """Request (create or update) an instance; a waiting one answers with its status reason."""
    spec = RequestSpec(
        title=body["title"], software_release=body["software_release_uri"],
        software_type=body["software_type"], parameters=body.get("parameters", {}),
        state=body.get("state"), shared=body.get("shared", False), sla=body.get("sla_parameters", {}),
    )
    caller, quota = context.caller(), context.quota()
    release_schemas.prepare(context.database(), spec.software_release)  # outside the transaction

    def work(session: Session) -> dict[str, Any]:
        instance = instances.request_instance(session, caller, spec, quota)
        if instance is None:
            return documents.nothing_to_destroy(
                spec.title, _root_title(session, caller, spec.title), spec.software_release,
                spec.software_type, spec.parameters, spec.shared,
            )
        return documents.instance_document(_read_view(session, instance))

    return context.database().run_write(work)


def _read_view(session: Session, instance: Any) -> views.InstanceView:
    """The view a reader gets: its status says when its computer's node is unreachable."""
    return views.instance_view(session, instance, context.settings().unreachable_after_seconds)


def _root_title(session: Session, caller: Caller, title: str) -> str:
    """The root title of the tree a request lands in: the caller's tree, or its own title."""
    requester = instances.acting_instance(session, caller)
    return views.instance_view(session, requester).root_title if requester is not None else title


def get_software_instance(body: dict[str, Any]) -> dict[str, Any]:
    with context.database().read() as session:
        instance = instances.get_instance_by_guid(session, context.caller(), body["instance_guid"])
        return documents.instance_document(_read_view(session, instance))


def get_instance_tree(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    with context.database().read() as session:
        root = instances.get_root_by_title(session, caller, body["title"])
        return documents.instance_document(_read_view(session, root))


def instance_tree_list(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    with context.database().read() as session:
        roots = instances.list_roots(session, caller)
        return {"result_list": [documents.tree_entry(_read_view(session, r)) for r in roots]}


def instance_node_instance_list(body: dict[str, Any]) -> dict[str, Any]:
    with context.database().read() as session:
        found = instances.get_instance_by_guid(session, context.caller(), body["instance_guid"])
        host = views.instance_view(session, found)
    return {"result_list": [documents.hosted_shared_entry(shared, host) for shared in host.hosted]}


def _on_instance(guid: str, change: Callable[[Session, SoftwareInstance], None]) -> None:
    """Apply `change` to the instance `guid` in one write transaction."""
    caller = context.caller()

    def work(session: Session) -> None:
        instance = instances.get_instance_by_guid(session, caller, guid)
        access.check_writer(session, caller, instance)
        change(session, instance)

    context.database().run_write(work)


def put_reported_state(body: dict[str, Any]) -> dict[str, Any]:
    """What the node did; `destroyed` frees the instance's partition."""
    state = parse_reported_state(body["reported_state"])
    message = body.get("status_message", "")

    def change(session: Session, instance: SoftwareInstance) -> None:
        partition = instance.partition
        if state == ReportedState.DESTROYED and partition is not None:
            lifecycle.free_partition(session, context.caller(), partition.computer.reference, partition.reference)
        else:
            lifecycle.report_state(session, instance, state, message)

    _on_instance(body["instance_guid"], change)
    return documents.success("Destroyed" if state == ReportedState.DESTROYED else "Recorded")


def put_connection_parameter(body: dict[str, Any]) -> dict[str, Any]:
    parameters, shared = body["connection_parameter_dict"], body.get("shared_instance_guid")
    _on_instance(body["instance_guid"],
                 lambda session, instance: lifecycle.set_connection_parameters(session, instance, parameters, shared))
    return documents.success("Updated")


def put_bang(body: dict[str, Any]) -> dict[str, Any]:
    message = body["message"]
    _on_instance(body["instance_guid"], lambda session, instance: lifecycle.bang(session, instance, message))
    return documents.success("Bang handled")


def put_title(body: dict[str, Any]) -> dict[str, Any]:
    title = body["title"]
    _on_instance(body["instance_guid"], lambda session, instance: lifecycle.rename(session, instance, title))
    return documents.success("Renamed")


def put_error(body: dict[str, Any]) -> dict[str, Any]:
    message = body["message"]
    _on_instance(body["instance_guid"],
                 lambda session, instance: lifecycle.report_state(session, instance, ReportedState.ERROR, message))
    return documents.success("Recorded")


def put_requested_list(body: dict[str, Any]) -> dict[str, Any]:
    """The end of an instance's successful pass: what it no longer requests is destroyed."""
    titles = list(body["title_list"])
    _on_instance(body["instance_guid"],
                 lambda session, instance: lifecycle.forget_unrequested(session, instance, titles))
    return documents.success("Updated")


def get_certificate(body: dict[str, Any]) -> dict[str, Any]:
    """No certificates in this version: empty ones, for a known instance."""
    with context.database().read() as session:
        instances.get_instance_by_guid(session, context.caller(), body["instance_guid"])
    return {"key": "", "certificate": ""}


METHODS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "slapos.post.v0.software_instance": post_software_instance,
    "slapos.get.v0.software_instance": get_software_instance,
    "slapos.get.v0.instance_tree": get_instance_tree,
    "slapos.allDocs.v0.instance_tree_list": instance_tree_list,
    "slapos.allDocs.v0.instance_node_instance_list": instance_node_instance_list,
    "slapos.put.v0.software_instance_reported_state": put_reported_state,
    "slapos.put.v0.software_instance_connection_parameter": put_connection_parameter,
    "slapos.put.v0.software_instance_bang": put_bang,
    "slapos.put.v0.software_instance_title": put_title,
    "slapos.put.v0.software_instance_error": put_error,
    "slapos.put.v0.software_instance_requested_list": put_requested_list,
    "slapos.get.v0.software_instance_certificate": get_certificate,
}
