"""Owners of trees, supplies and computers."""
from __future__ import annotations

import time

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from partita.master.db.models import Owner


def find_owner(session: Session, name: str) -> Owner | None:
    return session.scalar(select(Owner).where(Owner.name == name))


def ensure_owner(session: Session, name: str) -> Owner:
    owner = find_owner(session, name)
    if owner is None:
        owner = Owner(name=name, created_at=time.time())
        session.add(owner)
        session.flush()
    return owner


_OWNER_ID = select(Owner.__table__.c.id).where(Owner.__table__.c.name == bindparam("name"))


def ensure_owner_id(session: Session, name: str) -> int:
    """The id of owner `name`, created if needed (one prepared plain query when it exists: a
    request's hot path needs the id, not the object)."""
    found = session.connection().execute(_OWNER_ID, {"name": name}).scalar()
    return found if found is not None else ensure_owner(session, name).id
