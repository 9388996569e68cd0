"""Computers and their partitions: registration by formatting, and look-ups.

A partition may have an IPv6 range besides its addresses (the node's ``partition_has_ipv6_range``):
one network per partition, in canonical form (``2001:db8::1:0/112``), from /48 to /128, not
overlapping another partition's (`check_ipv6_range`). A reformat with another range replaces it
and bumps the partition's instance, whose buildout then sees the new one; without one, it has none.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from partita.master.db.models import Computer, Partition, PartitionAddress
from partita.master.services import access, allocator
from partita.master.db.changes import bump, mark_computer_changed
from partita.master.services.identity import Caller
from partita.master.services.owners import ensure_owner
from partita.master.services.validation import clean_label, clean_reference
from partita.slap.errors import Forbidden, NotFound, ValidationError
from partita.slap.states import PartitionState

MAX_PARTITIONS = 10_000
IPV6_RANGE_PREFIXES = (48, 128)  # the shortest and longest prefix a partition's range may have


@dataclass(frozen=True)
class AddressSpec:
    address: str
    netmask: str = ""
    interface: str = ""


@dataclass(frozen=True)
class PartitionSpec:
    reference: str
    addresses: Sequence[AddressSpec] = field(default_factory=tuple)
    ipv6_range: str | None = None   # e.g. "2001:db8::1:0/112"; checked by `check_ipv6_range`


def find_computer(session: Session, reference: str) -> Computer | None:
    return session.scalar(select(Computer).where(Computer.reference == reference))


def get_computer(session: Session, reference: str) -> Computer:
    computer = find_computer(session, reference)
    if computer is None:
        raise NotFound(f"unknown computer {reference!r}")
    return computer


def get_partition(session: Session, computer_reference: str, partition_reference: str) -> Partition:
    partition = session.scalar(
        select(Partition).join(Computer)
        .where(Computer.reference == computer_reference, Partition.reference == partition_reference)
        .options(selectinload(Partition.addresses))
    )
    if partition is None:
        raise NotFound(f"unknown partition {partition_reference!r} on computer {computer_reference!r}")
    return partition


def known_computer(session: Session, caller: Caller, reference: str, named_by: str = "") -> Computer:
    """The existing computer `reference` that a supply or a request's SLA names: never created here
    (a typo must not make a phantom computer); unknown, it is a 404 naming it (and `named_by`, what
    named it) and saying how computers join."""
    clean_reference(reference, "computer reference")
    computer = find_computer(session, reference)
    if computer is None:
        joins = "by `slapos node register`" if caller.authenticated else "when their node runs `slapos node format`"
        raise NotFound(f"unknown computer {reference!r}{named_by}: computers join {joins}")
    return computer


def ensure_computer(session: Session, caller: Caller, reference: str) -> Computer:
    """The computer named `reference`. In proxy mode (a ``local`` caller) it is created for the
    caller's owner if it does not exist; on an authenticated master computers join only by
    registering (`master.services.enrolment`), so an unknown one is a 404."""
    clean_reference(reference, "computer reference")
    computer = find_computer(session, reference)
    if caller.authenticated:
        if computer is None:
            raise NotFound(f"unknown computer {reference!r} (a computer joins with `slapos node register`)")
        return computer
    owner = ensure_owner(session, caller.owner)
    if computer is None:
        computer = Computer(reference=reference, owner_id=owner.id, title=reference,
                            generation=0, created_at=time.time())
        session.add(computer)
        session.flush()
    elif computer.owner_id != owner.id:
        raise Forbidden(f"computer {reference!r} belongs to another owner")
    return computer


def format_computer(session: Session, caller: Caller, reference: str, partitions: Sequence[PartitionSpec],
                    address: str | None = None, netmask: str | None = None) -> Computer:
    """Make the computer's partitions match `partitions`, keeping busy ones; allocate waiting requests.

    New partitions are added free; existing ones keep their state and get the given addresses;
    free partitions missing from the list are removed, busy ones are kept until they are freed.
    """
    _check_specs(partitions)
    computer = ensure_computer(session, caller, reference)
    access.check_computer(session, caller, computer)
    computer.address, computer.netmask = address, netmask
    existing = {p.reference: p for p in computer.partitions}
    wanted = {spec.reference for spec in partitions}
    for spec in partitions:
        partition = existing.get(spec.reference)
        if partition is None:
            partition = Partition(reference=spec.reference, state=PartitionState.FREE.value)
            computer.partitions.append(partition)
        partition.addresses = [
            PartitionAddress(address=a.address, netmask=a.netmask, interface=a.interface)
            for a in spec.addresses
        ]
        if partition.ipv6_range != spec.ipv6_range:
            partition.ipv6_range = spec.ipv6_range
            if partition.instance is not None:
                bump(session, partition.instance)  # its buildout must see the new range
    for ref, partition in existing.items():
        if ref not in wanted and partition.state == PartitionState.FREE.value:
            computer.partitions.remove(partition)
    mark_computer_changed(session, computer)
    session.flush()
    allocator.allocate_waiting(session, needs_supply=caller.authenticated)
    return computer


def check_ipv6_range(partition: str, value: object) -> ipaddress.IPv6Network:
    """The IPv6 range `value` of partition `partition` as a network (pure); a ValidationError
    naming the partition unless it is an IPv6 network in canonical form, with host bits clear,
    whose prefix is from /48 to /128."""
    shortest, longest = IPV6_RANGE_PREFIXES
    problem = f"partition {partition!r} has a bad IPv6 range {value!r}"
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(f"{problem}: it must be an IPv6 network such as 2001:db8::1:0/112")
    try:
        network = ipaddress.IPv6Network(value, strict=True)
    except ValueError as error:
        raise ValidationError(f"{problem}: {error}") from None
    if "/" not in value or str(network) != value:
        raise ValidationError(f"{problem}: write it in canonical form, {network}")
    if not shortest <= network.prefixlen <= longest:
        raise ValidationError(f"{problem}: its prefix must be from /{shortest} to /{longest}")
    return network


def _check_ranges(partitions: Sequence[PartitionSpec]) -> None:
    """Each range is valid, and no two partitions' ranges overlap."""
    ranges = sorted((check_ipv6_range(spec.reference, spec.ipv6_range), spec.reference)
                    for spec in partitions if spec.ipv6_range is not None)
    for (first, first_ref), (second, second_ref) in zip(ranges, ranges[1:]):
        if first.overlaps(second):
            raise ValidationError(f"partition {second_ref!r} has an IPv6 range {second} that overlaps "
                                  f"partition {first_ref!r}'s {first}")


def _check_specs(partitions: Sequence[PartitionSpec]) -> None:
    if len(partitions) > MAX_PARTITIONS:
        raise ValidationError(f"a computer has at most {MAX_PARTITIONS} partitions")
    seen: set[str] = set()
    for spec in partitions:
        clean_reference(spec.reference, "partition reference")
        if spec.reference in seen:
            raise ValidationError(f"partition {spec.reference!r} is listed twice")
        seen.add(spec.reference)
        for address in spec.addresses:
            try:
                ipaddress.ip_address(address.address)
            except ValueError:
                raise ValidationError(
                    f"partition {spec.reference!r} has a bad address {address.address!r}"
                ) from None
            clean_label(address.netmask, f"the netmask of {address.address}")
            clean_label(address.interface, f"the interface of {address.address}")
    _check_ranges(partitions)


def list_computers(session: Session) -> list[Computer]:
    return list(session.scalars(select(Computer).order_by(Computer.reference)))
