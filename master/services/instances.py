"""Requesting software instances: idempotent per (owner, tree, title), atomic allocation.

A user's request creates or updates a root instance. A partition's request creates or updates an
instance in its own tree (the scope of its root), with the requesting instance as requester.
A requested state applies to the instance and every instance it requested, down the tree; a child
re-requested as started while its root is stopped or destroyed takes the root's state.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from partita.master.allocation import Demand, Waiting
from partita.master.allocation.sla import check_sla
from partita.master.db.models import ROOT_SCOPE, Computer, Owner, Partition, PartitionAddress, SoftwareInstance
from partita.master.services import access, allocator, audit, quotas, release_schemas, software_names
from partita.master.db.changes import bump, next_timestamp
from partita.master.services.computers import known_computer
from partita.master.services.identity import Caller
from partita.master.services.owners import ensure_owner_id, find_owner
from partita.master.services.validation import (
    clean_parameters, clean_sla, clean_software_release, clean_software_type, clean_title,
)
from partita.slap.errors import BadAuthorization, Conflict, Forbidden, NotFound
from partita.slap.states import InstanceState, check_instance_transition, parse_instance_state


@dataclass(frozen=True)
class RequestSpec:
    """A request as every protocol gives it, before validation."""

    title: str
    software_release: str
    software_type: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    shared: bool = False
    sla: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CleanRequest:
    title: str
    software_release: str
    software_type: str
    parameters: dict[str, Any]
    state: InstanceState | None
    shared: bool
    sla: dict[str, str]


def clean_request(spec: RequestSpec) -> CleanRequest:
    """Validate every field before anything is stored (pure); an SLA key the master does not
    know is refused (`allocation.sla`)."""
    cleaned = CleanRequest(
        title=clean_title(spec.title),
        software_release=clean_software_release(spec.software_release),
        software_type=clean_software_type(spec.software_type),
        parameters=clean_parameters(spec.parameters),
        state=None if spec.state in (None, "", "None") else parse_instance_state(spec.state),
        shared=bool(spec.shared),
        sla=clean_sla(spec.sla),
    )
    check_sla(cleaned.sla, cleaned.shared)
    return cleaned


def new_guid() -> str:
    return "SOFTINST-" + uuid.uuid4().hex[:16]


def acting_instance(session: Session, caller: Caller) -> SoftwareInstance | None:
    """The instance on whose behalf a partition calls, or None for a user."""
    if not caller.is_partition:
        return None
    instance = session.scalar(
        select(SoftwareInstance).join(Partition, Partition.id == SoftwareInstance.partition_id)
        .join(Computer, Computer.id == Partition.computer_id)
        .where(Computer.reference == caller.computer, Partition.reference == caller.partition)
    )
    if instance is None:
        raise BadAuthorization(
            f"no instance on partition {caller.partition!r} of computer {caller.computer!r}"
        )
    return instance


# Statements of every request, prepared once (building one costs more than running it).
_INSTANCES = SoftwareInstance.__table__
_MAKE_ROOT = (update(_INSTANCES).where(_INSTANCES.c.id == bindparam("instance_id"))
              .values(root_id=_INSTANCES.c.id))
_BY_TITLE = select(SoftwareInstance).where(
    SoftwareInstance.owner_id == bindparam("owner_id"),
    SoftwareInstance.scope_id == bindparam("scope_id"),
    SoftwareInstance.title == bindparam("title"),
)
_BY_TITLE_LOCKED = _BY_TITLE.with_for_update()


def find_instance(session: Session, owner_id: int, scope_id: int, title: str,
                  lock: bool = False) -> SoftwareInstance | None:
    """The instance titled `title` in a tree scope (statements prepared once: every request asks)."""
    return session.scalar(_BY_TITLE_LOCKED if lock else _BY_TITLE,
                          {"owner_id": owner_id, "scope_id": scope_id, "title": title})


def get_instance_by_guid(session: Session, caller: Caller, guid: str) -> SoftwareInstance:
    """The instance `guid`, if the caller may reach it (403 otherwise)."""
    instance = session.scalar(select(SoftwareInstance).where(SoftwareInstance.guid == guid))
    if instance is None:
        raise NotFound(f"unknown instance {guid!r}")
    access.check_instance(session, caller, instance)
    return instance


def get_root_by_title(session: Session, caller: Caller, title: str) -> SoftwareInstance:
    owner = find_owner(session, caller.owner)
    instance = find_instance(session, owner.id, ROOT_SCOPE, title) if owner is not None else None
    if instance is None:
        raise NotFound(f"no instance titled {title!r}")
    return instance


def list_roots(session: Session, caller: Caller) -> list[SoftwareInstance]:
    """The root instances (one per tree) of the caller's owner, oldest first."""
    owner = find_owner(session, caller.owner)
    if owner is None:
        return []
    return list(session.scalars(
        select(SoftwareInstance).where(SoftwareInstance.owner_id == owner.id,
                                       SoftwareInstance.scope_id == ROOT_SCOPE)
        .order_by(SoftwareInstance.id)
    ))


