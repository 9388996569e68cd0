"""Computers and their partitions: registration by formatting, and look-ups."""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from partita.master.db.models import Computer, Partition, PartitionAddress
from partita.master.services import access, allocator
from partita.master.db.changes import mark_computer_changed
from partita.master.services.identity import Caller
from partita.master.services.owners import ensure_owner
from partita.master.services.validation import clean_label, clean_reference
from partita.slap.errors import Forbidden, NotFound, ValidationError
from partita.slap.states import PartitionState

MAX_PARTITIONS = 10_000


@dataclass(frozen=True)
class AddressSpec:
    address: str
    netmask: str = ""
    interface: str = ""


@dataclass(frozen=True)
class PartitionSpec:
    reference: str
    addresses: Sequence[AddressSpec] = field(default_factory=tuple)


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
    for ref, partition in existing.items():
        if ref not in wanted and partition.state == PartitionState.FREE.value:
            computer.partitions.remove(partition)
    mark_computer_changed(session, computer)
    session.flush()
    allocator.allocate_waiting(session, needs_supply=caller.authenticated)
    return computer


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


def list_computers(session: Session) -> list[Computer]:
    return list(session.scalars(select(Computer).order_by(Computer.reference)))
