"""What nodes and instances report: states, connection parameters, bangs, renames, freeing.

A changed connection parameter bumps the requester of the instance that published it (so a root
whose child publishes is processed again in the same node pass); freeing a destroyed partition
makes it reusable at once and hands it to the oldest waiting request. After a successful pass a
node says which instances a partition requested in it: the ones it no longer requests are
destroyed, with what they requested (SlapOS unlinks them and collects them later).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import SharedAttachment, SoftwareInstance
from partita.master.services import access, allocator, certificates
from partita.master.db.changes import bump, mark_computer_changed
from partita.master.services.computers import get_partition
from partita.master.services.identity import Caller
from partita.master.services.instances import set_requested_state
from partita.master.services.validation import clean_parameters, clean_text, clean_title
from partita.slap.errors import Conflict, NotFound
from partita.slap.states import InstanceState, PartitionState, ReportedState

MAX_MESSAGE = 64 * 1024


def instance_on(session: Session, caller: Caller, computer: str, partition: str) -> SoftwareInstance:
    """The instance a busy partition hosts; NotFound for an unknown or free partition, 403 when
    the caller may not reach it."""
    found = get_partition(session, computer, partition)
    if found.instance is None:
        raise NotFound(f"partition {partition!r} of computer {computer!r} hosts no instance")
    access.check_instance(session, caller, found.instance)
    return found.instance


def report_state(session: Session, instance: SoftwareInstance, state: ReportedState,
                 message: str = "") -> None:
    """Record what the node did with an instance (started, stopped, error with its message)."""
    message = clean_text(message)
    instance.reported_state = state.value
    if state == ReportedState.ERROR:
        instance.status_reason = message[-MAX_MESSAGE:] or "error reported by the node"
    else:
        instance.status_reason = message[-MAX_MESSAGE:] if message else state.value


def set_connection_parameters(session: Session, instance: SoftwareInstance,
                              parameters: dict[str, Any], shared_reference: str | None = None) -> None:
    """Publish `parameters` for `instance`, or for the shared instance it hosts named `shared_reference`."""
    parameters = clean_parameters(parameters, "connection parameters")
    target = instance if shared_reference is None else hosted_shared(session, instance, shared_reference)
    if target.connection_parameters == parameters:
        return
    target.connection_parameters = parameters
    _connection_shown_changed(session, target)
    if target.requester_id is not None:
        requester = session.get(SoftwareInstance, target.requester_id)
        if requester is not None:
            bump(session, requester)


def _connection_shown_changed(session: Session, instance: SoftwareInstance) -> None:
    """Its node's view of the computer shows the instance's connection parameters: a new
    generation (without a timestamp bump: publishing must not make the node process it again)."""
    if instance.partition is not None:
        mark_computer_changed(session, instance.partition.computer)


def forget_unrequested(session: Session, instance: SoftwareInstance, titles: list[str]) -> list[str]:
    """Destroy what `instance` requested but no longer requests (not in `titles`, the titles its
    last successful pass requested); return their titles."""
    kept = set(titles)
    children = session.scalars(select(SoftwareInstance).where(
        SoftwareInstance.requester_id == instance.id,
        SoftwareInstance.requested_state != InstanceState.DESTROYED.value,
    ).order_by(SoftwareInstance.id))
    dropped = [child for child in children if child.title not in kept]
    for child in dropped:
        set_requested_state(session, child, InstanceState.DESTROYED)
    return [child.title for child in dropped]


def hosted_shared(session: Session, host: SoftwareInstance, reference: str) -> SoftwareInstance:
    """A shared instance hosted by `host`, named by guid or by title."""
    shared = session.scalar(
        select(SoftwareInstance).join(SharedAttachment, SharedAttachment.shared_instance_id == SoftwareInstance.id)
        .where(SharedAttachment.host_instance_id == host.id)
        .where((SoftwareInstance.guid == reference) | (SoftwareInstance.title == reference))
    )
    if shared is None:
        raise NotFound(f"instance {host.title!r} hosts no shared instance {reference!r}")
    return shared


def bang(session: Session, instance: SoftwareInstance, message: str = "") -> None:
    """Ask for the whole tree to be processed again."""
    tree_id = instance.root_id or instance.id
    for member in session.scalars(select(SoftwareInstance).where(SoftwareInstance.root_id == tree_id)):
        bump(session, member)


def rename(session: Session, instance: SoftwareInstance, new_title: str) -> None:
    new_title = clean_title(new_title)
    if new_title == instance.title:
        return
    clash = session.scalar(select(SoftwareInstance.id).where(
        SoftwareInstance.owner_id == instance.owner_id,
        SoftwareInstance.scope_id == instance.scope_id,
        SoftwareInstance.title == new_title,
    ))
    if clash is not None:
        raise Conflict(f"an instance titled {new_title!r} already exists in this tree")
    instance.title = new_title
    bump(session, instance)
    _bump_shown_title(session, instance)


def _bump_shown_title(session: Session, instance: SoftwareInstance) -> None:
    """Others show a renamed instance's title: its host (slave_title), its tree (root title)."""
    if instance.shared:
        if instance.attachment is not None:
            bump(session, instance.attachment.host_instance)
        return
    if instance.root_id in (None, instance.id):
        for member in session.scalars(select(SoftwareInstance).where(
                SoftwareInstance.root_id == instance.id, SoftwareInstance.id != instance.id)):
            bump(session, member)


def free_partition(session: Session, caller: Caller, computer: str, partition_reference: str) -> None:
    """The node destroyed the instance on this partition and wiped it: free it and reuse it. Only
    the hosting computer says so (`access.check_freeing`, issue 10): a partition freed on anyone
    else's word would reach the next tenant with the previous one's files inside."""
    partition = get_partition(session, computer, partition_reference)
    access.check_computer(session, caller, partition.computer)
    access.check_freeing(caller, partition.computer.reference, partition.reference)
    instance = partition.instance
    if instance is None:
        return  # already free: a repeated report changes nothing
    if instance.requested_state != InstanceState.DESTROYED.value:
        raise Conflict(f"instance {instance.title!r} on {partition_reference!r} is not requested destroyed")
    for attachment in session.scalars(
        select(SharedAttachment).where(SharedAttachment.host_instance_id == instance.id)
    ):
        shared = attachment.shared_instance
        session.delete(attachment)
        shared.status_reason = "its host was destroyed; waiting for another host"
    instance.partition = None
    instance.reported_state = ReportedState.DESTROYED.value
    partition.state = PartitionState.FREE.value
    certificates.revoke_partition(session, partition.computer_id, partition.reference)
    mark_computer_changed(session, partition.computer)
    session.flush()
    _collect_destroyed(session, instance)
    allocator.allocate_waiting(session, needs_supply=caller.authenticated)


def _collect_destroyed(session: Session, instance: SoftwareInstance) -> None:
    """Delete destroyed, freed instances that no live instance of the tree still refers to."""
    tree_id = instance.root_id or instance.id
    members = list(session.scalars(select(SoftwareInstance).where(SoftwareInstance.root_id == tree_id)))
    done = {m.id for m in members
            if m.requested_state == InstanceState.DESTROYED.value and m.partition_id is None}
    live = [m for m in members if m.id not in done]
    if not live:
        for member in members:  # drop the self-references first: rows go in any order
            member.requester_id = None
            member.root_id = None
        session.flush()
        for member in members:
            session.delete(member)
        session.flush()
        return
    referenced = {m.root_id for m in live} | {m.requester_id for m in live}
    for member in members:
        if member.id in done and member.id not in referenced:
            session.delete(member)
    session.flush()
