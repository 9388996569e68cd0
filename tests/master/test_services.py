"""The service layer on both backends: requests, trees, shared instances, waiting, freeing."""
from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.services import computer_views, computers, instances, lifecycle, supplies, views
from partita.master.services.computers import AddressSpec, PartitionSpec
from partita.master.services.identity import Caller
from partita.master.services.instances import RequestSpec
from partita.slap.errors import BadAuthorization, Forbidden, InvalidTransition, ValidationError
from partita.slap.states import BuildState, InstanceState, ReportedState, SupplyState

SR = "https://example.invalid/hello/software.cfg"
USER = Caller()
MASTER_USER = Caller(role="user")  # authenticated, owner of the computers USER formats
COMPUTER = "COMP-1"


def format_partitions(db: Database, count: int, computer: str = COMPUTER, start: int = 0) -> None:
    specs = [PartitionSpec(f"slappart{i}", (AddressSpec(f"10.0.{i // 250}.{i % 250 + 1}", "255.0.0.0", "lo"),))
             for i in range(start + count)]
    with db.write() as session:
        computers.format_computer(session, USER, computer, specs)


def request(db: Database, title: str, caller: Caller = USER, **fields: object) -> views.InstanceView | None:
    with db.write() as session:
        instance = instances.request_instance(session, caller, RequestSpec(title, fields.pop("sr", SR), **fields))
        return views.instance_view(session, instance) if instance is not None else None


def computer_state(db: Database, computer: str = COMPUTER) -> views.ComputerView:
    with db.read() as session:
        return computer_views.computer_view(session, computers.get_computer(session, computer))


def test_request_is_idempotent(db: Database) -> None:
    format_partitions(db, 3)
    first = request(db, "a", parameters={"x": "1"})
    again = request(db, "a", parameters={"x": "1"})
    assert first is not None and again is not None
    assert (again.guid, again.partition, again.timestamp) == (first.guid, first.partition, first.timestamp)
    changed = request(db, "a", parameters={"x": "2"})
    assert changed is not None and changed.partition == first.partition
    assert changed.timestamp > first.timestamp


def test_waiting_request_gets_a_partition_when_formatted(db: Database) -> None:
    waiting = request(db, "a")
    assert waiting is not None and waiting.partition is None
    assert waiting.status == "waiting for a free partition (any computer)"
    format_partitions(db, 0, computer="COMP-2")  # known, no partition yet (issue 11: unknown is refused)
    pinned = request(db, "b", sla={"computer_guid": "COMP-2"})
    assert pinned is not None and "computer_guid=COMP-2" in pinned.status
    format_partitions(db, 2)
    assert request(db, "a").partition == "slappart0"  # type: ignore[union-attr]
    assert request(db, "b", sla={"computer_guid": "COMP-2"}).partition is None  # type: ignore[union-attr]
    format_partitions(db, 1, computer="COMP-2")
    allocated = request(db, "b", sla={"computer_guid": "COMP-2"})
    assert allocated is not None and (allocated.computer, allocated.partition) == ("COMP-2", "slappart0")


def test_a_master_places_only_where_the_release_is_supplied(db: Database) -> None:
    """Issue 13: on a master (an authenticated caller) an instance waits for a supply of its
    release, saying so, and gets its partition when the release is supplied."""
    format_partitions(db, 2, computer="COMP-A")
    format_partitions(db, 2, computer="COMP-B")
    waiting = request(db, "a", caller=MASTER_USER)
    assert waiting is not None and waiting.partition is None
    assert waiting.status == f"waiting for a supply of {SR} (`slapos supply`)"
    pinned = request(db, "p", caller=MASTER_USER, sla={"computer_guid": "COMP-A"})
    assert pinned is not None and pinned.status == f"waiting for a supply of {SR} on computer COMP-A (`slapos supply`)"
    with db.write() as session:
        supplies.supply(session, MASTER_USER, "COMP-B", SR, SupplyState.AVAILABLE)
    assert request(db, "a", caller=MASTER_USER).computer == "COMP-B"  # type: ignore[union-attr]
    assert request(db, "p", caller=MASTER_USER, sla={"computer_guid": "COMP-A"}).partition is None  # type: ignore[union-attr]
    assert request(db, "proxy-style").computer == "COMP-A"  # type: ignore[union-attr]  # the proxy: no supply needed


