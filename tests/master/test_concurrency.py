"""Atomic allocation under concurrency, on both backends (row locks on PostgreSQL, one writer on SQLite)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from partita.master.allocation import Demand, Waiting
from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.services import allocator, instances, views
from partita.master.services.identity import Caller
from partita.master.services.instances import RequestSpec
from tests.master.test_services import SR, format_partitions


def _request(db: Database, title: str) -> views.InstanceView:
    def work(session):  # type: ignore[no-untyped-def]
        instance = instances.request_instance(session, Caller(), RequestSpec(title, SR))
        return views.instance_view(session, instance)
    return db.run_write(work)


def test_fifty_parallel_requests_on_twenty_partitions(db: Database) -> None:
    format_partitions(db, 20)
    titles = [f"instance-{i:02d}" for i in range(50)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda t: _request(db, t), titles))
    allocated = [a for a in answers if a.partition is not None]
    waiting = [a for a in answers if a.partition is None]
    assert len(allocated) == 20
    assert len({a.partition for a in allocated}) == 20
    assert len(waiting) == 30
    assert all(a.status == "waiting for a free partition (any computer)" for a in waiting)

    with db.read() as session:
        queue = list(session.scalars(
            select(SoftwareInstance.title).where(SoftwareInstance.partition_id.is_(None))
            .order_by(SoftwareInstance.created_at, SoftwareInstance.id)
        ))
    format_partitions(db, 10, start=20)
    with db.read() as session:
        now_allocated = set(session.scalars(
            select(SoftwareInstance.title).where(SoftwareInstance.partition_id.is_not(None))
        ))
        partitions = list(session.scalars(
            select(SoftwareInstance.partition_id).where(SoftwareInstance.partition_id.is_not(None))
        ))
    assert len(now_allocated) == 30 and len(set(partitions)) == 30
    assert set(queue[:10]) <= now_allocated            # the ten oldest waiting ones
    assert not set(queue[10:]) & now_allocated          # and only them


@pytest.mark.postgresql
def test_a_lost_race_chooses_again_without_the_locked_partition(pg_db: Database) -> None:
    """Two workers read the same free partitions; the second skips the row the first locked.
    (PostgreSQL only: SQLite has one writer at a time, so there is no race to lose.)"""
    db = pg_db
    format_partitions(db, 2)
    with db.write() as first:
        taken = allocator.place(first, Demand(SR))
        assert isinstance(taken, allocator.Placement) and taken.partition_reference == "slappart0"
        with db.write() as second:  # another worker, while the first holds its row
            other = allocator.place(second, Demand(SR))
            assert isinstance(other, allocator.Placement) and other.partition_reference == "slappart1"
            with db.write() as third:  # every free partition is held: read again, then wait
                waiting = allocator.place(third, Demand(SR))
                assert waiting == Waiting("waiting for a free partition (any computer)", none_free=True)
