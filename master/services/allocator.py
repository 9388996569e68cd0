"""Allocation with IO: fetch candidates under locks, let `master.allocation.plan` choose, apply.

Atomicity: on PostgreSQL the free partitions are fetched with ``FOR UPDATE SKIP LOCKED`` so two
workers never take the same one; on SQLite the write transaction is ``BEGIN IMMEDIATE`` (one
writer at a time). A request that finds nothing stays waiting, with a status reason naming its
filter, and is allocated oldest first when partitions are formatted or freed.
"""
from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from master.allocation.model import (
    SLA_KEYS_FOR_HOSTS, SLA_KEYS_FOR_PARTITIONS, Demand, HostCandidate, PartitionCandidate,
)
from master.allocation.plan import choose_host, choose_partition, describe_filter
from master.db.models import Computer, Partition, SharedAttachment, SoftwareInstance, Supply
from master.services.changes import bump
from slap.states import InstanceState, PartitionState, SupplyState

CANDIDATE_BATCH = 32


def demand_of(instance: SoftwareInstance) -> Demand:
    return Demand(instance.software_release, instance.software_type, dict(instance.sla or {}))


def is_waiting(instance: SoftwareInstance) -> bool:
    if instance.requested_state == InstanceState.DESTROYED.value:
        return False
    if instance.shared:
        return instance.attachment is None
    return instance.partition_id is None


def allocate(session: Session, instance: SoftwareInstance) -> bool:
    """Give `instance` a partition (or a host if shared); on failure record why it waits."""
    if instance.shared:
        return _attach_to_host(session, instance)
    demand = demand_of(instance)
    partition = _take_partition(session, demand)
    if partition is None:
        instance.status_reason = (
            f"waiting for a free partition ({describe_filter(demand, SLA_KEYS_FOR_PARTITIONS)})"
        )
        return False
    partition.state = PartitionState.BUSY.value
    instance.partition = partition
    instance.status_reason = ""
    session.flush()
    bump(session, instance)
    attach_waiting_shared(session, instance)
    return True


def _take_partition(session: Session, demand: Demand) -> Partition | None:
    """Lock the best free partition for `demand`; a partition locked by another worker is skipped.

    Candidates are read without locks; only the chosen one is locked (``SKIP LOCKED``), so
    concurrent requests do not starve each other. A lost race removes that candidate and plans
    again; None means nothing free is left for this demand.
    """
    tried: set[int] = set()
    while True:
        candidates = _partition_candidates(session, demand, tried)
        if not candidates:
            return None
        while candidates:
            choice = choose_partition(candidates, demand)
            if choice is None:
                return None
            tried.add(choice.partition_id)
            partition = session.scalar(
                select(Partition).where(Partition.id == choice.partition_id,
                                        Partition.state == PartitionState.FREE.value)
                .with_for_update(skip_locked=True)
            )
            if partition is not None:
                return partition
            candidates = [c for c in candidates if c.partition_id != choice.partition_id]


def _partition_candidates(session: Session, demand: Demand, exclude: set[int]) -> list[PartitionCandidate]:
    """The first free partitions (formatting order) on computers where the release is supplied,
    and on any computer; two short indexed queries, whatever the number of partitions."""
    supplied = set(session.scalars(select(Supply.computer_id).where(
        Supply.url == demand.software_release, Supply.requested_state == SupplyState.AVAILABLE.value,
    )))
    query = (
        select(Partition.id, Partition.computer_id, Computer.reference)
        .join(Computer, Computer.id == Partition.computer_id)
        .where(Partition.state == PartitionState.FREE.value)
        .order_by(Partition.id).limit(CANDIDATE_BATCH)
    )
    if exclude:
        query = query.where(Partition.id.not_in(exclude))
    computer = demand.sla.get("computer_guid")
    if computer is not None:
        query = query.where(Computer.reference == computer)
    rows = list(session.execute(query.where(Partition.computer_id.in_(supplied)))) if supplied else []
    seen = {pid for pid, _, _ in rows}
    rows += [row for row in session.execute(query) if row[0] not in seen]
    return [
        PartitionCandidate(partition_id=pid, computer_reference=ref, order=pid, supplied=cid in supplied)
        for pid, cid, ref in rows
    ]


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
    """Shared requests waiting for a host like `host` get it now."""
    waiting = list(session.scalars(
        select(SoftwareInstance.id).where(
            SoftwareInstance.shared.is_(True),
            SoftwareInstance.software_release == host.software_release,
            SoftwareInstance.software_type == host.software_type,
            SoftwareInstance.requested_state != InstanceState.DESTROYED.value,
            ~select(SharedAttachment.shared_instance_id)
            .where(SharedAttachment.shared_instance_id == SoftwareInstance.id).exists(),
        ).order_by(SoftwareInstance.created_at, SoftwareInstance.id)
    ))
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
