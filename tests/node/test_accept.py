"""What the node accepts from the master (issue 10): partition ids and software release URLs.

Pure checks first (`node.accept`), then a real node told by its master to build and deploy a
release inside a partition's tree: it refuses, says why as the instance's status, and touches
nothing.
"""
from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from partita.node.accept import Acceptance, partition_problem, release_problem, screen
from partita.slap.wire.instance import NodeInstanceDocument
from partita.slap.wire.node_state import ComputeNodeState, ComputePartition, SoftwareInstallation
from tests.support.node import HELLO_WEB, NodeEnv

ALLOWED = Acceptance(frozenset({"slappart0", "slappart1"}), PurePosixPath("/srv/slapgrid"),
                     PurePosixPath("/opt/slapgrid"))


@pytest.mark.parametrize("pid", ["slappart0", "slappart1"])
def test_own_partitions_are_accepted(pid: str) -> None:
    assert partition_problem(pid, ALLOWED) is None


@pytest.mark.parametrize("pid", ["slappart2", "../slappart0", "slappart0/..", ".", "..", "", "a/b",
                                 "slappart0\n", "/etc", ".slappart0"])
def test_other_partition_ids_are_refused(pid: str) -> None:
    problem = partition_problem(pid, ALLOWED)
    assert problem and problem.startswith("the node refuses partition id")


@pytest.mark.parametrize("url", ["https://lab.example.org/hello/software.cfg", "http://h/x.cfg",
                                 "/home/me/sr/software.cfg", "file:///home/me/sr/software.cfg",
                                 str(HELLO_WEB)])
def test_ordinary_releases_are_accepted(url: str) -> None:
    assert release_problem(url, ALLOWED) is None


@pytest.mark.parametrize("url, why", [
    ("ftp://h/x.cfg", "only http, https"),
    ("relative/software.cfg", "only http, https"),
    ("file://host/x.cfg", "file:///absolute"),
    ("https:///x.cfg", "no host"),
    ("/home/me/../../etc/x.cfg", "not normalised"),
    ("/home//me/x.cfg", "not normalised"),
    ("/srv/slapgrid/slappart1/evil.cfg", "instance_root"),
    ("file:///opt/slapgrid/0123/software.cfg", "software_root"),
    ("https://h/x.cfg\n[buildout]\nparts = evil", "whitespace"),
    ("https://h/${buildout:directory}.cfg", "'${'"),
    ("https://h/" + "a" * 3000, "longer than"),
    ("", "empty"),
])
def test_dangerous_releases_are_refused(url: str, why: str) -> None:
    problem = release_problem(url, ALLOWED)
    assert problem and why in problem and "\n" not in problem


def test_configured_roots_bound_local_releases() -> None:
    roots = Acceptance(ALLOWED.partition_ids, ALLOWED.instance_root, ALLOWED.software_root,
                       (PurePosixPath("/opt/releases"),))
    assert release_problem("/opt/releases/hello/software.cfg", roots) is None
    assert release_problem("https://h/x.cfg", roots) is None
    problem = release_problem("/opt/releases-evil/software.cfg", roots)
    assert problem and "allowed_software_roots" in problem
    assert "allowed_software_roots" in (release_problem("/home/me/software.cfg", roots) or "")


def _instance(guid: str, url: str, state: str = "started") -> NodeInstanceDocument:
    return NodeInstanceDocument(
        title=guid, instance_guid=guid, software_release_uri=url, software_type="default", state=state,
        connection_parameters={}, parameters={}, shared=False, root_instance_title=guid, ip_list=(),
        full_ip_list=(), sla_parameters={}, computer_guid="C", compute_partition_id=None,
        processing_timestamp=0, access_status_message="", status_reason="", reported_state=None,
        timestamp=1.0, shared_instance_list=())


def test_screen_keeps_what_is_accepted_and_names_the_rest() -> None:
    state = ComputeNodeState("C", 1, (
        SoftwareInstallation("https://h/ok.cfg", "available", None),
        SoftwareInstallation("/srv/slapgrid/slappart0/evil.cfg", "available", None),
    ), (
        ComputePartition("slappart0", "busy", (), _instance("g0", "https://h/ok.cfg")),
        ComputePartition("slappart1", "busy", (), _instance("g1", "/opt/slapgrid/x/evil.cfg")),
        ComputePartition("../etc", "busy", (), _instance("g2", "https://h/ok.cfg")),
        ComputePartition("slappart9", "free", (), None),
    ))
    kept, refusals = screen(state, ALLOWED)
    assert [s.software_release_uri for s in kept.software_installation_list] == ["https://h/ok.cfg"]
    assert [p.compute_partition_id for p in kept.compute_partition_list] == ["slappart0"]
    assert [(r.kind, r.key) for r in refusals] == [
        ("software", "/srv/slapgrid/slappart0/evil.cfg"), ("instance", "g1"), ("instance", "g2")]
    destroyed = ComputeNodeState("C", 2, (), (
        ComputePartition("slappart1", "busy", (), _instance("g1", "/opt/slapgrid/x/evil.cfg", "destroyed")),))
    kept, refusals = screen(destroyed, ALLOWED)  # its partition is still freed when asked
    assert len(kept.compute_partition_list) == 1 and not refusals


@pytest.mark.root
def test_a_node_refuses_a_release_inside_a_partition_and_says_why() -> None:
    env = NodeEnv(partitions=1)
    try:
        env.format()
        planted = env.root / "srv" / "slappart0-profile" / "software.cfg"  # inside instance_root
        env.client.supply("local_computer", str(planted))
        doc = env.client.request_instance("evil", str(planted))
        env.software(check=False)
        env.instance(check=False)
        info = env.info("evil")
        assert "the node refuses software release" in info["status_reason"], info
        assert "instance_root" in info["status_reason"]
        pid = doc["compute_partition_id"]
        assert not (env.partition_path(pid) / "buildout.cfg").exists()  # nothing was deployed
        built = [p.name for p in (env.root / "soft").iterdir() if not p.name.startswith(".")]
        assert built == []  # nor built
    finally:
        env.close()