PARKED = {"computer_guid": "COMP-NOWHERE"}


def arrive_by(path: str, db: Database, title: str, **fields: object) -> views.InstanceView:
    """Request an instance along one of the two paths that reach `allocation.place`: as a new
    request (placed before its INSERT), or as a waiting one (stored first with an SLA nothing
    matches, then requested again with `fields`: placed by `allocator.allocate`)."""
    if path == "waiting":
        format_partitions(db, 0, computer=PARKED["computer_guid"])  # a known computer with no partition
        parked = request(db, title, **{**fields, "sla": PARKED})
        assert parked is not None and parked.partition is None and parked.host_guid is None
        assert "computer_guid=COMP-NOWHERE" in parked.status
    placed = request(db, title, **fields)
    assert placed is not None
    return placed


@pytest.fixture(params=["new", "waiting"])
def arrive(request: pytest.FixtureRequest, db: Database) -> Callable[..., views.InstanceView]:
    return functools.partial(arrive_by, request.param, db)


def test_place_on_a_master_takes_a_supplied_computer(db: Database,
                                                      arrive: Callable[..., views.InstanceView]) -> None:
    format_partitions(db, 2, computer="COMP-A")
    format_partitions(db, 2, computer="COMP-B")
    with db.write() as session:
        supplies.supply(session, USER, "COMP-B", SR, SupplyState.AVAILABLE)
    assert arrive("a", caller=MASTER_USER).computer == "COMP-B"


def test_place_does_not_prefer_a_supply_being_removed(db: Database, arrive: Callable[..., views.InstanceView]) -> None:
    format_partitions(db, 2, computer="COMP-A")
    format_partitions(db, 2, computer="COMP-B")
    with db.write() as session:
        supplies.supply(session, USER, "COMP-B", SR, SupplyState.DESTROYED)
    assert arrive("a").computer == "COMP-A"  # formatting order


def test_place_filters_by_computer_guid(db: Database, arrive: Callable[..., views.InstanceView]) -> None:
    format_partitions(db, 1, computer="COMP-A")
    format_partitions(db, 1, computer="COMP-B")
    pinned = arrive("a", sla={"computer_guid": "COMP-B"})
    assert (pinned.computer, pinned.partition) == ("COMP-B", "slappart0")
    format_partitions(db, 0, computer="COMP-C")
    nowhere = arrive("b", sla={"computer_guid": "COMP-C"})
    assert nowhere.partition is None
    assert nowhere.status == "waiting for a free partition (computer_guid=COMP-C)"


def test_place_serves_a_shared_request_by_instance_guid(db: Database, arrive: Callable[..., views.InstanceView]) -> None:
    format_partitions(db, 3)
    first, second = request(db, "host-1"), request(db, "host-2")
    assert first is not None and second is not None
    assert arrive("front-any", shared=True).host_guid == first.guid  # the oldest host
    chosen = arrive("front-2", shared=True, sla={"instance_guid": second.guid})
    assert (chosen.host_guid, chosen.partition) == (second.guid, second.partition)
    missing = arrive("front-x", shared=True, sla={"instance_guid": "SOFTINST-none"})
    assert missing.host_guid is None
    assert missing.status == f"waiting for a host instance of {SR} (type default; instance_guid=SOFTINST-none)"


def test_child_joins_tree_and_publishing_bumps_requester(db: Database) -> None:
    format_partitions(db, 3)
    root = request(db, "root")
    assert root is not None
    as_root = Caller(computer=COMPUTER, partition=root.partition)
    child = request(db, "child", caller=as_root, parameters={"foo": "from-parent"})
    assert child is not None and child.root_title == "root" and child.requester_guid == root.guid
    before = request(db, "root")
    with db.write() as session:
        lifecycle.set_connection_parameters(
            session, lifecycle.instance_on(session, USER, COMPUTER, child.partition), {"url": "http://x"})
    after = request(db, "root")
    assert before is not None and after is not None and after.timestamp > before.timestamp
    # the same title at root level is another instance (another tree)
    other = request(db, "child")
    assert other is not None and other.guid != child.guid


