"""Allocation with IO: fetch candidates under locks, let `master.allocation.plan` choose, apply.

Atomicity: on PostgreSQL the free partitions are fetched with ``FOR UPDATE SKIP LOCKED`` so two
workers never take the same one; on SQLite the write transaction is ``BEGIN IMMEDIATE`` (one
writer at a time). A request that finds nothing stays waiting, with a status reason naming its
filter, and is allocated oldest first when partitions are formatted or freed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, select, update
from sqlalchemy.orm import Session

from partita.master.allocation.model import (
    SLA_KEYS_FOR_HOSTS, SLA_KEYS_FOR_PARTITIONS, Demand, HostCandidate, PartitionCandidate,
)
from partita.master.allocation.plan import choose_host, choose_partition, describe_filter
from partita.master.db.models import Computer, Partition, SharedAttachment, SoftwareInstance, Supply
from partita.master.db.changes import bump
from partita.slap.states import InstanceState, PartitionState, SupplyState

CANDIDATE_BATCH = 32

_PARTITIONS = Partition.__table__
_COMPUTERS = Computer.__table__
_SUPPLIES = Supply.__table__
_INSTANCES = SoftwareInstance.__table__
_ATTACHMENTS = SharedAttachment.__table__

# Statements of every allocation, prepared once (building one costs more than running it).
_LOCK_FREE = (
    select(_PARTITIONS.c.id)
    .where(_PARTITIONS.c.id == bindparam("partition_id"), _PARTITIONS.c.state == PartitionState.FREE.value)
    .with_for_update(skip_locked=True)
)
_MARK_BUSY = (update(_PARTITIONS).where(_PARTITIONS.c.id == bindparam("partition_id"))
              .values(state=PartitionState.BUSY.value))
_SUPPLIED_COMPUTERS = select(_SUPPLIES.c.computer_id).where(
    _SUPPLIES.c.url == bindparam("url"), _SUPPLIES.c.requested_state == SupplyState.AVAILABLE.value,
)
_WAITING_SHARED = select(_INSTANCES.c.id).where(
    _INSTANCES.c.shared.is_(True),
    _INSTANCES.c.software_release == bindparam("software_release"),
    _INSTANCES.c.software_type == bindparam("software_type"),
    _INSTANCES.c.requested_state != InstanceState.DESTROYED.value,
    ~select(_ATTACHMENTS.c.shared_instance_id)
    .where(_ATTACHMENTS.c.shared_instance_id == _INSTANCES.c.id).exists(),
).order_by(_INSTANCES.c.created_at, _INSTANCES.c.id)


def demand_of(instance: SoftwareInstance) -> Demand:
    return Demand(instance.software_release, instance.software_type, dict(instance.sla or {}))


def is_waiting(instance: SoftwareInstance) -> bool:
    if instance.requested_state == InstanceState.DESTROYED.value:
        return False
    if instance.shared:
        return instance.attachment is None
    return instance.partition_id is None


@dataclass(frozen=True)
class Placement:
    """The partition an allocation took, with what the answer and the change tracking need."""

    partition_id: int
    partition_reference: str
    computer_id: int
    computer_reference: str


def waiting_reason(demand: Demand) -> str:
    return f"waiting for a free partition ({describe_filter(demand, SLA_KEYS_FOR_PARTITIONS)})"


def allocate(session: Session, instance: SoftwareInstance) -> bool:
    """Give a stored `instance` a partition (or a host if shared); on failure record why it waits."""
    if instance.shared:
        return _attach_to_host(session, instance)
    demand = demand_of(instance)
    placement = take_partition(session, demand)
    if placement is None:
        instance.status_reason = waiting_reason(demand)
        return False
    instance.partition = session.get(Partition, placement.partition_id)
    instance.status_reason = ""
    session.flush()
    bump(session, instance)
    attach_waiting_shared(session, instance)
    return True


def take_partition(session: Session, demand: Demand) -> Placement | None:
    """Mark the best free partition for `demand` busy and say which it is; None if none is free.

    Candidates are read without locks; only the chosen one is locked (``SKIP LOCKED`` on
    PostgreSQL; SQLite has one writer), so concurrent requests do not starve each other. A lost
    race removes that candidate and plans again. Plain statements on the session's connection:
    this is every allocation's hot path, and no loaded object is needed.
    """
    session.flush()
    connection = session.connection()
    tried: set[int] = set()
    while True:
        candidates = _partition_candidates(connection, demand, tried)
        if not candidates:
            return None
        while candidates:
            choice = choose_partition(list(candidates), demand)
            if choice is None:
                return None
            tried.add(choice.partition_id)
            if _lock_free(connection, choice.partition_id):
                _mark_busy(session, connection, choice.partition_id)
                return candidates[choice]
            del candidates[choice]


@functools.cache
def _candidates_query(supplied: bool, on_computer: bool, excluding: bool) -> Select[Any]:
    """The first free partitions in formatting order: on supplied computers only, on the SLA's
    computer only, excluding partitions already tried, as asked (one prepared statement per shape)."""
    query = (
        select(_PARTITIONS.c.id, _PARTITIONS.c.reference, _PARTITIONS.c.computer_id, _COMPUTERS.c.reference)
        .join(_COMPUTERS, _COMPUTERS.c.id == _PARTITIONS.c.computer_id)
        .where(_PARTITIONS.c.state == PartitionState.FREE.value)
        .order_by(_PARTITIONS.c.id).limit(CANDIDATE_BATCH)
    )
    if supplied:
        query = query.where(_PARTITIONS.c.computer_id.in_(bindparam("supplied", expanding=True)))
    if on_computer:
        query = query.where(_COMPUTERS.c.reference == bindparam("computer"))
    if excluding:
        query = query.where(_PARTITIONS.c.id.not_in(bindparam("exclude", expanding=True)))
    return query


def _lock_free(connection: Connection, partition_id: int) -> bool:
    return connection.execute(_LOCK_FREE, {"partition_id": partition_id}).first() is not None


def _mark_busy(session: Session, connection: Connection, partition_id: int) -> None:
    connection.execute(_MARK_BUSY, {"partition_id": partition_id})
    loaded = session.identity_map.get(session.identity_key(Partition, partition_id))
    if loaded is not None:
        session.expire(loaded, ["state"])


def _partition_candidates(connection: Connection, demand: Demand,
                          exclude: set[int]) -> dict[PartitionCandidate, Placement]:
    """The first free partitions (formatting order) on computers where the release is supplied,
    and on any computer; two short indexed queries, whatever the number of partitions."""
    supplied = set(connection.execute(_SUPPLIED_COMPUTERS, {"url": demand.software_release}).scalars())
    computer = demand.sla.get("computer_guid")
    parameters = {"supplied": sorted(supplied), "computer": computer, "exclude": sorted(exclude)}

    def first_free(on_supplied: bool) -> list[Any]:
        query = _candidates_query(on_supplied, computer is not None, bool(exclude))
        return list(connection.execute(query, parameters))

    rows = first_free(True) if supplied else []
    seen = {row[0] for row in rows}
    rows += [row for row in first_free(False) if row[0] not in seen]
    return {
        PartitionCandidate(partition_id=pid, computer_reference=cref, order=pid, supplied=cid in supplied):
            Placement(pid, pref, cid, cref)
        for pid, pref, cid, cref in rows
    }


def _host_candidates(session: Session, demand: Demand) -> list[HostCandidate]:
    query = (
        select(SoftwareInstance.id, SoftwareInstance.guid, Computer.reference,
               SoftwareInstance.software_release, SoftwareInstance.software_type)
        .join(Partition, Partition.id == SoftwareInstance.partition_id)
        .join(Computer, Computer.id == Partition.computer_id)
        .where(and_(
            SoftwareInstance.shared.is_(False),
            SoftwareInstance.software_release == demand.software_release,
            SoftwareInstance.software_type == demand.software_type,
            SoftwareInstance.requested_state != InstanceState.DESTROYED.value,
        ))
        .order_by(SoftwareInstance.id)
    )
    return [HostCandidate(iid, guid, ref, sr, st, order=iid) for iid, guid, ref, sr, st in session.execute(query)]


def _attach_to_host(session: Session, instance: SoftwareInstance) -> bool:
    demand = demand_of(instance)
    host = choose_host(_host_candidates(session, demand), demand)
    if host is None:
        instance.status_reason = (
            f"waiting for a host instance of {demand.software_release} "
            f"(type {demand.software_type}; {describe_filter(demand, SLA_KEYS_FOR_HOSTS)})"
        )
        return False
    host_instance = session.get(SoftwareInstance, host.instance_id)
    assert host_instance is not None
    instance.attachment = SharedAttachment(host_instance_id=host_instance.id)
    instance.status_reason = ""
    session.flush()
    bump(session, host_instance)
    return True


def attach_waiting_shared(session: Session, host: SoftwareInstance) -> None:
    """Shared requests waiting for a host like `host` get it now (one prepared query when none wait)."""
    waiting = list(session.connection().execute(_WAITING_SHARED, {
        "software_release": host.software_release, "software_type": host.software_type,
    }).scalars())
    for shared_id in waiting:
        shared = session.get(SoftwareInstance, shared_id)
        assert shared is not None
        _attach_to_host(session, shared)


def allocate_waiting(session: Session) -> int:
    """Allocate waiting (non-shared) requests, oldest first, while partitions are free."""
    waiting = session.scalars(
        select(SoftwareInstance).where(
            SoftwareInstance.shared.is_(False),
            SoftwareInstance.partition_id.is_(None),
            SoftwareInstance.requested_state != InstanceState.DESTROYED.value,
        ).order_by(SoftwareInstance.created_at, SoftwareInstance.id)
        .with_for_update(skip_locked=True)
    )
    allocated = 0
    for instance in list(waiting):
        if allocate(session, instance):
            allocated += 1
        elif not instance.sla.get("computer_guid"):
            break  # nothing free anywhere: the younger ones cannot be served either
    return allocated
