"""A computer's view, what a node asks for on every pass: read as stored, then decoded.

`computer_source` reads a whole computer in six prepared plain queries, whatever its size, and
keeps every value as stored (JSON columns as their text), so that two reads compare without
decoding anything; `source_view` and `partition_view` decode them into the plain views of
`master.services.views`. A cache of encoded answers (`master.api.slap_xml.computer_cache`) re-decodes only
the partitions whose source changed.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Text, bindparam, cast, select
from sqlalchemy.orm import Session, aliased

from partita.master.db.models import Computer, Partition, PartitionAddress, SharedAttachment, SoftwareInstance, Supply
from partita.master.services.status import StatusFacts, describe
from partita.master.services.views import (
    Address, ComputerView, InstanceView, PartitionView, SharedView, SupplyView,
)
from partita.slap.states import SupplyState


def computer_view(session: Session, computer: Computer) -> ComputerView:
    """Everything a node must converge to, in six plain queries whatever the computer's size.

    Core queries (rows, not ORM objects): a node asks for this on every pass, and object loading
    would cost several times more than the queries themselves. It is `computer_source` decoded.
    """
    return source_view(computer_source(session, computer))


class InstanceRow(NamedTuple):
    """A busy partition's instance as stored (`_COMPUTER_INSTANCES`); JSON columns are their raw text."""

    id: int
    guid: str
    title: str
    root_id: int | None
    requester_id: int | None
    software_release: str
    software_type: str
    parameters: str | None
    connection_parameters: str | None
    sla: str | None
    requested_state: str
    reported_state: str | None
    timestamp: float
    status_reason: str | None
    partition_id: int


class SharedRow(NamedTuple):
    """A hosted shared instance as stored; JSON columns are their raw text."""

    guid: str
    title: str
    software_type: str
    parameters: str | None
    connection_parameters: str | None
    requested_state: str


class SupplyRow(NamedTuple):
    url: str
    requested_state: str
    reported_state: str | None
    error_log: str | None


class PartitionSource(NamedTuple):
    """Every stored value one partition's `PartitionView` is made of, nothing decoded.

    Equal sources give equal views, and comparing two costs no JSON decoding (tuples of plain
    values): a cache keeps what it derived from a partition's view with its source and reuses it
    while the source stays equal. Addresses are (interface, address, netmask) tuples; `root` and
    `requester` the (guid, title) of the instance's root (None when it is its own root) and
    requester; `supply` the supply of the instance's release on this computer (for its status).
    """

    computer: str
    id: int
    reference: str
    state: str
    addresses: tuple[tuple[str, str, str], ...]
    instance: InstanceRow | None
    root: tuple[str, str] | None
    requester: tuple[str, str] | None
    hosted: tuple[SharedRow, ...]
    supply: SupplyRow | None
    ipv6_range: str | None = None


@dataclass(frozen=True)
class ComputerSource:
    """A computer as stored: its partitions in id order and its supplies, nothing decoded."""

    reference: str
    generation: int
    partitions: tuple[PartitionSource, ...]
    supplies: tuple[SupplyRow, ...]


# The queries of `computer_source`, built once (a node asks on every pass). JSON columns are cast
# to text: rows then compare without decoding, and only changed ones are decoded (`_raw`).
_HOST_INSTANCE = aliased(SoftwareInstance)
_COMPUTER_SUPPLIES = (
    select(Supply.url, Supply.requested_state, Supply.reported_state, Supply.error_log)
    .where(Supply.computer_id == bindparam("computer")).order_by(Supply.id)
)
_COMPUTER_ADDRESSES = (
    select(PartitionAddress.partition_id, PartitionAddress.interface, PartitionAddress.address,
           PartitionAddress.netmask)
    .join(Partition, Partition.id == PartitionAddress.partition_id)
    .where(Partition.computer_id == bindparam("computer")).order_by(PartitionAddress.id)
)
_COMPUTER_INSTANCES = (
    select(SoftwareInstance.id, SoftwareInstance.guid, SoftwareInstance.title, SoftwareInstance.root_id,
           SoftwareInstance.requester_id, SoftwareInstance.software_release, SoftwareInstance.software_type,
           cast(SoftwareInstance.parameters, Text), cast(SoftwareInstance.connection_parameters, Text),
           cast(SoftwareInstance.sla, Text), SoftwareInstance.requested_state,
           SoftwareInstance.reported_state, SoftwareInstance.timestamp, SoftwareInstance.status_reason,
           SoftwareInstance.partition_id)
    .join(Partition, Partition.id == SoftwareInstance.partition_id)
    .where(Partition.computer_id == bindparam("computer"))
)
_COMPUTER_NAMES = (
    select(SoftwareInstance.id, SoftwareInstance.guid, SoftwareInstance.title)
    .where(SoftwareInstance.id.in_(bindparam("ids", expanding=True)))
)
_COMPUTER_HOSTED = (
    select(SharedAttachment.host_instance_id, SoftwareInstance.guid, SoftwareInstance.title,
           SoftwareInstance.software_type, cast(SoftwareInstance.parameters, Text),
           cast(SoftwareInstance.connection_parameters, Text), SoftwareInstance.requested_state)
    .join(SoftwareInstance, SoftwareInstance.id == SharedAttachment.shared_instance_id)
    .join(_HOST_INSTANCE, _HOST_INSTANCE.id == SharedAttachment.host_instance_id)
    .join(Partition, Partition.id == _HOST_INSTANCE.partition_id)
    .where(Partition.computer_id == bindparam("computer")).order_by(SoftwareInstance.id)
)
_COMPUTER_PARTITIONS = (
    select(Partition.id, Partition.reference, Partition.state, Partition.ipv6_range)
    .where(Partition.computer_id == bindparam("computer")).order_by(Partition.id)
)


