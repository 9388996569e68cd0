"""Change bookkeeping (master/db/changes.py): timestamps, generations, what a commit announces."""
from __future__ import annotations

import time

from sqlalchemy import select

from partita.master.db.changes import (
    bump, changed_computers, mark_changed, mark_computer_changed, next_timestamp,
)
from partita.master.db.database import Database
from partita.master.db.models import ROOT_SCOPE, Computer, Owner, Partition, SoftwareInstance


def test_next_timestamp_is_now_when_later() -> None:
    assert next_timestamp(None, now=100.0) == 100.0
    assert next_timestamp(50.0, now=100.0) == 100.0


def test_next_timestamp_grows_even_within_one_microsecond() -> None:
    assert next_timestamp(100.0, now=100.0) == 100.000001
    assert next_timestamp(100.0, now=99.0) == 100.000001  # the clock went back: still later


def _computer(db: Database, reference: str = "COMP-1") -> int:
    with db.write() as session:
        owner = Owner(name="local", created_at=time.time())
        session.add(owner)
        session.flush()
        computer = Computer(reference=reference, owner_id=owner.id, created_at=time.time())
        session.add(computer)
        session.flush()
        return computer.id


def _generation(db: Database, computer_id: int) -> int:
    with db.read() as session:
        return session.scalar(select(Computer.generation).where(Computer.id == computer_id)) or 0


def test_a_computer_changes_once_per_transaction(db: Database) -> None:
    computer_id = _computer(db)
    before = _generation(db, computer_id)
    with db.write() as session:
        computer = session.get(Computer, computer_id)
        assert computer is not None
        mark_computer_changed(session, computer)
        mark_changed(session, computer_id, "COMP-1")
        assert changed_computers(session) == {"COMP-1"}
        assert computer.generation == before + 1  # a loaded computer forgets its old generation
    assert _generation(db, computer_id) == before + 1


def test_a_commit_announces_the_changed_computers(db: Database) -> None:
    computer_id = _computer(db)
    seen = db.bus.counter("COMP-1")
    with db.write() as session:
        mark_changed(session, computer_id, "COMP-1")
        assert db.bus.counter("COMP-1") == seen  # not before the commit
    assert db.bus.counter("COMP-1") == seen + 1


def test_a_transaction_that_changed_nothing_announces_nothing(db: Database) -> None:
    _computer(db)
    seen = db.bus.counter("COMP-1")
    with db.write() as session:
        assert changed_computers(session) == set()
    assert db.bus.counter("COMP-1") == seen


def test_a_rolled_back_change_is_not_announced(db: Database) -> None:
    computer_id = _computer(db)
    seen = db.bus.counter("COMP-1")
    try:
        with db.write() as session:
            mark_changed(session, computer_id, "COMP-1")
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    assert db.bus.counter("COMP-1") == seen
    assert _generation(db, computer_id) == 0


def test_bump_changes_the_instance_and_its_computer(db: Database) -> None:
    computer_id = _computer(db)
    with db.write() as session:
        partition = Partition(computer_id=computer_id, reference="slappart0", state="busy")
        session.add(partition)
        session.flush()
        owner_id = session.scalar(select(Owner.id))
        assert owner_id is not None
        instance = SoftwareInstance(
            guid="SOFTINST-1", owner_id=owner_id, title="a", scope_id=ROOT_SCOPE,
            software_release="https://example.invalid/software.cfg", software_type="default",
            parameters={}, connection_parameters={}, sla={}, timestamp=100.0, created_at=100.0,
            partition_id=partition.id,
        )
        session.add(instance)
        session.flush()
        bump(session, instance)
        assert instance.timestamp > 100.0
        assert changed_computers(session) == {"COMP-1"}
    assert _generation(db, computer_id) == 1
