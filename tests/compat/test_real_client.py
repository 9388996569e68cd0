"""The real slapos.core 1.26.1 `slap` library against Partita (proxy on SQLite, master on PostgreSQL).

Each test sends batches of library calls to the peer's Python (peer_scripts/slap_steps.py) and
asserts here on what the library made of the answers: the objects a node, a recipe and a user see.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.conftest import (
    COMPUTER_ID, PeerClient, format_step, is_free, partition_of, partitions_by_id,
)

pytestmark = pytest.mark.peer

SR = "/opt/partita-compat/hello/software.cfg"
OTHER_SR = "/opt/partita-compat/other/software.cfg"
ROOT_PARAMETERS = {"foo": "bar", "baz": "qux", "greeting": "h\u00e9llo <&> \"x\""}
ROOT_CONNECTION = {"url": "http://127.0.1.1:8080/", "echo-foo": "bar"}
CHILD_CONNECTION = {"url": "http://127.0.1.2:8080/"}
SHARED_CONNECTION = {"slave-url": "http://127.0.1.1:8080/_shared"}


def request(title: str, **fields: Any) -> dict[str, Any]:
    return {"op": "request", "url": fields.pop("url", SR), "title": title, **fields}


def computer() -> dict[str, Any]:
    return {"op": "computer", "computer_id": COMPUTER_ID}


def raw_request_form(title: str, parameter_xml: str) -> dict[str, str]:
    """The form `OpenOrder.request` posts (§2.5), for raw HTTP checks."""
    return {
        "software_release": SR, "partition_reference": title, "software_type": "default",
        "partition_parameter_xml": parameter_xml, "filter_xml": '<marshal><dictionary id="i2"/></marshal>',
        "state": "<marshal><none/></marshal>", "shared_xml": "<marshal><bool>0</bool></marshal>",
    }


def timestamp(partition: dict[str, Any]) -> float:
    return float(partition["_parameter_dict"]["timestamp"])


def test_instance_tree_lifecycle(client: PeerClient) -> None:
    # Format 4 partitions, supply, request a root instance (twice: idempotent).
    _, supplied, first, again, before = client.ok(
        format_step(4),
        {"op": "supply", "url": SR, "computer_id": COMPUTER_ID},
        request("root", parameters=ROOT_PARAMETERS),
        request("root", parameters=ROOT_PARAMETERS),
        computer(),
    )
    assert supplied is None
    answer = first["answer"]
    assert answer["__class__"] == "ComputerPartition"
    assert answer["slap_computer_id"] == COMPUTER_ID
    root_pid = answer["slap_computer_partition_id"]
    assert root_pid in {f"slappart{i}" for i in range(4)}
    assert first["getId"] == {"ok": root_pid}
    assert first["getState"] == {"ok": "started"}
    root_guid = first["getInstanceGuid"]["ok"]
    assert isinstance(root_guid, str) and root_guid
    assert {k: v for k, v in answer["_parameter_dict"].items() if k != "timestamp"} == ROOT_PARAMETERS
    assert answer["_connection_dict"] == {}
    assert answer["slap_software_release_url"] == SR
    assert answer["slap_software_type"] == "default"
    assert [tuple(ip) for ip in answer["ip_list"]] == [
        ("slaptap" + root_pid[len("slappart"):], f"127.0.1.{int(root_pid[len('slappart'):]) + 1}"),
        ("slaptap" + root_pid[len("slappart"):], "::1"),
    ]
    # Idempotent: the same partition, guid and timestamp.
    assert again["answer"]["slap_computer_partition_id"] == root_pid
    assert again["getInstanceGuid"] == {"ok": root_guid}
    assert again["answer"]["_parameter_dict"]["timestamp"] == answer["_parameter_dict"]["timestamp"]

    # getFullComputerInformation as the node sees it.
    assert before["software_releases"] == [{"url": SR, "state": "available", "computer": COMPUTER_ID}]
    partitions = partitions_by_id(before)
    assert sorted(partitions) == [f"slappart{i}" for i in range(4)]
    root = partitions[root_pid]
    assert root["_requested_state"] == "started"
    assert root["_instance_guid"] == root_guid
    assert root["_software_release_document"]["_software_release"] == SR
    parameters = root["_parameter_dict"]
    for key, value in ROOT_PARAMETERS.items():
        assert parameters[key] == value
    assert parameters["instance_title"] == "root"
    assert parameters["root_instance_title"] == "root"
    assert parameters["slap_computer_id"] == COMPUTER_ID
    assert parameters["slap_computer_partition_id"] == root_pid
    assert parameters["slap_software_release_url"] == SR
    assert parameters["slap_software_type"] == "default"
    assert parameters["slave_instance_list"] == []
    assert parameters["timestamp"] == answer["_parameter_dict"]["timestamp"]
    assert [tuple(ip) for ip in parameters["ip_list"]] == [tuple(ip) for ip in answer["ip_list"]]
    assert all(is_free(p) for pid, p in partitions.items() if pid != root_pid)

    # A child requested by the root partition, and a shared instance pinned to the root.
    child, shared, with_child = client.ok(
        request("child0", parameters={"foo": "from-parent"}, **{"as": [COMPUTER_ID, root_pid]}),
        request("shared", parameters={"hostname": "example.invalid"}, shared=True,
                filter={"instance_guid": root_guid}),
        computer(),
    )
    child_pid = child["answer"]["slap_computer_partition_id"]
    assert child_pid not in (root_pid, None)
    assert child["getState"] == {"ok": "started"}
    child_guid = child["getInstanceGuid"]["ok"]
    assert child_guid != root_guid
    shared_answer = shared["answer"]
    assert shared_answer["slap_computer_partition_id"] == root_pid  # the host
    assert shared_answer["_connection_dict"] == {}
    assert shared_answer["_parameter_dict"].get("hostname") == "example.invalid"
    partitions = partitions_by_id(with_child)
    child_parameters = partitions[child_pid]["_parameter_dict"]
    assert child_parameters["foo"] == "from-parent"
    assert child_parameters["instance_title"] == "child0"
    assert child_parameters["root_instance_title"] == "root"
    assert partitions[child_pid]["_requested_state"] == "started"
    slaves = partitions[root_pid]["_parameter_dict"]["slave_instance_list"]
    assert len(slaves) == 1, slaves
    slave = slaves[0]
    assert slave["hostname"] == "example.invalid"
    assert slave["slap_software_type"] == "default"
    assert slave["slave_title"] and slave["slave_reference"]
    # Hosting a new shared instance is a change for the host's node.
    assert timestamp(partitions[root_pid]) > timestamp(root)

    # The root publishes, for itself and for its shared instance; then the child publishes,
    # which bumps its requester (the root) so that the root is reprocessed.
    _, _, after_root = client.ok(
        {"op": "publish", "as": [COMPUTER_ID, root_pid], "parameters": ROOT_CONNECTION},
        {"op": "publish", "as": [COMPUTER_ID, root_pid], "parameters": SHARED_CONNECTION,
         "slave_reference": slave["slave_reference"]},
        computer(),
    )
    _, after_child = client.ok(
        {"op": "publish", "as": [COMPUTER_ID, child_pid], "parameters": CHILD_CONNECTION},
        computer(),
    )
    root_before, root_after = partitions_by_id(after_root)[root_pid], partitions_by_id(after_child)[root_pid]
    assert root_before["_connection_dict"] == ROOT_CONNECTION
    assert timestamp(root_after) > timestamp(root_before), "child's publication did not bump the root"
    assert partitions_by_id(after_child)[child_pid]["_connection_dict"] == CHILD_CONNECTION

    # Read back: through a new request (user and partition), and through registerComputerPartition.
    root_again, child_again, shared_again, root_info, child_info = client.ok(
        request("root", parameters=ROOT_PARAMETERS),
        request("child0", parameters={"foo": "from-parent"}, **{"as": [COMPUTER_ID, root_pid]}),
        request("shared", parameters={"hostname": "example.invalid"}, shared=True,
                filter={"instance_guid": root_guid}),
        {"op": "partition", "as": [COMPUTER_ID, root_pid]},
        {"op": "partition", "as": [COMPUTER_ID, child_pid]},
    )
    assert root_again["answer"]["_connection_dict"] == ROOT_CONNECTION
    assert root_again["answer"]["slap_computer_partition_id"] == root_pid
    assert child_again["answer"]["_connection_dict"] == CHILD_CONNECTION
    assert child_again["answer"]["slap_computer_partition_id"] == child_pid
    assert shared_again["answer"]["_connection_dict"] == SHARED_CONNECTION
    assert root_info["getConnectionParameterDict"] == {"ok": ROOT_CONNECTION}
    assert root_info["getState"] == {"ok": "started"}
    assert root_info["getInstanceGuid"] == {"ok": root_guid}
    assert root_info["getSoftwareRelease"] == {"ok": SR}
    assert root_info["getType"] == {"ok": "default"}
    assert root_info["getInstanceParameterDict"]["ok"]["foo"] == "bar"
    assert child_info["getConnectionParameterDict"] == {"ok": CHILD_CONNECTION}
    assert child_info["getInstanceParameterDict"]["ok"]["root_instance_title"] == "root"
    tree_addresses = root_info["getFullHostingIpAddressList"]["ok"]       # what a node's firewall reads
    assert child_info["getFullHostingIpAddressList"] == {"ok": tree_addresses}
    assert sorted(map(tuple, tree_addresses)) == sorted(
        map(tuple, root_again["answer"]["ip_list"] + child_again["answer"]["ip_list"]))

    # A promise bangs the child: the whole tree is to be reprocessed.
    _, banged = client.ok({"op": "bang", "as": [COMPUTER_ID, child_pid], "message": "promise failed"}, computer())
    partitions = partitions_by_id(banged)
    assert timestamp(partitions[root_pid]) > timestamp(root_after)
    assert timestamp(partitions[child_pid]) > timestamp(partitions_by_id(after_child)[child_pid])
    root_banged = partitions[root_pid]

    # The shared instance is destroyed: its host no longer lists it, and is reprocessed.
    _, unshared = client.ok(
        request("shared", parameters={"hostname": "example.invalid"}, shared=True,
                filter={"instance_guid": root_guid}, state="destroyed"),
        computer(),
    )
    root_unshared = partitions_by_id(unshared)[root_pid]
    assert root_unshared["_parameter_dict"]["slave_instance_list"] == []
    assert timestamp(root_unshared) > timestamp(root_banged)

    # Stop the root.
    stopped, stopped_computer = client.ok(request("root", parameters=ROOT_PARAMETERS, state="stopped"), computer())
    assert stopped["answer"]["_requested_state"] == "stopped"
    assert stopped["getState"] == {"ok": "stopped"}
    root_stopped = partitions_by_id(stopped_computer)[root_pid]
    assert root_stopped["_requested_state"] == "stopped"
    assert timestamp(root_stopped) > timestamp(root_unshared)

    # Destroy the root: the whole tree is to be destroyed; the node reports the partitions
    # destroyed (root first, as `slapos node report` does), which frees them all.
    destroyed, destroying = client.ok(request("root", parameters=ROOT_PARAMETERS, state="destroyed"), computer())
    assert destroyed["answer"]["_requested_state"] == "destroyed"
    partitions = partitions_by_id(destroying)
    assert partitions[root_pid]["_requested_state"] == "destroyed"
    assert partitions[child_pid]["_requested_state"] == "destroyed"
    assert not is_free(partitions[root_pid]) and not is_free(partitions[child_pid])
    _, _, freed = client.ok(
        {"op": "report", "as": [COMPUTER_ID, root_pid], "state": "destroyed"},
        {"op": "report", "as": [COMPUTER_ID, child_pid], "state": "destroyed"},
        computer(),
    )
    partitions = partitions_by_id(freed)
    assert sorted(partitions) == [f"slappart{i}" for i in range(4)]
    assert all(is_free(p) for p in partitions.values()), partitions

    # A new request gets a fresh instance on a free partition.
    (fresh,) = client.ok(request("root", parameters={"foo": "new"}))
    assert fresh["getInstanceGuid"]["ok"] != root_guid
    assert fresh["answer"]["_connection_dict"] == {}
    assert fresh["getState"] == {"ok": "started"}


def test_what_a_partition_no_longer_requests_is_destroyed(client: PeerClient) -> None:
    """`setComputerPartitionRelatedInstanceList`, which slapgrid calls after a successful pass with
    the titles the partition requested in it: the children it no longer requests are destroyed."""
    _, _, root, _, _, listed = client.ok(
        format_step(3),
        {"op": "supply", "url": SR, "computer_id": COMPUTER_ID},
        request("root"),
        request("keep", **{"as": [COMPUTER_ID, "slappart0"]}),
        request("drop", **{"as": [COMPUTER_ID, "slappart0"]}),
        computer(),
    )
    assert root["getId"] == {"ok": "slappart0"}
    keep, drop = partition_of(listed, "keep")["_partition_id"], partition_of(listed, "drop")["_partition_id"]
    done, after = client.ok({"op": "related", "as": [COMPUTER_ID, "slappart0"], "titles": ["keep"]}, computer())
    assert done is None
    partitions = partitions_by_id(after)
    assert partitions[keep]["_requested_state"] == "started"
    assert partitions[drop]["_requested_state"] == "destroyed"
    assert partitions["slappart0"]["_requested_state"] == "started"


def test_request_without_free_partition_waits_then_is_allocated(client: PeerClient) -> None:
    results = client.ok(
        format_step(2),
        {"op": "supply", "url": SR, "computer_id": COMPUTER_ID},
        request("w0"), request("w1"),
        request("w2", parameters={"n": "2"}),
        request("w3", parameters={"n": "3"}),
    )
    w2, w3 = results[4], results[5]
    # The real client turns 408 into a partition-less object whose getters raise ResourceNotReady.
    for waiting in (w2, w3):
        assert waiting["answer"].get("_partition_id") is None
        assert waiting["getId"]["error"] == "ResourceNotReady"
        assert waiting["getState"]["error"] == "ResourceNotReady"
    # On the wire it is HTTP 408, again and again while nothing is free.
    form = raw_request_form(
        "w2", '<marshal><dictionary id="i2"><string>n</string><string>2</string></dictionary></marshal>')
    (raw,) = client.ok({"op": "raw", "method": "POST", "path": "requestComputerPartition", "data": form})
    assert raw["status"] == 408, raw

    # One more partition: the oldest waiting request (w2) gets it, w3 still waits.
    _, w2_now, w3_now, listed = client.ok(
        format_step(3), request("w2", parameters={"n": "2"}), request("w3", parameters={"n": "3"}), computer(),
    )
    assert w2_now["getId"] == {"ok": "slappart2"}
    assert w2_now["getState"] == {"ok": "started"}
    assert w3_now["getId"]["error"] == "ResourceNotReady"
    assert partition_of(listed, "w2")["_partition_id"] == "slappart2"
    assert partitions_by_id(listed)["slappart2"]["_parameter_dict"]["n"] == "2"

    # Freeing a partition allocates the next waiting request.
    w0_pid = partition_of(listed, "w0")["_partition_id"]
    _, _, w3_later = client.ok(
        request("w0", state="destroyed"),
        {"op": "report", "as": [COMPUTER_ID, w0_pid], "state": "destroyed"},
        request("w3", parameters={"n": "3"}),
    )
    assert w3_later["getId"] == {"ok": w0_pid}
    assert w3_later["answer"]["_parameter_dict"]["n"] == "3"


def test_a_partitions_ipv6_range_reaches_the_node_and_the_recipe(client: PeerClient) -> None:
    """slapos format's ipv6_range of a partition (issue 13) is stored, and the real library sees it
    in that partition's parameters, in the shape of the partition's .slapos-resource."""
    ranged = "2001:db8::1:0/112"
    _, _, first, second, listed, seen = client.ok(
        {"op": "format", "computer_id": COMPUTER_ID,
         "partitions": [["slappart0", "127.0.1.1", ranged], ["slappart1", "127.0.1.2"]]},
        {"op": "supply", "url": SR, "computer_id": COMPUTER_ID},
        request("ranged"), request("plain"), computer(),
        {"op": "partition", "as": [COMPUTER_ID, "slappart0"]},
    )
    assert (first["getId"], second["getId"]) == ({"ok": "slappart0"}, {"ok": "slappart1"})
    expected = {"addr": "2001:db8::1:0", "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:0", "network": ranged,
                "prefixlen": 112}
    partitions = partitions_by_id(listed)
    assert partitions["slappart0"]["_parameter_dict"]["ipv6_range"] == expected
    assert "ipv6_range" not in partitions["slappart1"]["_parameter_dict"]
    assert seen["getInstanceParameterDict"]["ok"]["ipv6_range"] == expected


def test_errors_the_client_understands(client: PeerClient) -> None:
    client.ok(format_step(1))
    (unknown_computer, bad_authorization, bad_publish, unknown_partition, wrong_method, empty_form,
     bad_xml) = client.steps(
        {"op": "computer", "computer_id": "COMP-does-not-exist"},
        request("intruder", **{"as": [COMPUTER_ID, "slappart99"]}),
        {"op": "publish", "as": [COMPUTER_ID, "slappart99"], "parameters": {"a": "b"}},
        {"op": "partition", "as": [COMPUTER_ID, "slappart99"]},
        {"op": "raw", "method": "GET", "path": "requestComputerPartition"},
        {"op": "raw", "method": "POST", "path": "requestComputerPartition", "data": {}},
        {"op": "raw", "method": "POST", "path": "requestComputerPartition",
         "data": raw_request_form("x", "<marshal><dictionary")},
    )
    assert wrong_method["ok"]["status"] == 405, wrong_method
    assert empty_form["ok"]["status"] == 400, empty_form
    assert bad_xml["ok"]["status"] == 400, bad_xml
    assert unknown_computer.get("error") == "NotFoundError", unknown_computer
    # An Authorization header naming an unknown partition: HTTP 400 (requests.HTTPError).
    assert bad_authorization.get("status") == 400, bad_authorization
    assert bad_authorization.get("error") == "HTTPError"
    assert bad_publish.get("status") == 400, bad_publish
    # registerComputerPartition of an unknown partition (a GET: 1.26.1 sends no Authorization).
    fetched = unknown_partition["ok"]["getState"]
    assert fetched.get("error") == "NotFoundError", fetched


def test_supply_remove_and_node_reports(client: PeerClient) -> None:
    _, _, _, listed, _, after, first = client.ok(
        format_step(2),
        {"op": "supply", "url": SR, "computer_id": COMPUTER_ID},
        {"op": "supply", "url": OTHER_SR, "computer_id": COMPUTER_ID},
        computer(),
        {"op": "supply", "url": OTHER_SR, "computer_id": COMPUTER_ID, "state": "destroyed"},
        computer(),
        request("reported"),
    )
    assert sorted((r["url"], r["state"]) for r in listed["software_releases"]) == sorted(
        [(SR, "available"), (OTHER_SR, "available")])
    assert sorted((r["url"], r["state"]) for r in after["software_releases"]) == sorted(
        [(SR, "available"), (OTHER_SR, "destroyed")])

    # What slapgrid reports for software releases and partitions is answered 2xx; once the node
    # has removed a software release, it is no longer listed.
    pid = first["answer"]["slap_computer_partition_id"]
    answers = client.steps(
        {"op": "report", "as": [COMPUTER_ID, pid], "state": "started"},
        {"op": "report", "as": [COMPUTER_ID, pid], "state": "stopped"},
        *({"op": "raw", "method": "POST", "path": path, "data": {"url": SR, "computer_id": COMPUTER_ID}}
          for path in ("buildingSoftwareRelease", "availableSoftwareRelease")),
        {"op": "raw", "method": "POST", "path": "softwareReleaseError",
         "data": {"url": SR, "computer_id": COMPUTER_ID, "error_log": "it failed"}},
        {"op": "raw", "method": "POST", "path": "softwareInstanceError",
         "data": {"computer_id": COMPUTER_ID, "computer_partition_id": pid, "error_log": "boom"}},
        {"op": "raw", "method": "POST", "path": "useComputer",
         "data": {"computer_id": COMPUTER_ID, "use_string": ""}},
        {"op": "raw", "method": "POST", "path": "destroyedSoftwareRelease",
         "data": {"url": OTHER_SR, "computer_id": COMPUTER_ID}},
        computer(),
    )
    assert "ok" in answers[0] and "ok" in answers[1], answers[:2]
    for answer in answers[2:-1]:
        assert 200 <= answer["ok"]["status"] < 300, answer
    assert [r["url"] for r in answers[-1]["ok"]["software_releases"]] == [SR]