def computer_source(session: Session, computer: Computer) -> ComputerSource:
    """What `computer_view` shows, in six plain queries, as stored (see `PartitionSource`)."""
    connection, where, reference = session.connection(), {"computer": computer.id}, computer.reference
    supplies = tuple(map(SupplyRow._make, connection.execute(_COMPUTER_SUPPLIES, where).all()))
    by_url = {supply.url: supply for supply in supplies}
    addresses = _addresses_by_partition(connection, where)
    instances = {row.partition_id: row for row in map(
        InstanceRow._make, connection.execute(_COMPUTER_INSTANCES, where).all())}
    names = _names_of(connection, instances.values())
    hosted = _hosted_by(connection, where)
    partitions = []
    for pid, partition, state, ipv6_range in connection.execute(_COMPUTER_PARTITIONS, where).all():
        row = instances.get(pid)
        if row is None:
            partitions.append(PartitionSource(reference, pid, partition, state, addresses.get(pid, ()),
                                              None, None, None, (), None, ipv6_range))
        else:
            partitions.append(PartitionSource(
                reference, pid, partition, state, addresses.get(pid, ()), row,
                names.get(row.root_id) if row.root_id != row.id else None, names.get(row.requester_id),
                hosted.get(row.id, ()), by_url.get(row.software_release), ipv6_range))
    return ComputerSource(reference, computer.generation, tuple(partitions), supplies)


def _addresses_by_partition(connection: Connection,
                            where: dict[str, int]) -> dict[int, tuple[tuple[str, str, str], ...]]:
    """(interface, address, netmask) of a computer's addresses, by partition id."""
    addresses: dict[int, list[tuple[str, str, str]]] = {}
    for pid, interface, address, netmask in connection.execute(_COMPUTER_ADDRESSES, where).all():
        addresses.setdefault(pid, []).append((interface, address, netmask))
    return {pid: tuple(placed) for pid, placed in addresses.items()}


def _names_of(connection: Connection, rows: Iterable[InstanceRow]) -> dict[int, tuple[str, str]]:
    """(guid, title) of the roots (other than themselves) and requesters of the instances."""
    wanted: set[int] = set()
    for row in rows:
        if row.root_id not in (None, row.id):
            wanted.add(row.root_id)
        if row.requester_id is not None:
            wanted.add(row.requester_id)
    if not wanted:
        return {}
    found = connection.execute(_COMPUTER_NAMES, {"ids": sorted(wanted)}).all()
    return {iid: (guid, title) for iid, guid, title in found}


def _hosted_by(connection: Connection, where: dict[str, int]) -> dict[int, tuple[SharedRow, ...]]:
    """The shared instances hosted on a computer, as stored, by host instance id."""
    hosted: dict[int, list[SharedRow]] = {}
    for host_id, *shared in connection.execute(_COMPUTER_HOSTED, where).all():
        hosted.setdefault(host_id, []).append(SharedRow._make(shared))
    return {host_id: tuple(rows) for host_id, rows in hosted.items()}


def partition_view(source: PartitionSource) -> PartitionView:
    """The view of one partition of `computer_source`: its JSON decoded."""
    addresses = tuple(Address(*address) for address in source.addresses)
    instance = None if source.instance is None else _row_view(source, source.instance, addresses)
    return PartitionView(source.computer, source.reference, source.state, addresses, instance, source.ipv6_range)


def _row_view(source: PartitionSource, row: InstanceRow, addresses: tuple[Address, ...]) -> InstanceView:
    """The view of the instance `row` of partition `source`."""
    supply = source.supply
    facts = StatusFacts(
        requested_state=row.requested_state, shared=False, allocated=True,
        stored_reason=row.status_reason or "", reported_state=row.reported_state,
        build_state=supply.reported_state if supply else None,
        build_error=supply.error_log if supply else "",
        supplied=bool(supply and supply.requested_state == SupplyState.AVAILABLE.value),
        computer=source.computer,
    )
    root, requester = source.root, source.requester
    return InstanceView(
        guid=row.guid, title=row.title, root_title=root[1] if root else row.title,
        software_release=row.software_release, software_type=row.software_type,
        parameters=_raw(row.parameters), connection_parameters=_raw(row.connection_parameters),
        sla=_raw(row.sla), requested_state=row.requested_state, reported_state=row.reported_state,
        shared=False, timestamp=row.timestamp, status=describe(facts), computer=source.computer,
        partition=source.reference, addresses=addresses,
        hosted=tuple(SharedView(s.guid, s.title, s.software_type, _raw(s.parameters),
                                _raw(s.connection_parameters), s.requested_state) for s in source.hosted),
        host_guid=None, requester_guid=requester[0] if requester else None, ipv6_range=source.ipv6_range,
    )


def _raw(text: str | None) -> dict[str, Any]:
    """A JSON column read as text, decoded as its JSON type would be (NULL and null give {})."""
    return dict(json.loads(text) or {}) if text is not None else {}


def supply_row_view(computer_reference: str, row: SupplyRow) -> SupplyView:
    return SupplyView(computer_reference, row.url, row.requested_state, row.reported_state, row.error_log or "")


def source_view(source: ComputerSource) -> ComputerView:
    """The `ComputerView` of a `computer_source`."""
    return ComputerView(
        reference=source.reference, generation=source.generation,
        partitions=tuple(partition_view(p) for p in source.partitions),
        supplies=tuple(supply_row_view(source.reference, s) for s in source.supplies),
    )
