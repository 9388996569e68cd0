"""Change bookkeeping: instance timestamps and computer generations.

Every change that concerns a partition bumps the timestamp of the instance it hosts (what the node
compares with its ``.timestamp`` file) and the generation of its computer (what the node's
wait-for-change call watches). Changed computers are collected in the session; the database layer
announces them after commit (in-process, and through PostgreSQL NOTIFY to other workers).

It lives in the database layer because ``Database.write()`` reads the changed computers when it
commits; the services call `bump`, `mark_computer_changed` and `mark_changed` when they change
something a node must see.
"""
from __future__ import annotations

import time

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from partita.master.db.models import Computer, SoftwareInstance

CHANGED_COMPUTERS = "partita_changed_computers"


def next_timestamp(previous: float | None, now: float | None = None) -> float:
    """A timestamp strictly greater than `previous` (two changes in one microsecond still differ)."""
    now = time.time() if now is None else now
    previous = previous or 0.0
    return round(max(now, previous + 1e-6), 6)


_COMPUTERS = Computer.__table__
_NEXT_GENERATION = (
    update(_COMPUTERS).where(_COMPUTERS.c.id == bindparam("computer_id"))
    .values(generation=_COMPUTERS.c.generation + 1)
)


def mark_computer_changed(session: Session, computer: Computer) -> None:
    """Give `computer` a new generation, once per transaction."""
    mark_changed(session, computer.id, computer.reference)


def mark_changed(session: Session, computer_id: int, reference: str) -> None:
    """Give computer `computer_id` (named `reference`) a new generation, once per transaction.

    The increment is done by the database at once (``generation = generation + 1``, no object
    flush), so two concurrent writers never both write N + 1: PostgreSQL's row lock orders them,
    and SQLite has one writer. A loaded `Computer` forgets its old generation.
    """
    changed = session.info.setdefault(CHANGED_COMPUTERS, set())
    if reference in changed:
        return
    changed.add(reference)
    session.connection().execute(_NEXT_GENERATION, {"computer_id": computer_id})
    loaded = session.identity_map.get(session.identity_key(Computer, computer_id))
    if loaded is not None:
        session.expire(loaded, ["generation"])


def bump(session: Session, instance: SoftwareInstance) -> None:
    """Record that `instance` changed: its node must process it again."""
    instance.timestamp = next_timestamp(instance.timestamp)
    if instance.partition is not None:
        mark_computer_changed(session, instance.partition.computer)


def changed_computers(session: Session) -> set[str]:
    return set(session.info.get(CHANGED_COMPUTERS, ()))
