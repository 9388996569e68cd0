"""Computers as an operator sees them: owner, partitions, the state of their certificate, what
placement knows of them (tags, network, allocation scope) and whether their node calls
(`master.services.contact`).

Its instances are those its partitions hold that are not destroyed: a destroyed instance keeps
its partition busy until the node has freed it, but is no longer counted."""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partita.master.db.models import Computer, IssuedCertificate, Owner, Partition, SoftwareInstance
from partita.master.services import access, certificates, contact
from partita.master.services.computers import get_computer
from partita.master.services.identity import Caller
from partita.master.settings import UNREACHABLE_AFTER_SECONDS
from partita.slap.states import InstanceState, PartitionState


@dataclass(frozen=True)
class CertificateEntry:
    serial: str
    not_before: float
    not_after: float
    state: str
    revoked_at: float | None


@dataclass(frozen=True)
class ComputerEntry:
    reference: str
    title: str
    owner: str
    created_at: float
    partition_count: int
    busy_partition_count: int
    certificate: CertificateEntry | None
    certificates: tuple[CertificateEntry, ...] = ()
    partitions: tuple[tuple[str, str], ...] = ()
    allocation_scope: str = "open"
    tags: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    last_contact: float | None = None
    contact_state: str = contact.NEVER_SEEN
    builder: bool = False  # may fill the binary cache (`master.services.binary_cache`)
    instance_count: int = 0  # the instances its partitions hold, destroyed ones left out


def _entry(row: IssuedCertificate, now: float) -> CertificateEntry:
    return CertificateEntry(row.serial, row.not_before, row.not_after, certificates.state(row, now), row.revoked_at)


def _instance_count(session: Session, computer_id: int) -> int:
    """The instances on the computer's partitions that are not destroyed (being freed)."""
    return session.scalar(
        select(func.count()).select_from(SoftwareInstance)
        .join(Partition, Partition.id == SoftwareInstance.partition_id)
        .where(Partition.computer_id == computer_id,
               SoftwareInstance.requested_state != InstanceState.DESTROYED.value)) or 0


def _summary(session: Session, computer: Computer, owner: str, now: float, unreachable_after: float, *,
             detailed: bool) -> ComputerEntry:
    states = [state for (state,) in session.execute(
        select(Partition.state).where(Partition.computer_id == computer.id).order_by(Partition.id))]
    history = certificates.history(session, computer.id)
    partitions: tuple[tuple[str, str], ...] = ()
    if detailed:
        partitions = tuple((reference, state) for reference, state in session.execute(
            select(Partition.reference, Partition.state).where(Partition.computer_id == computer.id)
            .order_by(Partition.id)))
    return ComputerEntry(
        reference=computer.reference, title=computer.title or computer.reference, owner=owner,
        created_at=computer.created_at, partition_count=len(states),
        busy_partition_count=sum(1 for state in states if state != PartitionState.FREE.value),
        certificate=_entry(history[0], now) if history else None,
        certificates=tuple(_entry(row, now) for row in history) if detailed else (),
        partitions=partitions, allocation_scope=computer.allocation_scope or "open",
        tags=tuple(sorted((str(k), str(v)) for k, v in (computer.tags or {}).items())),
        network=computer.network, last_contact=computer.last_contact,
        contact_state=contact.contact_state(computer.last_contact, now, unreachable_after),
        builder=bool(computer.builder), instance_count=_instance_count(session, computer.id),
    )


def list_computers(session: Session, caller: Caller,
                   unreachable_after: float = UNREACHABLE_AFTER_SECONDS) -> list[ComputerEntry]:
    """Every computer for an admin; the caller's own computers for a user."""
    access.require_user(caller, "list computers")
    now = time.time()
    query = select(Computer, Owner.name).join(Owner, Owner.id == Computer.owner_id).order_by(Computer.id)
    if not caller.is_admin:
        query = query.where(Owner.name == caller.owner)
    return [_summary(session, computer, owner, now, unreachable_after, detailed=False)
            for computer, owner in session.execute(query)]


def computer_info(session: Session, caller: Caller, reference: str,
                  unreachable_after: float = UNREACHABLE_AFTER_SECONDS) -> ComputerEntry:
    computer = get_computer(session, reference)
    access.check_computer(session, caller, computer)
    owner = session.scalar(select(Owner.name).where(Owner.id == computer.owner_id)) or ""
    return _summary(session, computer, owner, time.time(), unreachable_after, detailed=True)