def tree_addresses(session: Session, instance: SoftwareInstance) -> list[tuple[str, str]]:
    """(interface, address) of every partition hosting an instance of `instance`'s tree (what a
    node's firewall lets in: SlapOS's hosting subscription IP list), in tree order."""
    tree_id = instance.root_id or instance.id
    rows = session.execute(
        select(PartitionAddress.interface, PartitionAddress.address)
        .join(SoftwareInstance, SoftwareInstance.partition_id == PartitionAddress.partition_id)
        .where(SoftwareInstance.root_id == tree_id)
        .order_by(SoftwareInstance.id, PartitionAddress.id)
    )
    return [(interface, address) for interface, address in rows]


def request_instance(session: Session, caller: Caller, spec: RequestSpec,
                     quota: quotas.Quota | None = None) -> SoftwareInstance | None:
    """Create or update the instance `spec` names; None if it asks to destroy one that does not exist.

    A user requests in its own namespace, a partition in its instance's tree; a computer requests
    nothing (its partitions do, with their own certificates). A request that would take the owner
    over `quota` (`master.services.quotas`) is refused before anything is stored. Requests by an
    authenticated caller are recorded in the audit log.

    A ``product.NAME`` release is resolved first (`software_names`); parameters that do not match
    the release's schema (`release_schemas`, read beforehand by `release_schemas.prepare`) are a
    400 naming the field, and nothing is stored."""
    if caller.role == "computer":
        raise Forbidden("a computer certificate may not request instances (a partition uses its own certificate)")
    if software_names.is_short_name(spec.software_release):
        spec = replace(spec, software_release=software_names.resolve(session, spec.software_release))
    request = clean_request(spec)
    instance = _request(session, caller, request, quota or quotas.Quota())
    if caller.authenticated:
        action = "instance.destroy" if request.state == InstanceState.DESTROYED else "instance.request"
        audit.record(session, caller, action, request.title, detail=request.software_release)
    return instance


def _request(session: Session, caller: Caller, request: CleanRequest,
             quota: quotas.Quota) -> SoftwareInstance | None:
    pinned = request.sla.get("computer_guid")
    if pinned and request.state != InstanceState.DESTROYED:
        # refused, not stored as waiting forever for a computer that will never format
        known_computer(session, caller, pinned, " (the SLA's computer_guid)")
    requester = acting_instance(session, caller)
    if requester is not None:
        owner_id, scope_id = requester.owner_id, requester.root_id or requester.id
    else:
        owner_id, scope_id = ensure_owner_id(session, caller.owner), ROOT_SCOPE
    instance = find_instance(session, owner_id, scope_id, request.title, lock=True)
    _check_parameters(instance, request)
    if instance is None:
        if request.state == InstanceState.DESTROYED:
            return None
        _check_quota(session, quota, caller.owner, owner_id, None, request)
        return _create(session, request, owner_id, scope_id, requester, needs_supply=caller.authenticated)
    if request.state != InstanceState.DESTROYED:
        _check_quota(session, quota, caller.owner, owner_id, instance, request)
    _update(session, instance, request, requester)
    if allocator.is_waiting(instance):
        allocator.allocate(session, instance, needs_supply=caller.authenticated)
    return instance


