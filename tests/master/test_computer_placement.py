"""Placement through the services, on both backends (issue 13): who may tag, network, open, close
or drain a computer (the abusing user changes nothing), unique_by_network and spread across a
tree's requests, and an unreachable node said in its instances' status without moving them."""
from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import select

from partita.master.db.database import Database
from partita.master.db.models import Computer
from partita.master.services import (
    computer_placement, computer_registry, computers, contact, instances, supplies, views,
)
from partita.master.services.computers import AddressSpec, PartitionSpec
from partita.master.services.identity import Caller
from partita.master.services.instances import RequestSpec
from partita.slap.errors import Forbidden, ValidationError
from partita.slap.states import SupplyState
from tests.master.test_json_rpc import Api
from tests.master.test_services import request

SR = "https://example.invalid/hello/software.cfg"
ALICE = Caller(owner="alice", role="user")
BOB = Caller(owner="bob", role="user")
ADMIN = Caller(owner="root", role="user", admin=True)


def alices_computer(db: Database, reference: str = "COMP-A", partitions: int = 2) -> None:
    """A computer of alice's (formatted as the proxy would for her), with `SR` supplied."""
    specs = [PartitionSpec(f"slappart{i}", (AddressSpec(f"10.{len(reference)}.{ord(reference[-1])}.{i + 1}"),))
             for i in range(partitions)]
    with db.write() as session:
        computers.format_computer(session, Caller(owner="alice"), reference, specs)
        supplies.supply(session, ALICE, reference, SR, SupplyState.AVAILABLE)


def placement_of(db: Database, reference: str = "COMP-A") -> tuple[object, ...]:
    with db.read() as session:
        computer = session.scalar(select(Computer).where(Computer.reference == reference))
        return computer.tags, computer.network, computer.allocation_scope


def test_owner_and_admin_set_tags_network_scope(db: Database) -> None:
    alices_computer(db)
    with db.write() as session:
        assert computer_placement.set_tags(session, ALICE, "COMP-A", {"region": "rennes", "gpu": "a100"}) == {
            "region": "rennes", "gpu": "a100"}
        assert computer_placement.set_tags(session, ADMIN, "COMP-A", {}, unset=["gpu"]) == {"region": "rennes"}
        assert computer_placement.set_network(session, ALICE, "COMP-A", "rack-1") == "rack-1"
        assert computer_placement.set_scope(session, ADMIN, "COMP-A", "drain") == "drain"
    assert placement_of(db) == ({"region": "rennes"}, "rack-1", "drain")
    with db.read() as session:
        entry = computer_registry.computer_info(session, ALICE, "COMP-A")
    assert (entry.tags, entry.network, entry.allocation_scope) == ((("region", "rennes"),), "rack-1", "drain")


@pytest.mark.parametrize("intruder", [BOB, Caller(owner="alice", role="computer", computer="COMP-A"),
                                      Caller(owner="alice", role="partition", computer="COMP-A",
                                             partition="slappart0")])
def test_others_may_not_tag_close_or_network_and_change_nothing(db: Database, intruder: Caller) -> None:
    alices_computer(db)
    before = placement_of(db)
    for change in (lambda s: computer_placement.set_tags(s, intruder, "COMP-A", {"region": "evil"}),
                   lambda s: computer_placement.set_network(s, intruder, "COMP-A", "evil"),
                   lambda s: computer_placement.set_scope(s, intruder, "COMP-A", "close")):
        with pytest.raises(Forbidden), db.write() as session:
            change(session)
    assert placement_of(db) == before


@pytest.mark.parametrize(("tags", "scope"), [({"bad name": "x"}, "open"), ({"ok": "x\n"}, "open"),
                                             ({}, "shut")])
def test_bad_values_are_refused_and_change_nothing(db: Database, tags: dict[str, str], scope: str) -> None:
    alices_computer(db)
    before = placement_of(db)
    with pytest.raises(ValidationError), db.write() as session:
        computer_placement.set_tags(session, ALICE, "COMP-A", tags)
        computer_placement.set_scope(session, ALICE, "COMP-A", scope)
    assert placement_of(db) == before