def test_unknown_acting_partition_is_refused(db: Database) -> None:
    format_partitions(db, 1)
    with pytest.raises(BadAuthorization):
        request(db, "x", caller=Caller(computer=COMPUTER, partition="slappart0"))


def test_stopping_root_stops_tree_and_child_follows_root(db: Database) -> None:
    format_partitions(db, 3)
    root = request(db, "root")
    as_root = Caller(computer=COMPUTER, partition=root.partition)  # type: ignore[union-attr]
    request(db, "child", caller=as_root)
    request(db, "root", state="stopped")
    assert request(db, "child", caller=as_root).requested_state == "stopped"  # type: ignore[union-attr]
    assert request(db, "child", caller=as_root, state="started").requested_state == "stopped"  # type: ignore[union-attr]


def test_destroyed_tree_is_freed_in_one_pass(db: Database) -> None:
    format_partitions(db, 3)
    root = request(db, "root")
    as_root = Caller(computer=COMPUTER, partition=root.partition)  # type: ignore[union-attr]
    request(db, "child", caller=as_root)
    request(db, "front", shared=True)
    destroyed = request(db, "root", state="destroyed")
    assert destroyed is not None and destroyed.requested_state == "destroyed"
    state = computer_state(db)
    busy = [p for p in state.partitions if p.instance is not None]
    assert [p.instance.requested_state for p in busy] == ["destroyed", "destroyed"]  # type: ignore[union-attr]
    with db.write() as session:  # one report pass: the node frees both, in any order
        for partition in reversed(busy):
            lifecycle.free_partition(session, USER, COMPUTER, partition.reference)
    state = computer_state(db)
    assert all(p.state == "free" and p.instance is None for p in state.partitions)
    with db.read() as session:
        titles = list(session.scalars(select(SoftwareInstance.title)))
    assert titles == ["front"]  # the shared one lost its host and waits for another
    again = request(db, "root")
    assert again is not None and again.guid != root.guid and again.partition is not None  # type: ignore[union-attr]


def test_shared_instance_waits_for_host_then_attaches(db: Database) -> None:
    format_partitions(db, 2)
    shared = request(db, "front", shared=True, parameters={"hostname": "a.invalid"})
    assert shared is not None and shared.partition is None and "waiting for a host" in shared.status
    host = request(db, "host")
    shared = request(db, "front", shared=True, parameters={"hostname": "a.invalid"})
    assert shared is not None and shared.partition == host.partition and shared.host_guid == host.guid  # type: ignore[union-attr]
    hosted = [p.instance for p in computer_state(db).partitions if p.instance and p.instance.hosted]
    assert [h.title for h in hosted[0].hosted] == ["front"]  # type: ignore[union-attr]


def test_cannot_free_a_started_instance_or_revive_a_destroyed_one(db: Database) -> None:
    format_partitions(db, 1)
    request(db, "a")
    with pytest.raises(lifecycle.Conflict), db.write() as session:
        lifecycle.free_partition(session, USER, COMPUTER, "slappart0")
    request(db, "a", state="destroyed")
    with pytest.raises(InvalidTransition):
        request(db, "a", state="started")


def test_destroying_unknown_creates_nothing(db: Database) -> None:
    assert request(db, "ghost", state="destroyed") is None
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(SoftwareInstance)) == 0


@pytest.mark.parametrize("fields", [
    {"sr": ""}, {"sr": "relative/software.cfg"}, {"sr": "/opt/../etc/software.cfg"},
    {"sr": "ftp://x.invalid/software.cfg"}, {"state": "bogus"}, {"parameters": ["not", "a", "dict"]},
])
def test_bad_request_stores_nothing(db: Database, fields: dict) -> None:
    format_partitions(db, 1)
    with pytest.raises(ValidationError):
        request(db, "bad", **fields)
    with pytest.raises(ValidationError):
        request(db, "", sr=SR)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(SoftwareInstance)) == 0
    assert computer_state(db).partitions[0].state == "free"


