"""Issue 10: an owner's quota holds under concurrent requests, also across connections on PostgreSQL.

Two requests of one owner used to both read the usage before either stored its instance, so a
quota of K could end with K + 1 instances. The request now locks the owner's row before it counts
(PostgreSQL; SQLite has one writer at a time), so the second waits for the first and counts it.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.services import instances, quotas
from partita.master.services.identity import Caller
from partita.master.services.instances import RequestSpec
from partita.slap.errors import QuotaExceeded

SR = "/opt/software/demo/software.cfg"
ALICE = Caller(owner="alice")


def _request(db: Database, title: str, quota: quotas.Quota) -> str:
    """``ok`` or ``quota``: what the master answered to `title`."""
    def work(session):  # type: ignore[no-untyped-def]
        instances.request_instance(session, ALICE, RequestSpec(title, SR), quota)
    try:
        db.run_write(work)
    except QuotaExceeded:
        return "quota"
    return "ok"


def _count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count(SoftwareInstance.id))) or 0)


def test_parallel_requests_leave_exactly_the_quota(db: Database) -> None:
    quota = quotas.Quota(max_instances=3)
    _request(db, "first", quotas.Quota(max_instances=1))  # the owner exists before the race
    start = threading.Barrier(12)

    def racer(index: int) -> str:
        start.wait(timeout=30)
        return _request(db, f"racer-{index:02d}", quota)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(racer, range(12)))
    assert answers.count("ok") == 2 and answers.count("quota") == 10, answers
    assert _count(db) == 3


@pytest.mark.postgresql
def test_a_second_request_waits_for_the_first_and_counts_it(pg_db: Database) -> None:
    """The race made deterministic: while one transaction has counted and stored an instance but not
    committed, another request of the same owner waits, then sees that instance and is refused."""
    quota = quotas.Quota(max_instances=2)
    _request(pg_db, "first", quota)
    answers: list[str] = []
    with pg_db.write() as session:
        instances.request_instance(session, ALICE, RequestSpec("second", SR), quota)
        other = threading.Thread(target=lambda: answers.append(_request(pg_db, "third", quota)))
        other.start()
        time.sleep(0.5)
        assert answers == []  # waiting for the owner's row, not counting past it
    other.join(timeout=30)
    assert answers == ["quota"]
    assert _count(pg_db) == 2
