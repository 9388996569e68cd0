"""Plain, immutable snapshots of catalog objects for the protocol adapters (no ORM beyond here).

`computer_view` loads a whole computer in a fixed number of queries, whatever its size: it is
what a node asks for on every pass.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from master.db.models import Computer, Partition, SharedAttachment, SoftwareInstance, Supply
from master.services.status import StatusFacts, describe
from slap.states import SupplyState


@dataclass(frozen=True)
class Address:
    interface: str
    address: str
    netmask: str


@dataclass(frozen=True)
class SharedView:
    guid: str
    title: str
    software_type: str
    parameters: dict[str, Any]
    connection_parameters: dict[str, Any]
    requested_state: str = "started"


@dataclass(frozen=True)
class InstanceView:
    guid: str
    title: str
    root_title: str
    software_release: str
    software_type: str
    parameters: dict[str, Any]
    connection_parameters: dict[str, Any]
    sla: dict[str, str]
    requested_state: str
    reported_state: str | None
    shared: bool
    timestamp: float
    status: str
    computer: str | None = None
    partition: str | None = None
    addresses: tuple[Address, ...] = ()
    hosted: tuple[SharedView, ...] = ()
    host_guid: str | None = None
    requester_guid: str | None = None

    @property
    def ip_list(self) -> list[tuple[str, str]]:
        return [(a.interface, a.address) for a in self.addresses]


@dataclass(frozen=True)
class SupplyView:
    computer: str
    url: str
    requested_state: str
    reported_state: str | None
    error_log: str


@dataclass(frozen=True)
class PartitionView:
    computer: str
    reference: str
    state: str
    addresses: tuple[Address, ...]
    instance: InstanceView | None


@dataclass(frozen=True)
class ComputerView:
    reference: str
    generation: int
    partitions: tuple[PartitionView, ...]
    supplies: tuple[SupplyView, ...] = field(default_factory=tuple)


def _addresses(partition: Partition | None) -> tuple[Address, ...]:
    if partition is None:
        return ()
    return tuple(Address(a.interface, a.address, a.netmask) for a in partition.addresses)


def _shared_view(shared: SoftwareInstance) -> SharedView:
    return SharedView(shared.guid, shared.title, shared.software_type,
                      dict(shared.parameters or {}), dict(shared.connection_parameters or {}),
                      shared.requested_state)


def _supply_of(session: Session, computer_id: int, url: str) -> Supply | None:
    return session.scalar(select(Supply).where(Supply.computer_id == computer_id, Supply.url == url))


def instance_view(session: Session, instance: SoftwareInstance,
                  hosted: Iterable[SoftwareInstance] | None = None,
                  supply: Supply | None | bool = False) -> InstanceView:
    """A snapshot of `instance`; `hosted` and `supply` may be given when already loaded."""
    host = instance.attachment.host_instance if instance.shared and instance.attachment else None
    placed = host.partition if host is not None else instance.partition
    if hosted is None and not instance.shared:
        hosted = session.scalars(
            select(SoftwareInstance).join(SharedAttachment, SharedAttachment.shared_instance_id == SoftwareInstance.id)
            .where(SharedAttachment.host_instance_id == instance.id).order_by(SoftwareInstance.id)
        )
    if supply is False:
        supply = _supply_of(session, placed.computer_id, instance.software_release) if placed else None
    root = session.get(SoftwareInstance, instance.root_id) if instance.root_id not in (None, instance.id) else instance
    requester = session.get(SoftwareInstance, instance.requester_id) if instance.requester_id else None
    facts = StatusFacts(
        requested_state=instance.requested_state, shared=instance.shared,
        allocated=placed is not None, stored_reason=instance.status_reason or "",
        reported_state=instance.reported_state,
        build_state=supply.reported_state if supply else None,
        build_error=supply.error_log if supply else "",
        supplied=bool(supply and supply.requested_state == SupplyState.AVAILABLE.value),
        host_title=host.title if host is not None else None,
        computer=placed.computer.reference if placed is not None else None,
    )
    return InstanceView(
        guid=instance.guid, title=instance.title, root_title=root.title if root else instance.title,
        software_release=instance.software_release, software_type=instance.software_type,
        parameters=dict(instance.parameters or {}),
        connection_parameters=dict(instance.connection_parameters or {}),
        sla=dict(instance.sla or {}), requested_state=instance.requested_state,
        reported_state=instance.reported_state, shared=instance.shared,
        timestamp=instance.timestamp, status=describe(facts),
        computer=placed.computer.reference if placed is not None else None,
        partition=placed.reference if placed is not None else None,
        addresses=_addresses(placed),
        hosted=tuple(_shared_view(s) for s in hosted or ()),
        host_guid=host.guid if host is not None else None,
        requester_guid=requester.guid if requester is not None else None,
    )


def computer_view(session: Session, computer: Computer) -> ComputerView:
    """Everything a node must converge to, loaded in a handful of queries."""
    partitions = list(session.scalars(
        select(Partition).where(Partition.computer_id == computer.id)
        .options(selectinload(Partition.addresses), selectinload(Partition.instance))
        .order_by(Partition.id)
    ))
    supplies = list(session.scalars(select(Supply).where(Supply.computer_id == computer.id).order_by(Supply.id)))
    by_url = {s.url: s for s in supplies}
    host_ids = [p.instance.id for p in partitions if p.instance is not None]
    hosted: dict[int, list[SoftwareInstance]] = {}
    if host_ids:
        rows = session.execute(
            select(SharedAttachment.host_instance_id, SoftwareInstance)
            .join(SoftwareInstance, SoftwareInstance.id == SharedAttachment.shared_instance_id)
            .where(SharedAttachment.host_instance_id.in_(host_ids)).order_by(SoftwareInstance.id)
        )
        for host_id, shared in rows:
            hosted.setdefault(host_id, []).append(shared)
    views = []
    for partition in partitions:
        instance = partition.instance
        view = None
        if instance is not None:
            view = instance_view(session, instance, hosted.get(instance.id, []),
                                 by_url.get(instance.software_release))
        views.append(PartitionView(computer.reference, partition.reference, partition.state,
                                   _addresses(partition), view))
    return ComputerView(
        reference=computer.reference, generation=computer.generation, partitions=tuple(views),
        supplies=tuple(supply_view(computer.reference, s) for s in supplies),
    )


def supply_view(computer_reference: str, supply: Supply) -> SupplyView:
    return SupplyView(computer_reference, supply.url, supply.requested_state,
                      supply.reported_state, supply.error_log or "")
