"""Who may reach what: pure rules over the caller and the owner/tree of the target.

- A user reaches the instances, supplies and computers of its own owner; an admin also manages
  every computer, user and token (not other users' instances).
- A computer reaches itself, its partitions and the instances they host (the node's work).
- A partition reaches the instance it hosts and the instances of that instance's tree; a partition
  that hosts no instance (or does not exist) is a bad Authorization header (400).
- Only a partition's hosting node frees it (reports its instance destroyed, `check_freeing`): the
  node frees it once it has wiped it; an owner or an admin asks for destruction by requesting the
  state destroyed, and may not say "destroyed" in the node's place (issue 10).
- In proxy mode every caller is the owner ``local``, so everything is reachable.
Authentication only changes who the Caller is, not these rules.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import Computer, Owner, Partition, SharedAttachment, SoftwareInstance
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


def _hosting_computer(session: Session, instance: SoftwareInstance) -> str | None:
    """The computer whose partition hosts `instance` (or the host of a shared instance)."""
    host_id = instance.id
    if instance.partition_id is None:
        host_id = session.scalar(select(SharedAttachment.host_instance_id)
                                 .where(SharedAttachment.shared_instance_id == instance.id))
        if host_id is None:
            return None
    return session.scalar(
        select(Computer.reference)
        .join(Partition, Partition.computer_id == Computer.id)
        .join(SoftwareInstance, SoftwareInstance.partition_id == Partition.id)
        .where(SoftwareInstance.id == host_id))


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
    if caller.role == "computer":
        if _hosting_computer(session, instance) != caller.computer:
            raise Forbidden(f"instance {instance.guid!r} is not hosted on computer {caller.computer!r}")
        return
    if _owner_name(session, instance.owner_id) != caller.owner:
        raise Forbidden(f"instance {instance.guid!r} belongs to another owner")


def check_computer(session: Session, caller: Caller, computer: Computer) -> None:
    """Refuse (403) a caller that may not manage `computer`: the computer itself (also when it acts
    for one of its partitions), its owner, an admin (and, in proxy mode only, one of its
    partitions)."""
    if caller.role == "computer":
        if caller.computer != computer.reference:
            raise Forbidden(f"computer {caller.computer!r} may not act on computer {computer.reference!r}")
        return
    if caller.is_partition:
        if (caller.role == "local" or caller.by_computer) and caller.computer == computer.reference:
            return
        raise Forbidden(f"partition {caller.partition!r} may not manage computer {computer.reference!r}")
    if caller.is_admin:
        return
    if _owner_name(session, computer.owner_id) != caller.owner:
        raise Forbidden(f"computer {computer.reference!r} belongs to another owner")


def check_freeing(caller: Caller, computer: str, partition: str) -> None:
    """Refuse (403) a caller that may not say the instance on `partition` of `computer` is destroyed
    and its partition wiped: that is for the computer hosting it, whose node wiped it. The proxy
    (``local``) has no identities and believes every caller.

    Over SLAP XML a computer acts as its partition (`Caller.acting_as` makes it role ``partition``
    with ``by_computer``): accepted; the partition's own certificate, a user (owner or admin) and
    another computer are not."""
    if caller.role == "local":
        return
    if caller.role == "computer" and caller.computer == computer:
        return
    if (caller.role == "partition" and caller.by_computer
            and (caller.computer, caller.partition) == (computer, partition)):
        return
    raise Forbidden(f"only the node of computer {computer!r} may report partition {partition!r} destroyed "
                    "(it does once it has wiped it); to destroy an instance, request it in state destroyed")


def check_supply(session: Session, caller: Caller, computer: Computer, removal: bool) -> None:
    """Any user may ask a registered computer to install a software release (software is shared
    by the node's partitions); only its owner or an admin may ask for a removal."""
    if caller.role == "user" and not removal:
        return
    check_computer(session, caller, computer)


def require_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise Forbidden(f"only an admin may {what}")


def require_user(caller: Caller, what: str) -> None:
    """Refuse computers and partitions: `what` is for people (and their scripts)."""
    if caller.role not in ("local", "user"):
        raise Forbidden(f"a {caller.role} certificate may not {what}")


def check_writer(session: Session, caller: Caller, instance: SoftwareInstance) -> None:
    """Refuse (403) a caller that may not change what `instance` publishes or reports: beyond
    `check_instance`, an authenticated partition changes only the instance it hosts itself (it
    reads its tree, but publishes for no other member)."""
    check_instance(session, caller, instance)
    if caller.role != "partition":
        return
    hosted = instance.partition
    if hosted is None or hosted.reference != caller.partition or hosted.computer.reference != caller.computer:
        raise Forbidden(f"partition {caller.partition!r} may change only the instance it hosts, "
                        f"not {instance.guid!r}")
