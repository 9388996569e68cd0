"""Plain, immutable snapshots of catalog objects for the protocol adapters (no ORM beyond here).

`computer_view` loads a whole computer in a fixed number of queries, whatever its size: it is
what a node asks for on every pass.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from master.db.models import Computer, Partition, PartitionAddress, SharedAttachment, SoftwareInstance, Supply
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
    """Everything a node must converge to, in six plain queries whatever the computer's size.

    Core queries (rows, not ORM objects): a node asks for this on every pass, and object loading
    would cost several times more than the queries themselves.
    """
    supplies = list(session.scalars(select(Supply).where(Supply.computer_id == computer.id).order_by(Supply.id)))
    by_url = {s.url: s for s in supplies}
    addresses: dict[int, list[Address]] = {}
    for pid, interface, address, netmask in session.execute(
        select(PartitionAddress.partition_id, PartitionAddress.interface, PartitionAddress.address,
               PartitionAddress.netmask)
        .join(Partition, Partition.id == PartitionAddress.partition_id)
        .where(Partition.computer_id == computer.id).order_by(PartitionAddress.id)
    ):
        addresses.setdefault(pid, []).append(Address(interface, address, netmask))
    instances = {row.partition_id: row for row in session.execute(
        select(*_INSTANCE_COLUMNS).join(Partition, Partition.id == SoftwareInstance.partition_id)
        .where(Partition.computer_id == computer.id)
    )}
    names = _names_of(session, {r.root_id for r in instances.values()} | {r.requester_id for r in instances.values()})
    hosted = _hosted_by(session, computer.id)
    partitions = []
    for pid, reference, state in session.execute(
        select(Partition.id, Partition.reference, Partition.state)
        .where(Partition.computer_id == computer.id).order_by(Partition.id)
    ):
        row = instances.get(pid)
        placed = tuple(addresses.get(pid, ()))
        view = None
        if row is not None:
            view = _row_view(row, computer.reference, reference, placed, names,
                             hosted.get(row.id, ()), by_url.get(row.software_release))
        partitions.append(PartitionView(computer.reference, reference, state, placed, view))
    return ComputerView(
        reference=computer.reference, generation=computer.generation, partitions=tuple(partitions),
        supplies=tuple(supply_view(computer.reference, s) for s in supplies),
    )


_INSTANCE_COLUMNS = (
    SoftwareInstance.id, SoftwareInstance.guid, SoftwareInstance.title, SoftwareInstance.root_id,
    SoftwareInstance.requester_id, SoftwareInstance.software_release, SoftwareInstance.software_type,
    SoftwareInstance.parameters, SoftwareInstance.connection_parameters, SoftwareInstance.sla,
    SoftwareInstance.requested_state, SoftwareInstance.reported_state, SoftwareInstance.timestamp,
    SoftwareInstance.status_reason, SoftwareInstance.partition_id,
)


def _names_of(session: Session, ids: set[int | None]) -> dict[int, tuple[str, str]]:
    """(guid, title) of the given instances."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.execute(select(SoftwareInstance.id, SoftwareInstance.guid, SoftwareInstance.title)
                           .where(SoftwareInstance.id.in_(wanted)))
    return {iid: (guid, title) for iid, guid, title in rows}


def _hosted_by(session: Session, computer_id: int) -> dict[int, list[SharedView]]:
    """The shared instances hosted on a computer, by host instance id."""
    host = aliased(SoftwareInstance)
    rows = session.execute(
        select(SharedAttachment.host_instance_id, SoftwareInstance.guid, SoftwareInstance.title,
               SoftwareInstance.software_type, SoftwareInstance.parameters,
               SoftwareInstance.connection_parameters, SoftwareInstance.requested_state)
        .join(SoftwareInstance, SoftwareInstance.id == SharedAttachment.shared_instance_id)
        .join(host, host.id == SharedAttachment.host_instance_id)
        .join(Partition, Partition.id == host.partition_id)
        .where(Partition.computer_id == computer_id).order_by(SoftwareInstance.id)
    )
    hosted: dict[int, list[SharedView]] = {}
    for host_id, guid, title, software_type, parameters, connection, state in rows:
        hosted.setdefault(host_id, []).append(
            SharedView(guid, title, software_type, dict(parameters or {}), dict(connection or {}), state))
    return hosted


def _row_view(row: Any, computer: str, partition: str, addresses: tuple[Address, ...],
              names: dict[int, tuple[str, str]], hosted: Iterable[SharedView], supply: Supply | None) -> InstanceView:
    facts = StatusFacts(
        requested_state=row.requested_state, shared=False, allocated=True,
        stored_reason=row.status_reason or "", reported_state=row.reported_state,
        build_state=supply.reported_state if supply else None,
        build_error=supply.error_log if supply else "",
        supplied=bool(supply and supply.requested_state == SupplyState.AVAILABLE.value),
        computer=computer,
    )
    root = names.get(row.root_id) if row.root_id not in (None, row.id) else None
    requester = names.get(row.requester_id) if row.requester_id is not None else None
    return InstanceView(
        guid=row.guid, title=row.title, root_title=root[1] if root else row.title,
        software_release=row.software_release, software_type=row.software_type,
        parameters=dict(row.parameters or {}), connection_parameters=dict(row.connection_parameters or {}),
        sla=dict(row.sla or {}), requested_state=row.requested_state, reported_state=row.reported_state,
        shared=False, timestamp=row.timestamp, status=describe(facts), computer=computer,
        partition=partition, addresses=addresses, hosted=tuple(hosted),
        host_guid=None, requester_guid=requester[0] if requester else None,
    )


def supply_view(computer_reference: str, supply: Supply) -> SupplyView:
    return SupplyView(computer_reference, supply.url, supply.requested_state,
                      supply.reported_state, supply.error_log or "")
