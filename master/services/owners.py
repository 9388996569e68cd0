"""Owners of trees, supplies and computers."""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from master.db.models import Owner


def find_owner(session: Session, name: str) -> Owner | None:
    return session.scalar(select(Owner).where(Owner.name == name))


def ensure_owner(session: Session, name: str) -> Owner:
    owner = find_owner(session, name)
    if owner is None:
        owner = Owner(name=name, created_at=time.time())
        session.add(owner)
        session.flush()
    return owner
