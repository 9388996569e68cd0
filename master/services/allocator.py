"""Allocation with IO: SQL narrows the candidates, `master.allocation.place` decides, this applies.

One path for every request, new or waiting: `place(session, demand)` reads the candidates, asks
`allocation.place` which one, locks it and says where the request goes (`Placement`: a partition,
now busy; `Hosting`: a host for a shared request; `Waiting`: why not yet); `settle` applies that to
the stored instance. A new request is placed before its one INSERT (`instances._create`), so its
partition is in the INSERT; a waiting one is placed by `allocate` when it is requested again or
when partitions are formatted or freed (`allocate_waiting`, oldest first).

What the SQL decides is only what cannot be known without the database: which partitions are
free, which are on the computer the SLA names, which computers have a supply of the release, which
instances are allocated hosts of a release and type, and which chosen row can still be locked.
Which candidate fits, which is better, and what a waiting request's reason says is
`master.allocation`'s.

Atomicity: on PostgreSQL the chosen partition is locked with ``FOR UPDATE SKIP LOCKED`` (a row
another worker holds is a lost race: allocation chooses again without it); on SQLite the write
transaction is ``BEGIN IMMEDIATE`` (one writer at a time). Every statement of the hot path is a
SQLAlchemy Core statement prepared once at import.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select, update
from sqlalchemy.orm import Session

from partita.master import allocation
from partita.master.allocation import Demand, HostCandidate, PartitionCandidate, Waiting
from partita.master.db.changes import bump, mark_changed, next_timestamp
from partita.master.db.models import Computer, Partition, SharedAttachment, SoftwareInstance, Supply
from partita.slap.states import InstanceState, PartitionState

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
_SUPPLIES_OF = select(_SUPPLIES.c.computer_id, _SUPPLIES.c.requested_state).where(
    _SUPPLIES.c.url == bindparam("url"),
)
_HOSTS = (
    select(_INSTANCES.c.id, _INSTANCES.c.guid, _COMPUTERS.c.reference, _INSTANCES.c.software_release,
           _INSTANCES.c.software_type, _INSTANCES.c.requested_state)
    .join(_PARTITIONS, _PARTITIONS.c.id == _INSTANCES.c.partition_id)
    .join(_COMPUTERS, _COMPUTERS.c.id == _PARTITIONS.c.computer_id)
    .where(
        _INSTANCES.c.shared.is_(False),
        _INSTANCES.c.software_release == bindparam("software_release"),
        _INSTANCES.c.software_type == bindparam("software_type"),
    )
    .order_by(_INSTANCES.c.id)
)
_WAITING_SHARED = select(_INSTANCES.c.id).where(
    _INSTANCES.c.shared.is_(True),
    _INSTANCES.c.software_release == bindparam("software_release"),
    _INSTANCES.c.software_type == bindparam("software_type"),
    _INSTANCES.c.requested_state != InstanceState.DESTROYED.value,
    ~select(_ATTACHMENTS.c.shared_instance_id)
    .where(_ATTACHMENTS.c.shared_instance_id == _INSTANCES.c.id).exists(),
).order_by(_INSTANCES.c.created_at, _INSTANCES.c.id)


@dataclass(frozen=True)
class Placement:
    """The partition a request took (now busy), with what the answer and the change tracking need."""

    partition_id: int
    partition_reference: str
    computer_id: int
    computer_reference: str


@dataclass(frozen=True)
class Hosting:
    """The host instance that serves a shared request."""

    host_instance_id: int


Outcome = Placement | Hosting | Waiting


def demand_of(instance: SoftwareInstance) -> Demand:
    return Demand(instance.software_release, instance.software_type, dict(instance.sla or {}),
                  shared=bool(instance.shared))


def is_waiting(instance: SoftwareInstance) -> bool:
    if instance.requested_state == InstanceState.DESTROYED.value:
        return False
    if instance.shared:
        return instance.attachment is None
    return instance.partition_id is None


def place(session: Session, demand: Demand) -> Outcome:
    """Where `demand` goes now. A partition chosen is locked and marked busy before this returns."""
    session.flush()
    connection = session.connection()
    if demand.shared:
        return _choose_host(connection, demand)
    return _take_partition(session, connection, demand)


def settle(session: Session, instance: SoftwareInstance, outcome: Outcome) -> bool:
    """Apply `outcome` (of `place`) to the stored `instance`; True if it got its place.

    A new instance was inserted with its partition already named; a waiting one gets it here.
    """
    reason = outcome.reason if isinstance(outcome, Waiting) else ""
    if instance.status_reason != reason:  # a new instance was inserted with it: leave it clean
        instance.status_reason = reason
    if isinstance(outcome, Waiting):
        return False
    if isinstance(outcome, Hosting):
        host = session.get(SoftwareInstance, outcome.host_instance_id)
        assert host is not None
        instance.attachment = SharedAttachment(host_instance_id=host.id)
        session.flush()
        bump(session, host)
        return True
    if instance.partition_id != outcome.partition_id:
        instance.partition = session.get(Partition, outcome.partition_id)
        instance.timestamp = next_timestamp(instance.timestamp)
        session.flush()
    mark_changed(session, outcome.computer_id, outcome.computer_reference)
    attach_waiting_shared(session, instance)
    return True


def allocate(session: Session, instance: SoftwareInstance) -> bool:
    """Give a stored, waiting `instance` its place (a partition, or a host if shared); on failure
    record why it waits."""
    return settle(session, instance, place(session, demand_of(instance)))


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
        outcome = place(session, demand_of(instance))
        if settle(session, instance, outcome):
            allocated += 1
        elif isinstance(outcome, Waiting) and outcome.none_free:
            break  # nothing free anywhere: the younger ones cannot be served either
    return allocated


def attach_waiting_shared(session: Session, host: SoftwareInstance) -> None:
    """Shared requests waiting for a host like `host` get it now (one prepared query when none wait)."""
    waiting = list(session.connection().execute(_WAITING_SHARED, {
        "software_release": host.software_release, "software_type": host.software_type,
    }).scalars())
    for shared_id in waiting:
        shared = session.get(SoftwareInstance, shared_id)
        assert shared is not None
        allocate(session, shared)


def _take_partition(session: Session, connection: Connection, demand: Demand) -> Placement | Waiting:
    """Lock and mark busy the free partition allocation chooses; `Waiting` if it chooses none.

    Candidates are read without locks; only the chosen one is locked (``SKIP LOCKED`` on
    PostgreSQL; SQLite has one writer), so concurrent requests do not starve each other. A lost
    race removes that candidate and allocation chooses again; a batch lost entirely is read again
    without the partitions tried.
    """
    supplies = {cid: state for cid, state in connection.execute(_SUPPLIES_OF, {"url": demand.software_release})}
    tried: set[int] = set()
    while True:
        batch = _free_partitions(connection, demand, supplies, tried)
        lost_a_race = False
        decision = allocation.place(demand, batch)
        while isinstance(decision, PartitionCandidate):
            tried.add(decision.partition_id)
            if _lock_free(connection, decision.partition_id):
                _mark_busy(session, connection, decision.partition_id)
                return batch[decision]
            del batch[decision]
            lost_a_race = True
            decision = allocation.place(demand, batch)
        if not lost_a_race:
            assert isinstance(decision, Waiting)
            return decision


def _free_partitions(connection: Connection, demand: Demand, supplies: dict[int, str],
                     exclude: set[int]) -> dict[PartitionCandidate, Placement]:
    """The first free partitions (formatting order), on the SLA's computer if it names one: those
    of the computers that have a supply of the release, and those of any computer (two short
    indexed queries, whatever the number of partitions). The first batch alone would miss a
    supplied computer formatted after others; whether its supply counts, and how much, is
    allocation's to say."""
    computer = demand.sla.get("computer_guid")
    parameters = {"computers": sorted(supplies), "computer": computer, "exclude": sorted(exclude)}

    def first_free(on_supplied: bool) -> list[Any]:
        query = _candidates_query(on_supplied, computer is not None, bool(exclude))
        return list(connection.execute(query, parameters))

    rows = first_free(True) if supplies else []
    seen = {row[0] for row in rows}
    rows += [row for row in first_free(False) if row[0] not in seen]
    return {
        PartitionCandidate(partition_id=pid, computer_reference=cref, order=pid, supply=supplies.get(cid)):
            Placement(pid, pref, cid, cref)
        for pid, pref, cid, cref in rows
    }


