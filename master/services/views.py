"""Plain, immutable snapshots of catalog objects for the protocol adapters (no ORM beyond here).

`instance_view` answers every request and every read of one instance; a whole computer's view,
what a node asks for on every pass, is built by `master.services.computer_views`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select
from sqlalchemy.orm import Session

from partita.master.db.models import Computer, Partition, PartitionAddress, SharedAttachment, SoftwareInstance, Supply
from partita.master.services import contact
from partita.master.services.status import StatusFacts, describe
from partita.slap.states import InstanceState, SupplyState


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

    @property
    def served(self) -> bool:
        """A host serves (lists to its node) only its started shared instances, as the SlapOS
        master does: a stopped one leaves the list and comes back when started."""
        return self.requested_state == InstanceState.STARTED.value


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
    ipv6_range: str | None = None   # its partition's IPv6 range, if any

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
    ipv6_range: str | None = None   # e.g. "2001:db8::1:0/112" (`master.services.computers`)


@dataclass(frozen=True)
class ComputerView:
    reference: str
    generation: int
    partitions: tuple[PartitionView, ...]
    supplies: tuple[SupplyView, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Placement:
    """Where an instance runs, and what its status needs from that computer's supply."""

    computer: str
    partition: str
    addresses: tuple[Address, ...]
    build_state: str | None
    build_error: str
    supplied: bool
    last_contact: float | None = None
    ipv6_range: str | None = None


_PARTITIONS, _COMPUTERS, _SUPPLIES = Partition.__table__, Computer.__table__, Supply.__table__
_ADDRESSES, _INSTANCES, _ATTACHMENTS = PartitionAddress.__table__, SoftwareInstance.__table__, SharedAttachment.__table__

# The queries of `instance_view`, prepared once (it answers every request).
_PLACEMENT = (
    select(_PARTITIONS.c.reference, _COMPUTERS.c.reference, _SUPPLIES.c.requested_state,
           _SUPPLIES.c.reported_state, _SUPPLIES.c.error_log, _COMPUTERS.c.last_contact,
           _PARTITIONS.c.ipv6_range)
    .select_from(_PARTITIONS.join(_COMPUTERS, _COMPUTERS.c.id == _PARTITIONS.c.computer_id)
                 .outerjoin(_SUPPLIES, and_(_SUPPLIES.c.computer_id == _COMPUTERS.c.id,
                                            _SUPPLIES.c.url == bindparam("software_release"))))
    .where(_PARTITIONS.c.id == bindparam("partition_id"))
)
_PARTITION_ADDRESSES = (
    select(_ADDRESSES.c.interface, _ADDRESSES.c.address, _ADDRESSES.c.netmask)
    .where(_ADDRESSES.c.partition_id == bindparam("partition_id")).order_by(_ADDRESSES.c.id)
)
_HOSTED = (
    select(_INSTANCES.c.guid, _INSTANCES.c.title, _INSTANCES.c.software_type, _INSTANCES.c.parameters,
           _INSTANCES.c.connection_parameters, _INSTANCES.c.requested_state)
    .join(_ATTACHMENTS, _ATTACHMENTS.c.shared_instance_id == _INSTANCES.c.id)
    .where(_ATTACHMENTS.c.host_instance_id == bindparam("host_id")).order_by(_INSTANCES.c.id)
)


def _placement(connection: Connection, partition_id: int, software_release: str) -> _Placement:
    partition, computer, requested, reported, error_log, last_contact, ipv6_range = connection.execute(
        _PLACEMENT, {"partition_id": partition_id, "software_release": software_release}
    ).one()
    addresses = tuple(Address(*row) for row in connection.execute(_PARTITION_ADDRESSES, {"partition_id": partition_id}))
    return _Placement(computer, partition, addresses, build_state=reported, build_error=error_log or "",
                      supplied=requested == SupplyState.AVAILABLE.value, last_contact=last_contact,
                      ipv6_range=ipv6_range)


def _hosted_by_instance(connection: Connection, host_id: int) -> tuple[SharedView, ...]:
    return tuple(
        SharedView(guid, title, software_type, dict(parameters or {}), dict(connection_parameters or {}), state)
        for guid, title, software_type, parameters, connection_parameters, state
        in connection.execute(_HOSTED, {"host_id": host_id})
    )


def instance_view(session: Session, instance: SoftwareInstance,
                  unreachable_after: float | None = None) -> InstanceView:
    """A snapshot of `instance`: plain queries for its placement and what it hosts, no object
    loading beyond its host, root and requester (this answers every request).

    With `unreachable_after` (what users read: `slapos info`), an instance on a computer whose
    node has not called for longer says so in its status (`master.services.contact`)."""
    session.flush()
    connection = session.connection()
    host = instance.attachment.host_instance if instance.shared and instance.attachment else None
    placed_id = host.partition_id if host is not None else instance.partition_id
    place = _placement(connection, placed_id, instance.software_release) if placed_id is not None else None
    hosted = () if instance.shared else _hosted_by_instance(connection, instance.id)
    root = session.get(SoftwareInstance, instance.root_id) if instance.root_id not in (None, instance.id) else instance
    requester = session.get(SoftwareInstance, instance.requester_id) if instance.requester_id else None
    facts = StatusFacts(
        requested_state=instance.requested_state, shared=instance.shared,
        allocated=place is not None, stored_reason=instance.status_reason or "",
        reported_state=instance.reported_state,
        build_state=place.build_state if place is not None else None,
        build_error=place.build_error if place is not None else "",
        supplied=place is not None and place.supplied,
        host_title=host.title if host is not None else None,
        computer=place.computer if place is not None else None,
        unreachable_since=None if place is None or unreachable_after is None else
        contact.unreachable_since(place.last_contact, time.time(), unreachable_after),
    )
    return InstanceView(
        guid=instance.guid, title=instance.title, root_title=root.title if root else instance.title,
        software_release=instance.software_release, software_type=instance.software_type,
        parameters=dict(instance.parameters or {}),
        connection_parameters=dict(instance.connection_parameters or {}),
        sla=dict(instance.sla or {}), requested_state=instance.requested_state,
        reported_state=instance.reported_state, shared=instance.shared,
        timestamp=instance.timestamp, status=describe(facts),
        computer=place.computer if place is not None else None,
        partition=place.partition if place is not None else None,
        addresses=place.addresses if place is not None else (),
        hosted=hosted,
        host_guid=host.guid if host is not None else None,
        requester_guid=requester.guid if requester is not None else None,
        ipv6_range=place.ipv6_range if place is not None and not instance.shared else None,
    )


def supply_view(computer_reference: str, supply: Supply) -> SupplyView:
    return SupplyView(computer_reference, supply.url, supply.requested_state,
                      supply.reported_state, supply.error_log or "")
