"""Owners of trees, supplies and computers."""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from master.db.models import Owner


def ensure_owner(session: Session, name: str) -> Owner:
    owner = session.scalar(select(Owner).where(Owner.name == name))
    if owner is None:
        owner = Owner(name=name, created_at=time.time())
        session.add(owner)
        session.flush()
    return owner