@functools.cache
def _candidates_query(on_computers: bool, on_computer: bool, excluding: bool) -> Select[Any]:
    """The first free partitions in formatting order: on the given computers only, on the SLA's
    computer only, excluding partitions already tried, as asked (one prepared statement per shape)."""
    query = (
        select(_PARTITIONS.c.id, _PARTITIONS.c.reference, _PARTITIONS.c.computer_id, _COMPUTERS.c.reference)
        .join(_COMPUTERS, _COMPUTERS.c.id == _PARTITIONS.c.computer_id)
        .where(_PARTITIONS.c.state == PartitionState.FREE.value)
        .order_by(_PARTITIONS.c.id).limit(CANDIDATE_BATCH)
    )
    if on_computers:
        query = query.where(_PARTITIONS.c.computer_id.in_(bindparam("computers", expanding=True)))
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


def _choose_host(connection: Connection, demand: Demand) -> Hosting | Waiting:
    """The host allocation chooses among the allocated instances of the release and type."""
    rows = connection.execute(_HOSTS, {"software_release": demand.software_release,
                                       "software_type": demand.software_type})
    hosts = [HostCandidate(iid, guid, cref, sr, st, order=iid, requested_state=state)
             for iid, guid, cref, sr, st, state in rows]
    decision = allocation.place(demand, hosts)
    if isinstance(decision, Waiting):
        return decision
    assert isinstance(decision, HostCandidate)
    return Hosting(decision.instance_id)