def test_build_reports_and_status(db: Database) -> None:
    format_partitions(db, 1)
    assert request(db, "a").status == f"waiting for the software release to be supplied to {COMPUTER}"  # type: ignore[union-attr]
    with db.write() as session:
        supplies.supply(session, USER, COMPUTER, SR, SupplyState.AVAILABLE)
        supplies.report_build(session, USER, COMPUTER, SR, BuildState.BUILDING)
    assert request(db, "a").status == "software building"  # type: ignore[union-attr]
    with db.write() as session:
        supplies.report_build(session, USER, COMPUTER, SR, BuildState.ERROR, "line\nError: no compiler")
    assert request(db, "a").status.startswith("software failed: line")  # type: ignore[union-attr]
    with db.write() as session:
        supplies.report_build(session, USER, COMPUTER, SR, BuildState.AVAILABLE)
        lifecycle.report_state(session, lifecycle.instance_on(session, USER, COMPUTER, "slappart0"),
                               ReportedState.STARTED)
    assert request(db, "a").status == "started"  # type: ignore[union-attr]


def test_a_changed_request_waits_for_the_node_again(db: Database) -> None:
    """Regression (issue 3): after a parameter change, the node's old "started" made `slapos
    request --wait` return before the node had deployed the change."""
    format_partitions(db, 1)
    with db.write() as session:
        supplies.supply(session, USER, COMPUTER, SR, SupplyState.AVAILABLE)
        supplies.report_build(session, USER, COMPUTER, SR, BuildState.AVAILABLE)
    request(db, "a", parameters={"x": "1"})
    with db.write() as session:
        lifecycle.report_state(session, lifecycle.instance_on(session, USER, COMPUTER, "slappart0"),
                               ReportedState.STARTED)
    same = request(db, "a", parameters={"x": "1"})
    assert same is not None and (same.reported_state, same.status) == ("started", "started")
    changed = request(db, "a", parameters={"x": "2"})
    assert changed is not None and changed.reported_state is None
    assert changed.status == "waiting for the node to deploy it"


def test_shrinking_keeps_busy_partitions(db: Database) -> None:
    format_partitions(db, 3)
    request(db, "a")
    with db.write() as session:
        computers.format_computer(session, USER, COMPUTER, [PartitionSpec("slappart2")])
    refs = [(p.reference, p.state) for p in computer_state(db).partitions]
    assert refs == [("slappart0", "busy"), ("slappart2", "free")]


def test_state_of_a_waiting_instance_can_change(db: Database) -> None:
    request(db, "a")
    stopped = request(db, "a", state="stopped")
    assert stopped is not None and stopped.requested_state == InstanceState.STOPPED.value
    assert request(db, "a", state="destroyed") is not None
    assert request(db, "a") is not None  # destroyed while waiting: gone, so a new request starts over


def test_access_rules_owner_and_tree(db: Database) -> None:
    format_partitions(db, 3)
    mine = request(db, "mine")
    theirs = request(db, "theirs", caller=Caller(owner="someone-else"))
    assert mine is not None and theirs is not None
    with db.read() as session:
        assert instances.get_instance_by_guid(session, USER, mine.guid).title == "mine"
        with pytest.raises(Forbidden):
            instances.get_instance_by_guid(session, USER, theirs.guid)
        as_mine = Caller(computer=COMPUTER, partition=mine.partition)
        assert lifecycle.instance_on(session, as_mine, COMPUTER, mine.partition).title == "mine"
        with pytest.raises(Forbidden):  # a partition reaches its own tree only
            lifecycle.instance_on(session, as_mine, COMPUTER, theirs.partition)
    with pytest.raises(Forbidden), db.write() as session:
        supplies.report_build(session, Caller(owner="someone-else"), COMPUTER, SR, BuildState.BUILDING)