def _check_parameters(instance: SoftwareInstance | None, request: CleanRequest) -> None:
    """Check the parameters against the release's schema, unless the request destroys, or
    repeats what is stored (a re-request of an unchanged instance stays idempotent)."""
    if request.state == InstanceState.DESTROYED:
        return
    if instance is not None and (instance.software_release, instance.software_type, instance.parameters,
                                 instance.shared) == (request.software_release, request.software_type,
                                                      request.parameters, request.shared):
        return
    release_schemas.check(request.software_release, request.software_type, request.parameters, request.shared)


_LOCK_OWNER = select(Owner.__table__.c.id).where(Owner.__table__.c.id == bindparam("owner_id")).with_for_update()
_OWNER_USAGE = select(
    func.count(SoftwareInstance.id),
    func.coalesce(func.sum(func.length(cast(SoftwareInstance.parameters, Text))), 0),
).where(SoftwareInstance.owner_id == bindparam("owner_id"))


def owner_usage(session: Session, owner_id: int) -> quotas.Usage:
    """How many instances owner `owner_id` has and the stored size of their parameters, counted
    under a lock of the owner's row (PostgreSQL: a concurrent request of the same owner waits until
    this transaction ends, then counts what it stored; SQLite has one writer at a time)."""
    session.connection().execute(_LOCK_OWNER, {"owner_id": owner_id})
    count, size = session.execute(_OWNER_USAGE, {"owner_id": owner_id}).one()
    return quotas.Usage(instances=int(count), parameter_bytes=int(size))


def _check_quota(session: Session, quota: quotas.Quota, owner: str, owner_id: int,
                 instance: SoftwareInstance | None, request: CleanRequest) -> None:
    """Read the owner's usage only when the request could exceed a quota (growth)."""
    old_bytes = 0 if instance is None else quotas.stored_size(instance.parameters)
    new_bytes = quotas.stored_size(request.parameters)
    growth = {"new_instance": instance is None, "old_bytes": old_bytes, "new_bytes": new_bytes}
    if quotas.needs_usage(**growth):
        quotas.check_request(quota, owner_usage(session, owner_id), owner, **growth)


def _create(session: Session, request: CleanRequest, owner_id: int, scope_id: int,
            requester: SoftwareInstance | None, needs_supply: bool) -> SoftwareInstance:
    """Store a new instance, placed before its one INSERT (on a partition, or a host if shared).
    `needs_supply`: on a master, only where its release is supplied (`allocator.demand_of`)."""
    state = request.state or InstanceState.STARTED
    if requester is not None:
        state = _imposed_by_root(session, requester, state)
    demand = Demand(request.software_release, request.software_type, request.sla, shared=request.shared,
                    needs_supply=needs_supply, tree=scope_id if scope_id != ROOT_SCOPE else None)
    outcome = allocator.place(session, demand)
    now = time.time()
    instance = SoftwareInstance(
        guid=new_guid(), owner_id=owner_id, title=request.title, scope_id=scope_id,
        root_id=scope_id if scope_id != ROOT_SCOPE else None,
        requester_id=requester.id if requester is not None else None,
        software_release=request.software_release, software_type=request.software_type,
        parameters=request.parameters, connection_parameters={}, sla=request.sla,
        requested_state=state.value, shared=request.shared, timestamp=next_timestamp(None, now),
        status_reason=outcome.reason if isinstance(outcome, Waiting) else "", created_at=now,
        partition_id=outcome.partition_id if isinstance(outcome, allocator.Placement) else None,
    )
    session.add(instance)
    session.flush()
    if instance.root_id is None:
        _make_root(session, instance)
    allocator.settle(session, instance, outcome)
    return instance


