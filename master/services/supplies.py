"""Supplies: which software releases each computer must have, and what the node reported."""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import Partition, SoftwareInstance, Supply
from partita.master.services import access, allocator, audit, software_names
from partita.master.db.changes import bump, mark_computer_changed
from partita.master.services.computers import get_computer, known_computer
from partita.master.services.identity import Caller
from partita.master.services.owners import ensure_owner
from partita.master.services.status import tail
from partita.master.services.validation import clean_software_release, clean_text
from partita.slap.states import BuildState, SupplyState

MAX_ERROR_LOG = 64 * 1024


def supply(session: Session, caller: Caller, computer_reference: str, url: str,
           state: SupplyState) -> Supply:
    """Ask `computer_reference` to install (available) or remove (destroyed) software `url`. The
    computer must exist (formatted, registered, or the proxy's own): an unknown one is a 404."""
    url = clean_software_release(software_names.resolve(session, url))
    computer = known_computer(session, caller, computer_reference)
    access.check_supply(session, caller, computer, removal=state == SupplyState.DESTROYED)
    row = session.scalar(select(Supply).where(Supply.computer_id == computer.id, Supply.url == url))
    if row is None:
        owner = ensure_owner(session, caller.owner)
        row = Supply(computer_id=computer.id, owner_id=owner.id, url=url, requested_state=state.value,
                     reported_state=None, error_log="", updated_at=time.time())
        session.add(row)
    elif row.requested_state != state.value:
        row.requested_state = state.value
        row.updated_at = time.time()
    else:
        return row
    mark_computer_changed(session, computer)
    if caller.authenticated:
        audit.record(session, caller, f"supply.{state.value}", computer.reference, detail=url)
    session.flush()
    if caller.authenticated and state == SupplyState.AVAILABLE:
        allocator.allocate_waiting(session, needs_supply=True)  # requests waiting for this supply
    return row


def report_build(session: Session, caller: Caller, computer_reference: str, url: str, state: BuildState,
                 error_log: str = "") -> None:
    """Record what a node says about a software release: building, available, error, destroyed."""
    computer = get_computer(session, computer_reference)
    access.check_computer(session, caller, computer)
    row = session.scalar(select(Supply).where(Supply.computer_id == computer.id, Supply.url == url))
    if row is None:
        return  # a report about something never supplied (or already removed) changes nothing
    if state == BuildState.DESTROYED and row.requested_state == SupplyState.DESTROYED.value:
        session.delete(row)
        mark_computer_changed(session, computer)  # the release leaves the computer's list
        session.flush()
        return
    row.reported_state = state.value
    row.error_log = tail(clean_text(error_log), MAX_ERROR_LOG) if state == BuildState.ERROR else ""
    row.updated_at = time.time()
    if state == BuildState.AVAILABLE:
        _bump_instances_of(session, computer.id, url)


def _bump_instances_of(session: Session, computer_id: int, url: str) -> None:
    """Software became available: the instances waiting for it are processed again."""
    instances = session.scalars(
        select(SoftwareInstance).join(Partition, Partition.id == SoftwareInstance.partition_id)
        .where(Partition.computer_id == computer_id, SoftwareInstance.software_release == url)
    )
    for instance in instances:
        bump(session, instance)


def list_supplies(session: Session, caller: Caller, computer_reference: str) -> list[Supply]:
    computer = get_computer(session, computer_reference)
    access.check_computer(session, caller, computer)
    return list(session.scalars(select(Supply).where(Supply.computer_id == computer.id).order_by(Supply.id)))
