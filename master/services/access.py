"""Who may reach what: pure rules over the caller and the owner/tree of the target.

- A user reaches the instances, supplies and computers of its own owner.
- A partition reaches the instance it hosts and the instances of that instance's tree; a partition
  that hosts no instance (or does not exist) is a bad Authorization header (400).
In proxy mode every caller is the owner ``local``, so everything is reachable; authentication
(a later layer) only changes who the Caller is, not these rules.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import Computer, Owner, Partition, SoftwareInstance
from partita.master.services.identity import Caller
from partita.slap.errors import BadAuthorization, Forbidden


def _owner_name(session: Session, owner_id: int) -> str | None:
    return session.scalar(select(Owner.name).where(Owner.id == owner_id))


def _acting_tree(session: Session, caller: Caller) -> int | None:
    """The tree of the instance hosted by the calling partition (None if it hosts none)."""
    row = session.execute(
        select(SoftwareInstance.id, SoftwareInstance.root_id)
        .join(Partition, Partition.id == SoftwareInstance.partition_id)
        .join(Computer, Computer.id == Partition.computer_id)
        .where(Computer.reference == caller.computer, Partition.reference == caller.partition)
    ).first()
    return None if row is None else (row.root_id or row.id)


def check_instance(session: Session, caller: Caller, instance: SoftwareInstance) -> None:
    """Refuse (403) a caller that may not reach `instance`."""
    if caller.is_partition:
        tree = _acting_tree(session, caller)
        if tree is None:
            raise BadAuthorization(
                f"No partition matching the authorization header: ({caller.computer} / {caller.partition})"
            )
        if tree != (instance.root_id or instance.id):
            raise Forbidden(f"partition {caller.partition!r} may not act on instance {instance.guid!r}")
        return
    if _owner_name(session, instance.owner_id) != caller.owner:
        raise Forbidden(f"instance {instance.guid!r} belongs to another owner")


def check_computer(session: Session, caller: Caller, computer: Computer) -> None:
    """Refuse (403) a caller that may not manage `computer` (its owner, or one of its partitions)."""
    if caller.is_partition and caller.computer == computer.reference:
        return
    if _owner_name(session, computer.owner_id) != caller.owner:
        raise Forbidden(f"computer {computer.reference!r} belongs to another owner")