def _make_root(session: Session, instance: SoftwareInstance) -> None:
    """A new root is its own tree's root: its id is known only once inserted."""
    session.connection().execute(_MAKE_ROOT, {"instance_id": instance.id})
    set_committed_value(instance, "root_id", instance.id)


def _imposed_by_root(session: Session, requester: SoftwareInstance, wanted: InstanceState) -> InstanceState:
    root = session.get(SoftwareInstance, requester.root_id) if requester.root_id else requester
    root_state = InstanceState(root.requested_state) if root is not None else InstanceState.STARTED
    if root_state != InstanceState.STARTED and wanted != InstanceState.DESTROYED:
        return root_state
    return wanted


def _update(session: Session, instance: SoftwareInstance, request: CleanRequest,
            requester: SoftwareInstance | None) -> None:
    if instance.shared != request.shared:
        kind = "shared" if instance.shared else "not shared"
        raise Conflict(f"instance {instance.title!r} exists and is {kind}")
    wanted = request.state or InstanceState(instance.requested_state)
    if requester is not None:
        wanted = _imposed_by_root(session, requester, wanted)
    check_instance_transition(InstanceState(instance.requested_state), wanted)
    changed = False
    for name in ("software_release", "software_type", "parameters", "sla"):
        value = getattr(request, name)
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed = True
    if requester is not None and instance.requester_id != requester.id:
        instance.requester_id = requester.id
        changed = True
    if changed:
        bump(session, instance)
        if instance.shared and instance.attachment is not None:
            bump(session, instance.attachment.host_instance)
        if not instance.shared and instance.reported_state is not None:
            # what the node reported was about the old request: until it reports again, the
            # instance is "waiting for the node", so `slapos request --wait` waits for the change
            instance.reported_state = None
            instance.status_reason = ""
    if wanted.value != instance.requested_state:
        set_requested_state(session, instance, wanted)


def set_requested_state(session: Session, instance: SoftwareInstance, state: InstanceState) -> None:
    """Apply `state` to `instance` and everything it requested, down its part of the tree."""
    for member in [instance, *descendants(session, instance)]:
        current = InstanceState(member.requested_state)
        if current == state or current == InstanceState.DESTROYED:
            continue
        check_instance_transition(current, state)
        member.requested_state = state.value
        bump(session, member)
        if member.shared:
            _shared_state_changed(session, member, state)
        elif state == InstanceState.DESTROYED and member.partition_id is None:
            session.delete(member)  # never allocated: nothing for a node to clean
    session.flush()


def _shared_state_changed(session: Session, shared: SoftwareInstance, state: InstanceState) -> None:
    attachment = shared.attachment
    if attachment is not None:
        bump(session, attachment.host_instance)
    if state == InstanceState.DESTROYED:
        session.delete(shared)  # the host drops it from its list on its next pass


def descendants(session: Session, instance: SoftwareInstance) -> list[SoftwareInstance]:
    """Every instance requested by `instance`, directly or not (breadth first)."""
    tree_id = instance.root_id or instance.id
    members = list(session.scalars(
        select(SoftwareInstance).where(SoftwareInstance.root_id == tree_id,
                                       SoftwareInstance.id != instance.id)
    ))
    children: dict[int, list[SoftwareInstance]] = {}
    for member in members:
        if member.requester_id is not None:
            children.setdefault(member.requester_id, []).append(member)
    found: list[SoftwareInstance] = []
    queue = [instance.id]
    while queue:
        for child in children.pop(queue.pop(0), []):
            found.append(child)
            queue.append(child.id)
    return found