def _child(db: Database, parent: views.InstanceView, title: str, **fields: object) -> views.InstanceView:
    caller = Caller(owner="alice", computer=parent.computer, partition=parent.partition)
    with db.write() as session:
        instance = instances.request_instance(session, caller, RequestSpec(title, SR, **fields))  # type: ignore[arg-type]
        assert instance is not None
        return views.instance_view(session, instance)


def test_workers_of_one_tree_spread_then_double_up(db: Database) -> None:
    for reference in ("COMP-A", "COMP-B", "COMP-C"):
        alices_computer(db, reference, partitions=3)
    root = request(db, "scheduler", caller=ALICE)
    assert root is not None and root.computer == "COMP-A"
    workers = [_child(db, root, f"worker-{i}").computer for i in range(4)]
    assert workers[:2] == ["COMP-B", "COMP-C"] and sorted(workers[2:]) == ["COMP-A", "COMP-B"]


def test_unique_by_network_places_one_per_network(db: Database) -> None:
    for reference, network in (("COMP-A", "rack-1"), ("COMP-B", "rack-1"), ("COMP-C", "rack-2")):
        alices_computer(db, reference)
        with db.write() as session:
            computer_placement.set_network(session, ALICE, reference, network)
    unique = {"sla": {"mode": "unique_by_network"}}
    root = request(db, "root", caller=ALICE, **unique)
    assert root is not None and root.computer == "COMP-A"
    second = _child(db, root, "second", **unique)
    assert second.computer == "COMP-C"
    third = _child(db, root, "third", **unique)
    assert third.partition is None
    assert third.status == "waiting for a free partition (mode=unique_by_network)"
    assert _child(db, root, "anywhere").partition is not None  # without the mode: anywhere


def test_an_unreachable_node_is_said_in_its_instances_status_without_moving_them(db: Database) -> None:
    alices_computer(db)
    placed = request(db, "web", caller=ALICE)
    assert placed is not None and placed.partition is not None
    long_ago = time.time() - 600
    with db.write() as session:
        contact.record(session, "COMP-A", long_ago)
        instance = instances.get_instance_by_guid(session, ALICE, placed.guid)
        shown = views.instance_view(session, instance, unreachable_after=120)
        assert shown.status.startswith("the node of computer COMP-A is unreachable since ")
        assert shown.partition == placed.partition
        assert views.instance_view(session, instance, unreachable_after=3600).status == placed.status
        entry = computer_registry.computer_info(session, ALICE, "COMP-A", unreachable_after=120)
        assert (entry.contact_state, entry.last_contact) == ("unreachable", long_ago)
        contact.record(session, "COMP-A", time.time())
        assert computer_registry.computer_info(session, ALICE, "COMP-A").contact_state == "online"


def test_contact_is_written_at_most_every_few_seconds(db: Database) -> None:
    alices_computer(db)
    with db.write() as session:
        contact.record(session, "COMP-A", 1000.0)
        contact.record(session, "COMP-A", 1005.0)  # within WRITE_EVERY: kept
    with db.read() as session:
        assert session.scalar(select(Computer.last_contact).where(Computer.reference == "COMP-A")) == 1000.0
    throttle = contact.ContactThrottle(every=10)
    assert [throttle.due("C", t) for t in (0, 5, 11, 12)] == [True, False, True, False]


@pytest.mark.parametrize(("last", "state"), [(None, "never seen"), (950.0, "online"), (800.0, "unreachable")])
def test_contact_state(last: float | None, state: str) -> None:
    assert contact.contact_state(last, 1000.0, 120.0) == state


def test_a_format_is_a_contact(app: Flask, db: Database) -> None:
    api = Api(app.test_client())
    with db.read() as session:
        assert session.scalar(select(Computer.last_contact).where(Computer.reference == "local_computer")) is None
    before = time.time()
    api.format("slappart0")
    with db.read() as session:
        entry = computer_registry.computer_info(session, ADMIN, "local_computer")
    assert entry.contact_state == "online" and entry.last_contact >= before - 1
