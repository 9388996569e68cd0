"""`node.unformat`'s planning (pure): what it removes, what it keeps and why; its refusal; what
it prints. And `node.made`, the record of what format created. The real command is in
test_unformat_root.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from partita.node import made
from partita.node.errors import SetupError
from partita.node.claims import Claim, Record
from partita.node.network import InterfaceAddress
from partita.node.unformat import Facts, Outcome, Plan, Running, blocker, describe, plan, what_runs

ROOT = "/srv/node"
NETNS = 4026531840


def facts(**overrides: Any) -> Facts:
    record = Record(NETNS, "eth0", ("10.0.1.1", "10.0.1.2", "fd00::1:1", "10.9.9.9", "fd00::5"), "fd00::/64",
                    ranges={"slappart0": "fd00:0:0:0:1::/80", "slappart1": "fd00:0:0:0:2::/80"},
                    ipv6_base="fd00::5")
    values: dict[str, Any] = dict(
        instance_root=ROOT, partition_base_name="slappart", ipv4_network="10.0.1.0/24",
        entries={"slappart0": "dir", "slappart1": "dir", "slappart2": "link", "etc": "dir", "var": "dir",
                 "sv.sock": "file", ".slapos-format.lock": "file", ".slapos-addresses": "file",
                 ".slapos-made": "file"},
        record=record, netns=NETNS,
        present=(InterfaceAddress("10.0.1.1", 24, 4), InterfaceAddress("10.0.1.2", 24, 4),
                 InterfaceAddress("fd00::1:1", 64, 6), InterfaceAddress("10.9.9.9", 8, 4),
                 InterfaceAddress("fd00::5", 64, 6)),
        routes=frozenset({"fd00::1:0:0:0/80"}),  # as `network.local_routes` gives it
        claims_here={"10.0.1.1": Claim("10.0.1.1", ROOT, NETNS, "o", "l", "eth0"),
                     "10.0.1.2": Claim("10.0.1.2", "/srv/other", NETNS, "o", "l", "eth0")},
        made=made.Made(users=("slapsoft", "u0", "u1"), created_users=("slapsoft", "u0", "u1"),
                       created_groups=("slapsoft", "u0", "u1"), directories=(ROOT,)),
        existing_users=frozenset({"root", "slapsoft", "u0", "u1", "v0"}),
        members={"root": frozenset({"root"}), "slapsoft": frozenset({"slapsoft", "u0", "u1"}),
                 "u0": frozenset({"u0"}), "u1": frozenset({"u1"}), "v0": frozenset({"v0"})},
        software_root="/opt/node", software_root_exists=True)
    values.update(overrides)
    return Facts(**values)


def test_the_plan_removes_what_format_made_and_nothing_else() -> None:
    result = plan(facts())
    assert result.partitions == ["slappart0", "slappart1"]  # a link named like one is not a partition
    assert result.files == [".slapos-format.lock", "etc", "sv.sock", "var",
                            ".slapos-addresses", ".slapos-made"]  # the records last
    # 10.0.1.2: another node claims it now; 10.9.9.9: outside the node's networks; fd00::5: the
    # interface's own (the IPv6 prefix's base)
    assert (result.interface, result.addresses) == ("eth0", [("10.0.1.1", 24), ("fd00::1:1", 64)])
    assert "kept 10.0.1.2 on eth0 (claimed by the node of /srv/other)" in result.kept
    assert result.routes == ["fd00::1:0:0:0/80"]  # the other range is not routed any more
    assert [claim.address for claim in result.claims] == ["10.0.1.1"]
    assert result.users == ["u0", "u1", "slapsoft"]  # the software user (its group's members) last
    assert result.groups == ["slapsoft", "u0", "u1"]
    assert "kept in /srv/node: slappart2 (not the node's)" in result.kept
    assert result.instance_root == ""  # it still holds slappart2
    assert result.software_root == ""
    assert any(line.startswith("kept software_root /opt/node") for line in result.kept)


def test_users_another_node_needs_are_kept() -> None:
    members = {**facts().members, "slapsoft": frozenset({"slapsoft", "u0", "u1", "v0"})}
    result = plan(facts(members=members))  # v0, another node's partition user, is in slapsoft's group
    assert result.users == ["u0", "u1"] and result.groups == ["u0", "u1"]
    assert "kept user slapsoft (its group stays: the group of v0, who stay)" in result.kept
    result = plan(facts(used_elsewhere=frozenset({"u1"})))  # u1 is in another node's record
    assert result.users == ["u0"] and result.groups == ["u0"]
    assert "kept user u1 (another node uses it)" in result.kept
    assert "kept user slapsoft (its group stays: the group of u1, who stay)" in result.kept


def test_only_what_format_created_is_deleted() -> None:
    before = made.Made(users=("slapsoft", "u0"), created_users=("u0",), created_groups=())
    result = plan(facts(made=before))  # u0's group was there before: userdel would delete it
    assert result.users == [] and result.groups == []
    assert "kept user u0 (its group u0 was there before format)" in result.kept
    assert plan(facts(made=None)).users == []  # no record: nobody is deleted
    gone = plan(facts(existing_users=frozenset({"root"}), members={"root": frozenset({"root"})}))
    assert (gone.users, gone.groups) == ([], [])  # deleted already: idempotent


def test_a_record_of_another_namespace_plans_no_network_change() -> None:
    result = plan(facts(netns=NETNS + 1))
    assert (result.addresses, result.routes, result.claims) == ([], [], [])


def test_the_instance_root_goes_when_format_made_it_and_it_holds_only_the_nodes() -> None:
    entries = {name: kind for name, kind in facts().entries.items() if name != "slappart2"}
    assert plan(facts(entries=entries)).instance_root == ROOT
    assert plan(facts(entries=entries, made=made.Made())).instance_root == ""


def test_all_removes_software_root_but_not_a_toolchain_outside_it() -> None:
    result = plan(facts(software_root_made=True, outside=(("toolchain_directory", "/opt/shared-toolchain"),)),
                  everything=True)
    assert (result.software_root, result.software_root_whole) == ("/opt/node", True)
    assert "kept toolchain_directory /opt/shared-toolchain (outside software_root: another node may share it)" \
        in result.kept


def test_blocker_names_what_runs() -> None:
    assert blocker(Running(False), "/srv/node/sv.sock") is None
    many = tuple((pid, "u0") for pid in range(100, 107))
    assert blocker(Running(True, many), "/srv/node/sv.sock") == (
        "the node's supervisord is running (socket /srv/node/sv.sock); processes of the node's users run: "
        "100 (u0), 101 (u0), 102 (u0), 103 (u0), 104 (u0) and 2 more: stop them first, or run slapos node "
        "unformat --stop")


def test_what_runs_is_said_by_dry_run() -> None:
    running = Running(True, ((100, "u0"),))
    assert what_runs(running, "/s") == ["the node's supervisord is running (socket /s)",
                                        "processes of the node's users run: 100 (u0)"]
    assert what_runs(Running(False), "/s") == []


def test_describe() -> None:
    assert describe(Outcome(Plan())) == ["nothing to remove: this node is not formatted here"]
    lines = describe(Outcome(plan(facts()), dry_run=True))
    assert lines[:2] == ["would remove partition slappart0", "would remove partition slappart1"]
    assert "would remove address 10.0.1.1/24 from eth0" in lines
    assert "would remove route local fd00::1:0:0:0/80 dev lo" in lines


def test_made_record_adds_up_across_formats() -> None:
    first = made.merge(None, ["slapsoft", "u0", "u1"], ["u0", "u1"], ["u0", "u1"], ["/srv/node"])
    second = made.merge(first, ["slapsoft", "u0"], ["slapsoft"], ["slapsoft"])
    assert second == made.Made(users=("slapsoft", "u0"), created_users=("slapsoft", "u0", "u1"),
                               created_groups=("slapsoft", "u0", "u1"), directories=("/srv/node",))
    assert made.parse(made.render(second)) == second
    assert made.parse("not json") is None and made.parse('{"users": 3}') is None


def test_a_shared_software_user_goes_with_the_last_node_that_uses_it() -> None:
    # this node found slapsoft (another node's format created it, noted machine-wide)
    found = made.Made(users=("slapsoft", "u0", "u1"), created_users=("u0", "u1"), created_groups=("u0", "u1"))
    alone = plan(facts(made=found, machine_users=frozenset({"slapsoft"}), machine_groups=frozenset({"slapsoft"})))
    assert alone.users == ["u0", "u1", "slapsoft"] and alone.groups == ["slapsoft", "u0", "u1"]
    members = {**facts().members, "slapsoft": frozenset({"slapsoft", "u0", "u1", "v0"})}
    shared = plan(facts(made=found, members=members, machine_users=frozenset({"slapsoft"}),
                        machine_groups=frozenset({"slapsoft"})))
    assert shared.users == ["u0", "u1"]  # v0, of the node that created it, is still in its group
    assert plan(facts(made=found)).users == ["u0", "u1"]  # not noted as made by a node: kept


@pytest.mark.root
def test_the_machines_list_of_what_nodes_created(tmp_path: Path) -> None:
    directory = tmp_path / "created"
    made.note_created({"user.slapsoft": 1001, "group.slapsoft": 1002}, directory)
    assert made.machine_created(directory) == {"user.slapsoft": 1001, "group.slapsoft": 1002}
    made.forget_created(["user.slapsoft"], directory)
    assert made.machine_created(directory) == {"group.slapsoft": 1002}
    directory.chmod(0o755)  # readable by others: not trusted
    assert made.machine_created(directory) == {}
    with pytest.raises(SetupError, match="must be root's with mode 0700"):
        made.note_created({"user.x": 1}, directory)
