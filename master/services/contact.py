"""A node's last contact with the master: recorded cheaply on its calls, read as a state.

The node's long poll (`slapos.wait.v0.compute_node_change`, at least every
`node.daemon.LONG_POLL` seconds) and every read of its state are its heartbeat. The master writes
``computers.last_contact`` at most once every `WRITE_EVERY` seconds per computer: a process
remembers when it last wrote (`ContactThrottle`), and the UPDATE itself changes nothing when
another process wrote recently, so several workers do not pile writes up.

| last contact | state |
|---|---|
| never | ``never seen`` |
| within the unreachable delay (`AppSettings.unreachable_after_seconds`) | ``online`` |
| older | ``unreachable`` (its instances say so in their status; they are not moved: their data lives there) |
"""
from __future__ import annotations

import threading

from sqlalchemy import bindparam, or_, update
from sqlalchemy.orm import Session

from partita.master.db.models import Computer

WRITE_EVERY = 10.0
ONLINE, UNREACHABLE, NEVER_SEEN = "online", "unreachable", "never seen"

_COMPUTERS = Computer.__table__
_RECORD = (
    update(_COMPUTERS)
    .where(_COMPUTERS.c.reference == bindparam("computer_reference"),
           or_(_COMPUTERS.c.last_contact.is_(None), _COMPUTERS.c.last_contact < bindparam("stale")))
    .values(last_contact=bindparam("contact_at"))
)


def contact_state(last_contact: float | None, now: float, unreachable_after: float) -> str:
    """``online``, ``unreachable`` or ``never seen`` (pure)."""
    if last_contact is None:
        return NEVER_SEEN
    return ONLINE if now - last_contact <= unreachable_after else UNREACHABLE


def unreachable_since(last_contact: float | None, now: float, unreachable_after: float) -> float | None:
    """The last contact of a computer that is unreachable now, else None (pure)."""
    if last_contact is None or contact_state(last_contact, now, unreachable_after) != UNREACHABLE:
        return None
    return last_contact


class ContactThrottle:
    """When this process last wrote each computer's contact: `due` says whether to write again."""

    def __init__(self, every: float | None = None) -> None:
        self.every = WRITE_EVERY if every is None else every
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, reference: str, now: float) -> bool:
        """True (and remembered as written) if `reference` was not written in the last `every` s."""
        with self._lock:
            last = self._written.get(reference)
            if last is not None and now - last < self.every:
                return False
            self._written[reference] = now
            return True


def record(session: Session, reference: str, now: float, every: float | None = None) -> None:
    """Set the computer's last contact to `now`, unless it was set less than `every` s ago
    (default `WRITE_EVERY`)."""
    every = WRITE_EVERY if every is None else every
    session.connection().execute(_RECORD, {"computer_reference": reference, "contact_at": now, "stale": now - every})
