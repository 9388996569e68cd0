"""The audit log: every change and every refused call, with who, when and from where.

Services record their changes in the transaction that makes them (`record`), so a change and its
event land together or not at all. Refused calls are recorded by the adapters in a transaction of
their own (`record_refusal`), since the refused call's transaction is rolled back.
"""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import AuditEvent
from partita.master.services.identity import Caller

MAX_TARGET, MAX_DETAIL = 1000, 2000
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def record(session: Session, caller: Caller | None, action: str, target: str, *, outcome: str = "ok",
           detail: str = "", address: str = "") -> None:
    """Add one event to the session's transaction. `caller` None is an anonymous call."""
    session.add(AuditEvent(
        at=time.time(), actor=caller.actor if caller else "anonymous",
        actor_owner=caller.owner if caller and caller.authenticated else "",
        address=(caller.address if caller else address)[:64], action=action[:64],
        target=target[:MAX_TARGET], outcome=outcome, detail=detail[:MAX_DETAIL],
    ))


def list_events(session: Session, caller: Caller, since: float | None = None,
                limit: int = DEFAULT_LIMIT) -> list[AuditEvent]:
    """The newest events first: every event for an admin, the caller's own for anyone else."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if not caller.is_admin:
        query = query.where(AuditEvent.actor_owner == caller.owner, AuditEvent.actor == caller.actor)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return list(session.scalars(query.limit(max(1, min(limit, MAX_LIMIT)))))
