"""Allocation with IO: SQL narrows the candidates, `master.allocation.place` decides, this applies.

One path for every request, new or waiting: `place(session, demand)` reads the candidates, asks
`allocation.place` which one, locks it and says where the request goes (`Placement`: a partition,
now busy; `Hosting`: a host for a shared request; `Waiting`: why not yet); `settle` applies that to
the stored instance. A new request is placed before its one INSERT (`instances._create`), so its
partition is in the INSERT; a waiting one is placed by `allocate` when it is requested again or
when partitions are formatted or freed (`allocate_waiting`, oldest first).

What the SQL decides is only what cannot be known without the database: the first free partition
of each computer (on the computer the SLA names), the tags, network, scope and busy partitions of
those computers, which computers have a supply of the release, where the request's tree already
runs, which instances are allocated hosts of a release and type, and which chosen row can still be
locked. Which candidate fits, which is better, and what a waiting request's reason says is
`master.allocation`'s.

Atomicity: on PostgreSQL the chosen partition is locked with ``FOR UPDATE SKIP LOCKED`` (a row
another worker holds is a lost race: allocation chooses again without it); on SQLite the write
transaction is ``BEGIN IMMEDIATE`` (one writer at a time). Every statement of the hot path is a
SQLAlchemy Core statement prepared once at import.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from partita.master import allocation
from partita.master.allocation import Demand, HostCandidate, PartitionCandidate, Waiting
from partita.master.allocation.model import OPEN
from partita.master.db.changes import bump, mark_changed, next_timestamp
from partita.master.db.models import Computer, Partition, SharedAttachment, SoftwareInstance, Supply
from partita.slap.states import InstanceState, PartitionState

_PARTITIONS = Partition.__table__
_COMPUTERS = Computer.__table__
_SUPPLIES = Supply.__table__
_INSTANCES = SoftwareInstance.__table__
_ATTACHMENTS = SharedAttachment.__table__

# Statements of every allocation, prepared once (building one costs more than running it).
_LOCK_FREE = (
    select(_PARTITIONS.c.reference)
    .where(_PARTITIONS.c.id == bindparam("partition_id"), _PARTITIONS.c.state == PartitionState.FREE.value)
    .with_for_update(skip_locked=True)
)
_MARK_BUSY = (update(_PARTITIONS).where(_PARTITIONS.c.id == bindparam("partition_id"))
              .values(state=PartitionState.BUSY.value))
_SUPPLIES_OF = select(_SUPPLIES.c.computer_id, _SUPPLIES.c.requested_state).where(
    _SUPPLIES.c.url == bindparam("url"),
)
_TREE_PLACES = (
    select(_PARTITIONS.c.computer_id, _COMPUTERS.c.network, func.count())
    .join(_PARTITIONS, _PARTITIONS.c.id == _INSTANCES.c.partition_id)
    .join(_COMPUTERS, _COMPUTERS.c.id == _PARTITIONS.c.computer_id)
    .where(_INSTANCES.c.root_id == bindparam("tree"))
    .group_by(_PARTITIONS.c.computer_id, _COMPUTERS.c.network)
)
_BUSY_COUNTS = (
    select(_PARTITIONS.c.computer_id, func.count())
    .where(_PARTITIONS.c.computer_id.in_(bindparam("computers", expanding=True)),
           _PARTITIONS.c.state != PartitionState.FREE.value)
    .group_by(_PARTITIONS.c.computer_id)
)
_COMPUTER_PLACES = select(
    _COMPUTERS.c.id, _COMPUTERS.c.reference, _COMPUTERS.c.tags, _COMPUTERS.c.network,
    _COMPUTERS.c.allocation_scope,
).where(_COMPUTERS.c.id.in_(bindparam("computers", expanding=True)))
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


def demand_of(instance: SoftwareInstance, needs_supply: bool) -> Demand:
    """What a stored instance asks for. `needs_supply`: on a master (an authenticated caller)
    an instance goes only where its release is supplied; the proxy places as slapproxy does."""
    return Demand(instance.software_release, instance.software_type, dict(instance.sla or {}),
                  shared=bool(instance.shared), needs_supply=needs_supply,
                  tree=instance.root_id or instance.id)


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


def allocate(session: Session, instance: SoftwareInstance, needs_supply: bool) -> bool:
    """Give a stored, waiting `instance` its place (a partition, or a host if shared); on failure
    record why it waits."""
    return settle(session, instance, place(session, demand_of(instance, needs_supply)))


def allocate_waiting(session: Session, needs_supply: bool) -> int:
    """Allocate waiting (non-shared) requests, oldest first, while partitions are free.
    `needs_supply`: see `demand_of` (the caller that formatted, freed or supplied is on a master)."""
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
        outcome = place(session, demand_of(instance, needs_supply))
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
        allocate(session, shared, needs_supply=False)


def _take_partition(session: Session, connection: Connection, demand: Demand) -> Placement | Waiting:
    """Lock and mark busy the free partition allocation chooses; `Waiting` if it chooses none.

    Candidates are read without locks; only the chosen one is locked (``SKIP LOCKED`` on
    PostgreSQL; SQLite has one writer), so concurrent requests do not starve each other. A lost
    race removes that candidate and allocation chooses again; when every candidate of a read is
    lost, candidates are read again without the partitions tried.
    """
    supplies = {cid: state for cid, state in connection.execute(_SUPPLIES_OF, {"url": demand.software_release})}
    demand, tree_counts = _with_tree(connection, demand)
    tried: set[int] = set()
    while True:
        batch = _free_partitions(connection, demand, supplies, tree_counts, tried)
        lost_a_race = False
        decision = allocation.place(demand, batch)
        while isinstance(decision, PartitionCandidate):
            tried.add(decision.partition_id)
            reference = _lock_free(connection, decision.partition_id)
            if reference is not None:
                _mark_busy(session, connection, decision.partition_id)
                return replace(batch[decision], partition_reference=reference)
            del batch[decision]
            lost_a_race = True
            decision = allocation.place(demand, batch)
        if not lost_a_race:
            assert isinstance(decision, Waiting)
            return decision


def _with_tree(connection: Connection, demand: Demand) -> tuple[Demand, dict[int, int]]:
    """The demand with the networks its tree runs on, and how many of its tree's instances each
    computer has (by computer id): what spread and ``mode=unique_by_network`` need."""
    if demand.tree is None:
        return demand, {}
    counts: dict[int, int] = {}
    networks: set[str] = set()
    for computer_id, network, count in connection.execute(_TREE_PLACES, {"tree": demand.tree}):
        counts[computer_id] = int(count)
        if network is not None:
            networks.add(network)
    return replace(demand, tree_networks=frozenset(networks)), counts


def _free_partitions(connection: Connection, demand: Demand, supplies: dict[int, str], tree_counts: dict[int, int],
                     exclude: set[int]) -> dict[PartitionCandidate, Placement]:
    """The first free partition (formatting order) of every computer, on the SLA's computer if it
    names one, with what placement needs of its computer: partitions of one computer are alike,
    so one each is enough to choose, whatever the number of partitions."""
    computer = demand.sla.get("computer_guid")
    parameters = {"computer": computer, "exclude": sorted(exclude)}
    firsts = dict(connection.execute(_first_free_query(computer is not None, bool(exclude)), parameters).all())
    if not firsts:
        return {}
    ids = {"computers": sorted(firsts)}
    busy = dict(connection.execute(_BUSY_COUNTS, ids).all())
    candidates: dict[PartitionCandidate, Placement] = {}
    for cid, cref, tags, network, scope in connection.execute(_COMPUTER_PLACES, ids):
        pid = firsts[cid]
        candidate = PartitionCandidate(
            partition_id=pid, computer_reference=cref, order=pid, supply=supplies.get(cid),
            tags=tuple(sorted((str(k), str(v)) for k, v in _tags(tags).items())), network=network,
            scope=scope or OPEN, tree_instances=tree_counts.get(cid, 0), allocated=int(busy.get(cid, 0)))
        candidates[candidate] = Placement(pid, "", cid, cref)
    return candidates


def _tags(stored: Any) -> dict[str, Any]:
    """A computer's tags as read (a JSON column read by a Core statement may still be text)."""
    if isinstance(stored, str):
        stored = json.loads(stored)
    return dict(stored) if isinstance(stored, dict) else {}


@functools.cache
def _first_free_query(on_computer: bool, excluding: bool) -> Select[Any]:
    """(computer id, its first free partition's id), on the SLA's computer only, excluding
    partitions already tried, as asked (one prepared statement per shape)."""
    query = (
        select(_PARTITIONS.c.computer_id, func.min(_PARTITIONS.c.id))
        .where(_PARTITIONS.c.state == PartitionState.FREE.value)
        .group_by(_PARTITIONS.c.computer_id)
    )
    if on_computer:
        query = query.join(_COMPUTERS, _COMPUTERS.c.id == _PARTITIONS.c.computer_id).where(
            _COMPUTERS.c.reference == bindparam("computer"))
    if excluding:
        query = query.where(_PARTITIONS.c.id.not_in(bindparam("exclude", expanding=True)))
    return query


def _lock_free(connection: Connection, partition_id: int) -> str | None:
    """The reference of the partition, locked, if it is still free."""
    return connection.execute(_LOCK_FREE, {"partition_id": partition_id}).scalar()


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
