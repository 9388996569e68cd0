"""The SLAP XML adapter through Flask's test client, on SQLite and PostgreSQL (the `db` fixture).

Each scenario talks to the routes the way the real slapos.core 1.26.1 client, `slapos request` and
slapgrid do (form-encoded, xml_marshaller values, the X-SlapPartition header); every bad-input case
checks its status and that nothing changed (an uncached getFullComputerInformation and the
computer generations are compared before and after).
"""
from __future__ import annotations

import sys
import threading
import types
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from partita.master.api.slap_xml import routes
from partita.master.api.slap_xml.computer_cache import ComputerCache
from partita.master.api.slap_xml.instance_xml import dict_to_instance_xml
from partita.master.api.slap_xml.marshal import MarshalObject, dumps, loads
from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.db.models import Computer, SoftwareInstance
from partita.master.settings import AppSettings

SR = "/srv/software/hello/software.cfg"
OTHER_SR = "https://example.invalid/other/software.cfg"
COMPUTER = "local_computer"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def header(partition: str, computer: str = COMPUTER) -> dict[str, str]:
    return {"Authorization": f"X-SlapPartition computer_id={computer}, computer_partition_id={partition}"}


def computer_dict(count: int, reference: str = COMPUTER, start: int = 0) -> dict[str, Any]:
    """What `slapos node format` sends (only the keys that matter, plus some it also sends)."""
    return {
        "reference": reference, "address": "127.0.0.1", "netmask": "255.0.0.0", "interface": None,
        "instance_root": "/srv/slapgrid", "partition_has_ipv6_range": True,
        "partition_list": [{
            "reference": f"slappart{i}", "path": f"/srv/slapgrid/slappart{i}",
            "address_list": [{"addr": f"127.0.1.{i + 1}", "netmask": "255.0.0.0"},
                             {"addr": "::1", "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}],
            "tap": {"ipv4_addr": "", "name": f"slaptap{i}"}, "tun": None,
            "external_storage_list": [], "ipv6_range": {},
        } for i in range(start, count)],
    }


def format_computer(client: FlaskClient, count: int, reference: str = COMPUTER) -> None:
    answer = client.post("/loadComputerConfigurationFromXML", data={"xml": dumps(computer_dict(count, reference))})
    assert (answer.status_code, answer.text) == (200, "done\n")


def supply(client: FlaskClient, url: str = SR, state: str = "available", computer: str = COMPUTER) -> None:
    answer = client.post("/supplySupply", data={"url": url, "computer_id": computer, "state": state})
    assert answer.status_code == 200, answer.text


def request_form(title: str, parameters: dict | None = None, state: str | None = None,
                 shared: bool = False, sla: dict | None = None, sr: str = SR,
                 software_type: str = "default", **extra: str) -> dict[str, Any]:
    return {
        "software_release": sr, "partition_reference": title,
        "partition_parameter_xml": dumps(parameters or {}), "filter_xml": dumps(sla or {}),
        "software_type": software_type, "state": dumps(state), "shared_xml": dumps(shared), **extra,
    }


def request(client: FlaskClient, title: str, partition: str | None = None, **kw: Any) -> MarshalObject:
    """A request as `slapos request` (or, with `partition`, as a recipe inside it) sends it."""
    data = request_form(title, **kw)
    headers = {}
    if partition is not None:
        data.update(computer_id=COMPUTER, computer_partition_id=partition)
        headers = header(partition)
    answer = client.post("/requestComputerPartition", data=data, headers=headers)
    assert answer.status_code == 200, answer.text
    value = loads(answer.data)
    assert isinstance(value, MarshalObject) and value.klass == "SoftwareInstance"
    return value


def full(client: FlaskClient, computer: str = COMPUTER) -> MarshalObject:
    answer = client.get("/getFullComputerInformation", query_string={"computer_id": computer})
    assert answer.status_code == 200, answer.text
    return loads(answer.data)


def partitions(client: FlaskClient) -> dict[str, dict[str, Any]]:
    return {p.initargs[1]: p.state for p in full(client).state["_computer_partition_list"]}


def post(client: FlaskClient, path: str, partition: str, **fields: Any) -> Any:
    """A call made by a partition (node or recipe): form ids plus the Authorization header."""
    data = {"computer_id": COMPUTER, "computer_partition_id": partition, **fields}
    return client.post(f"/{path}", data=data, headers=header(partition))


def snapshot(app: Flask, db: Database) -> tuple[Any, ...]:
    """Everything a rejected call must leave as it was (the cache is bypassed)."""
    app.extensions.pop(routes.CACHE_KEY, None)
    client = app.test_client()
    answer = client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER})
    with db.read() as session:
        generations = sorted(session.execute(select(Computer.reference, Computer.generation)).all())
        instances = session.scalar(select(func.count()).select_from(SoftwareInstance))
    return answer.status_code, answer.data, tuple(generations), instances


def deploy_root(client: FlaskClient) -> MarshalObject:
    format_computer(client, 3)
    supply(client)
    return request(client, "myinstance", parameters={"foo": "bar", "baz": "qux"})


# --------------------------------------------------------------------------------------------
# Node and client scenarios
# --------------------------------------------------------------------------------------------

def test_proxy_computer_answers_before_format_and_others_are_unknown(client: FlaskClient) -> None:
    computer = full(client)
    assert computer.initargs == (COMPUTER,)
    assert computer.state == {"_computer_id": COMPUTER, "_computer_partition_list": [],
                              "_software_release_list": []}
    assert client.get("/getFullComputerInformation", query_string={"computer_id": "COMP-X"}).status_code == 404
    assert client.get("/getComputerInformation", query_string={"computer_id": "COMP-X"}).status_code == 404


def test_format_lists_free_partitions(client: FlaskClient) -> None:
    format_computer(client, 3)
    found = partitions(client)
    assert sorted(found) == ["slappart0", "slappart1", "slappart2"]
    assert found["slappart1"] == {
        "_computer_id": COMPUTER, "_instance_guid": f"{COMPUTER}-slappart1", "_need_modification": 0,
        "_partition_id": "slappart1", "_request_dict": None, "_requested_state": "destroyed",
        "_software_release_document": None,
    }
    assert client.get("/getComputerInformation", query_string={"computer_id": COMPUTER}).data == \
        client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER}).data


def test_supply_then_remove_software_release(client: FlaskClient) -> None:
    format_computer(client, 1)
    answer = client.post("/supplySupply", data={"url": SR, "computer_id": COMPUTER, "state": "available"})
    assert answer.text == f"Supplied {SR!r} to be available\n"
    [release] = full(client).state["_software_release_list"]
    assert release.klass == "SoftwareRelease" and release.initargs == (SR, COMPUTER)
    assert release.state == {"_computer_guid": COMPUTER, "_requested_state": "available",
                             "_software_instance_list": [], "_software_release": SR}
    for path in ("buildingSoftwareRelease", "availableSoftwareRelease"):
        assert client.post(f"/{path}", data={"url": SR, "computer_id": COMPUTER}).status_code == 200
    assert client.post("/softwareReleaseError", data={
        "url": SR, "computer_id": COMPUTER, "error_log": "boom"}).status_code == 200
    supply(client, state="destroyed")
    assert full(client).state["_software_release_list"][0].state["_requested_state"] == "destroyed"
    assert client.post("/destroyedSoftwareRelease", data={"url": SR, "computer_id": COMPUTER}).status_code == 200
    assert full(client).state["_software_release_list"] == []


def test_request_allocates_and_is_idempotent(client: FlaskClient) -> None:
    first = deploy_root(client)
    state = first.state
    assert sorted(state) == [
        "_connection_dict", "_instance_guid", "_parameter_dict", "_requested_state", "connection_xml",
        "ip_list", "slap_computer_id", "slap_computer_partition_id", "slap_server_url",
        "slap_software_release_url", "slap_software_type"]
    assert state["_instance_guid"].startswith("SOFTINST-")
    assert state["_parameter_dict"] == {"foo": "bar", "baz": "qux", "timestamp": state["_parameter_dict"]["timestamp"]}
    float(state["_parameter_dict"]["timestamp"])
    assert (state["_requested_state"], state["_connection_dict"], state["connection_xml"]) == ("started", {}, None)
    assert state["ip_list"] == [("slaptap0", "127.0.1.1"), ("slaptap0", "::1")]
    assert (state["slap_computer_id"], state["slap_computer_partition_id"]) == (COMPUTER, "slappart0")
    assert (state["slap_software_release_url"], state["slap_software_type"]) == (SR, "default")
    again = request(client, "myinstance", parameters={"foo": "bar", "baz": "qux"})
    assert again.state == state
    node = partitions(client)["slappart0"]
    assert node["_instance_guid"] == state["_instance_guid"]
    assert node["_need_modification"] == 1 and node["_requested_state"] == "started"
    assert node["_filter_dict"] == {} and node["_connection_dict"] == {}
    assert node["_parameter_dict"] == {
        "foo": "bar", "baz": "qux", "ip_list": [("slaptap0", "127.0.1.1"), ("slaptap0", "::1")],
        "full_address_list": [], "instance_title": "myinstance", "root_instance_title": "myinstance",
        "slap_computer_id": COMPUTER, "slap_computer_partition_id": "slappart0",
        "slap_software_release_url": SR, "slap_software_type": "default", "slave_instance_list": [],
        "timestamp": state["_parameter_dict"]["timestamp"],
    }
    document = node["_software_release_document"]
    assert (document.klass, document.initargs) == ("SoftwareRelease", (SR, COMPUTER))


def test_optional_request_fields_take_their_defaults(client: FlaskClient) -> None:
    format_computer(client, 1)
    answer = client.post("/requestComputerPartition", data={"software_release": SR, "partition_reference": "bare"})
    assert answer.status_code == 200, answer.text
    state = loads(answer.data).state
    assert (state["slap_software_type"], state["_requested_state"]) == ("default", "started")
    assert set(state["_parameter_dict"]) == {"timestamp"}
    none_strings = request_form("bare", state=None)
    none_strings.update(state="None", software_type="None", filter_xml="None")
    again = loads(client.post("/requestComputerPartition", data=none_strings).data).state
    assert again["_parameter_dict"] == state["_parameter_dict"]


def test_json_in_xml_parameter_is_an_opaque_string(client: FlaskClient) -> None:
    format_computer(client, 1)
    blob = '{\n  "foo": 1,\n  "html": "<b>&amp;</b>"\n}'
    state = request(client, "json", parameters={"_": blob}).state
    assert state["_parameter_dict"]["_"] == blob
    assert partitions(client)["slappart0"]["_parameter_dict"]["_"] == blob


def test_child_requested_by_a_partition(client: FlaskClient) -> None:
    deploy_root(client)
    child = request(client, "child0", partition="slappart0", parameters={"foo": "from-parent"})
    assert child.state["slap_computer_partition_id"] == "slappart1"
    node = partitions(client)["slappart1"]["_parameter_dict"]
    assert (node["instance_title"], node["root_instance_title"], node["foo"]) == ("child0", "myinstance", "from-parent")
    # the same title from the user is another tree; from the partition it is the same instance
    assert request(client, "child0", partition="slappart0", parameters={"foo": "from-parent"}).state == child.state
    assert request(client, "child0").state["slap_computer_partition_id"] == "slappart2"


def test_connection_parameters_round_trip(client: FlaskClient) -> None:
    deploy_root(client)
    child = request(client, "child0", partition="slappart0")
    published = {"url": "http://127.0.1.1:18090/", "partition": "slappart0", "_": '{"a": "<b>"}'}
    answer = post(client, "setComputerPartitionConnectionXml", "slappart0",
                  connection_xml=dumps(published), slave_reference="None")
    assert (answer.status_code, answer.text) == (200, "done\n")
    state = request(client, "myinstance", parameters={"foo": "bar", "baz": "qux"}).state
    assert state["_connection_dict"] == published
    assert state["connection_xml"] == dict_to_instance_xml(published)
    assert partitions(client)["slappart0"]["_connection_dict"] == published
    root_timestamp = partitions(client)["slappart0"]["_parameter_dict"]["timestamp"]
    post(client, "setComputerPartitionConnectionXml", "slappart1", connection_xml=dumps({"child-url": "x"}),
         slave_reference="None")
    assert partitions(client)["slappart0"]["_parameter_dict"]["timestamp"] != root_timestamp
    assert request(client, "child0", partition="slappart0").state["_connection_dict"] == {"child-url": "x"}
    assert child.state["_connection_dict"] == {}


def test_registered_partition_is_the_node_view(client: FlaskClient) -> None:
    deploy_root(client)
    answer = client.get("/registerComputerPartition", query_string={
        "computer_reference": COMPUTER, "computer_partition_reference": "slappart0"})
    assert answer.status_code == 200
    registered = loads(answer.data)
    listed = next(p for p in full(client).state["_computer_partition_list"] if p.initargs[1] == "slappart0")
    assert registered == listed
    free = loads(client.get("/registerComputerPartition", query_string={
        "computer_reference": COMPUTER, "computer_partition_reference": "slappart2"}).data)
    assert free.state["_requested_state"] == "destroyed"
    certificate = client.get("/getComputerPartitionCertificate", query_string={
        "computer_id": COMPUTER, "computer_partition_id": "slappart0"})
    assert loads(certificate.data) == {"certificate": "", "key": ""}
    status = client.get("/getComputerPartitionStatus", query_string={
        "computer_id": COMPUTER, "computer_partition_id": "slappart0"})
    assert isinstance(loads(status.data), str)


def test_hosting_subscription_ip_list_is_every_address_of_the_tree(client: FlaskClient) -> None:
    deploy_root(client)
    request(client, "child0", partition="slappart0")
    request(client, "other-tree")                       # slappart2: another tree, not listed

    def addresses(partition: str) -> Any:
        answer = client.get("/getHostingSubscriptionIpList", query_string={
            "computer_id": COMPUTER, "computer_partition_id": partition})
        assert answer.status_code == 200, answer.text
        return loads(answer.data)

    tree = [("slaptap0", "127.0.1.1"), ("slaptap0", "::1"), ("slaptap1", "127.0.1.2"), ("slaptap1", "::1")]
    assert addresses("slappart0") == tree
    assert addresses("slappart1") == tree               # a child sees its whole tree too
    assert addresses("slappart2") == [("slaptap2", "127.0.1.3"), ("slaptap2", "::1")]


def test_shared_instance_on_a_host(client: FlaskClient) -> None:
    root = deploy_root(client)
    shared = request(client, "myslave", shared=True, parameters={"hostname": "example.invalid"})
    state = shared.state
    assert state["slap_computer_partition_id"] == "slappart0"
    assert state["ip_list"] == root.state["ip_list"]
    assert state["_parameter_dict"] == {"hostname": "example.invalid"}
    assert state["_requested_state"] == "started" and state["_connection_dict"] == {}
    guid = state["_instance_guid"]
    host = partitions(client)["slappart0"]["_parameter_dict"]
    assert host["slave_instance_list"] == [{
        "hostname": "example.invalid", "slap_software_type": "default",
        "slave_reference": guid, "slave_title": "myslave"}]
    post(client, "setComputerPartitionConnectionXml", "slappart0", connection_xml=dumps({"url": "host"}),
         slave_reference="None")
    answer = post(client, "setComputerPartitionConnectionXml", "slappart0",
                  connection_xml=dumps({"slave-url": "http://x/_myslave"}), slave_reference=guid)
    assert answer.status_code == 200, answer.text
    again = request(client, "myslave", shared=True, parameters={"hostname": "example.invalid"})
    assert again.state["_connection_dict"] == {"slave-url": "http://x/_myslave"}
    assert partitions(client)["slappart0"]["_connection_dict"] == {"url": "host"}


def test_host_lists_only_its_started_shared_instances(client: FlaskClient) -> None:
    """As the SlapOS master: a stopped shared instance leaves its host's slave_instance_list
    (the host stops serving it) and comes back when started; the host is processed each time."""
    deploy_root(client)
    request(client, "myslave", shared=True, parameters={"hostname": "example.invalid"})
    listed = partitions(client)["slappart0"]["_parameter_dict"]
    assert [s["slave_title"] for s in listed["slave_instance_list"]] == ["myslave"]
    stopped = request(client, "myslave", shared=True, parameters={"hostname": "example.invalid"}, state="stopped")
    assert stopped.state["_requested_state"] == "stopped"
    unlisted = partitions(client)["slappart0"]["_parameter_dict"]
    assert unlisted["slave_instance_list"] == []
    assert float(unlisted["timestamp"]) > float(listed["timestamp"])
    registered = loads(client.get("/registerComputerPartition", query_string={
        "computer_reference": COMPUTER, "computer_partition_reference": "slappart0"}).data)
    assert registered.state["_parameter_dict"]["slave_instance_list"] == []
    request(client, "myslave", shared=True, parameters={"hostname": "example.invalid"}, state="started")
    relisted = partitions(client)["slappart0"]["_parameter_dict"]
    assert relisted["slave_instance_list"] == listed["slave_instance_list"]
    assert float(relisted["timestamp"]) > float(unlisted["timestamp"])


def test_waiting_requests_answer_408_until_allocated(client: FlaskClient) -> None:
    format_computer(client, 1)
    request(client, "first")
    answer = client.post("/requestComputerPartition", data=request_form("second"))
    assert answer.status_code == 408
    assert "waiting for a free partition" in answer.text
    shared = client.post("/requestComputerPartition", data=request_form("s", shared=True, sr=OTHER_SR))
    assert shared.status_code == 408 and "waiting for a host" in shared.text
    format_computer(client, 2)
    assert partitions(client)["slappart1"]["_parameter_dict"]["instance_title"] == "second"
    assert request(client, "second").state["slap_computer_partition_id"] == "slappart1"


def test_requested_states_and_reports(client: FlaskClient) -> None:
    deploy_root(client)
    assert request(client, "myinstance", state="stopped").state["_requested_state"] == "stopped"
    assert partitions(client)["slappart0"]["_requested_state"] == "stopped"
    for path in ("stoppedComputerPartition", "startedComputerPartition"):
        answer = post(client, path, "slappart0")
        assert answer.status_code == 200, answer.text
    assert post(client, "softwareInstanceError", "slappart0", error_log="buildout failed").status_code == 200
    assert post(client, "softwareInstanceBang", "slappart0", message="promise").status_code == 200
    assert post(client, "updateComputerPartitionRelatedInstanceList", "slappart0",
                instance_reference_xml=dumps(["child0"])).status_code == 200
    assert client.post("/useComputer", data={"computer_id": COMPUTER, "use_string": ""}).status_code == 200
    assert loads(client.post("/computerBang", data={"computer_id": COMPUTER, "message": "x"}).data) == ""
    assert loads(client.get("/getSoftwareReleaseListFromSoftwareProduct",
                            query_string={"software_product_reference": "x"}).data) == []


def test_what_a_partition_no_longer_requests_is_destroyed(client: FlaskClient) -> None:
    """slapgrid ends a successful pass with the titles the partition requested in it
    (updateComputerPartitionRelatedInstanceList): the others it had requested are destroyed,
    down their own trees; an absent list changes nothing."""
    deploy_root(client)
    format_computer(client, 5)
    request(client, "child0", partition="slappart0")
    request(client, "child1", partition="slappart0")
    request(client, "grandchild", partition="slappart2")
    request(client, "front", partition="slappart0", shared=True)
    placed = {p["_parameter_dict"]["instance_title"]: ref for ref, p in partitions(client).items()
              if p.get("_parameter_dict")}
    assert placed == {"myinstance": "slappart0", "child0": "slappart1", "child1": "slappart2",
                      "grandchild": "slappart3"}

    assert post(client, "updateComputerPartitionRelatedInstanceList", "slappart0").status_code == 200
    assert {ref: p["_requested_state"] for ref, p in partitions(client).items()} == {
        "slappart0": "started", "slappart1": "started", "slappart2": "started", "slappart3": "started",
        "slappart4": "destroyed"}

    answer = post(client, "updateComputerPartitionRelatedInstanceList", "slappart0",
                  instance_reference_xml=dumps(["child0", "front"]))
    assert (answer.status_code, answer.text) == (200, "done\n")
    states = {ref: p["_requested_state"] for ref, p in partitions(client).items()}
    assert states == {"slappart0": "started", "slappart1": "started", "slappart2": "destroyed",
                      "slappart3": "destroyed", "slappart4": "destroyed"}
    hosted = partitions(client)["slappart0"]["_parameter_dict"]["slave_instance_list"]
    assert [entry["slave_title"] for entry in hosted] == ["front"]

    post(client, "updateComputerPartitionRelatedInstanceList", "slappart0", instance_reference_xml=dumps([]))
    assert partitions(client)["slappart1"]["_requested_state"] == "destroyed"
    assert partitions(client)["slappart0"]["_parameter_dict"]["slave_instance_list"] == []


def test_rename(client: FlaskClient) -> None:
    deploy_root(client)
    guid = request(client, "myslave", shared=True).state["_instance_guid"]
    request(client, "child0", partition="slappart0")
    assert post(client, "softwareInstanceRename", "slappart0", new_name="renamed").text == "done\n"
    renamed = post(client, "softwareInstanceRename", "slappart0", new_name="slave2", slave_reference=guid)
    assert renamed.status_code == 200
    found = partitions(client)
    assert found["slappart0"]["_parameter_dict"]["instance_title"] == "renamed"
    assert found["slappart0"]["_parameter_dict"]["slave_instance_list"][0]["slave_title"] == "slave2"
    assert found["slappart1"]["_parameter_dict"]["root_instance_title"] == "renamed"


def test_destroyed_tree_is_freed_in_one_report_pass(client: FlaskClient) -> None:
    deploy_root(client)
    request(client, "child0", partition="slappart0")
    assert request(client, "myinstance", state="destroyed").state["_requested_state"] == "destroyed"
    found = partitions(client)
    assert found["slappart0"]["_requested_state"] == found["slappart1"]["_requested_state"] == "destroyed"
    for partition in ("slappart0", "slappart1"):  # slapgrid's report: in partition order
        assert post(client, "stoppedComputerPartition", partition).status_code == 200
        answer = post(client, "destroyedComputerPartition", partition)
        assert answer.status_code == 200, answer.text
    assert all(p["_requested_state"] == "destroyed" and p["_software_release_document"] is None
               for p in partitions(client).values())
    assert request(client, "reused").state["slap_computer_partition_id"] == "slappart0"


def test_destroying_an_unknown_instance(client: FlaskClient) -> None:
    format_computer(client, 1)
    state = request(client, "ghost", state="destroyed").state
    assert state["_requested_state"] == "destroyed"
    assert (state["_connection_dict"], state["_parameter_dict"]) == ({}, {})
    assert partitions(client)["slappart0"]["_software_release_document"] is None


def test_routes_the_client_probes(client: FlaskClient) -> None:
    hateoas = client.get("/getHateoasUrl")
    assert (hateoas.status_code, hateoas.text) == (200, "http://localhost/hateoas/")
    assert client.get(hateoas.text).json["_links"]["raw_search"]["href"].startswith("http://localhost/hateoas/")
    assert client.get("/requestComputerPartition").status_code == 405
    assert client.post("/getFullComputerInformation").status_code == 405


# --------------------------------------------------------------------------------------------
# Bad input: a 4xx, a clear message, nothing changed
# --------------------------------------------------------------------------------------------

BAD_XML = "<marshal><dictionary id='i2'><string>a</string></marshal>"
ENTITY = '<!DOCTYPE m [<!ENTITY x "y">]><marshal><string>&x;</string></marshal>'
BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
                  + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8))
                  + ']><marshal><dictionary id="i2"><string>a</string><string>&i;</string></dictionary></marshal>')
EXTERNAL_ENTITY = ('<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                   '<marshal><dictionary id="i2"><string>a</string><string>&e;</string></dictionary></marshal>')


def _request(**changes: Any) -> dict[str, Any]:
    form = request_form("newone", parameters={"a": "b"})
    for key, value in changes.items():
        if value is None:
            form.pop(key)
        else:
            form[key] = value
    return form


BAD_CALLS: list[tuple[str, str, str, dict[str, Any], dict[str, str], int, str]] = [
    ("unknown computer", "GET", "getFullComputerInformation", {"computer_id": "COMP-X"}, {}, 404, "COMP-X"),
    ("no computer id", "GET", "getFullComputerInformation", {}, {}, 400, "computer_id"),
    ("unknown partition", "GET", "registerComputerPartition",
     {"computer_reference": COMPUTER, "computer_partition_reference": "slappart9"}, {}, 404, "slappart9"),
    ("addresses of a free partition's tree", "GET", "getHostingSubscriptionIpList",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart2"}, {}, 404, "hosts no instance"),
    ("addresses, no partition id", "GET", "getHostingSubscriptionIpList", {"computer_id": COMPUTER}, {}, 400,
     "computer_partition_id"),
    ("no title", "POST", "requestComputerPartition", _request(partition_reference=None), {}, 400,
     "partition_reference"),
    ("no software release", "POST", "requestComputerPartition", _request(software_release=None), {}, 400,
     "software_release"),
    ("malformed parameters", "POST", "requestComputerPartition", _request(partition_parameter_xml=BAD_XML),
     {}, 400, "malformed"),
    ("parameters not a dict", "POST", "requestComputerPartition",
     _request(partition_parameter_xml=dumps(["a"])), {}, 400, "partition_parameter_xml"),
    ("nested parameter", "POST", "requestComputerPartition",
     _request(partition_parameter_xml=dumps({"a": ["b"]})), {}, 400, "'a'"),
    ("entity", "POST", "requestComputerPartition", _request(filter_xml=ENTITY), {}, 400, "DTD"),
    ("billion laughs", "POST", "requestComputerPartition", _request(partition_parameter_xml=BILLION_LAUGHS),
     {}, 400, "DTD"),
    ("external entity", "POST", "setComputerPartitionConnectionXml",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "connection_xml": EXTERNAL_ENTITY},
     header("slappart0"), 400, "DTD"),
    ("bogus state", "POST", "requestComputerPartition", _request(state=dumps("exploded")), {}, 400, "exploded"),
    ("bogus shared", "POST", "requestComputerPartition", _request(shared_xml=dumps("yes")), {}, 400, "shared_xml"),
    ("bad title", "POST", "requestComputerPartition", _request(partition_reference="a\tb"), {}, 400, "title"),
    ("relative software release", "POST", "requestComputerPartition", _request(software_release="../x.cfg"),
     {}, 400, "software release"),
    ("header of an unknown partition", "POST", "requestComputerPartition", _request(), header("slappart9"), 400,
     f"No partition matching the authorization header: ({COMPUTER} / slappart9)"),
    ("header against the form", "POST", "requestComputerPartition",
     _request(computer_id=COMPUTER, computer_partition_id="slappart0"), header("slappart1"), 400,
     "No partition matching the authorization header"),
    ("malformed header", "POST", "requestComputerPartition", _request(),
     {"Authorization": "X-SlapPartition nonsense"}, 400, "malformed"),
    ("form names a free partition", "POST", "requestComputerPartition",
     _request(computer_id=COMPUTER, computer_partition_id="slappart2"), {}, 400, "slappart2"),
    ("bogus supply state", "POST", "supplySupply", {"url": SR, "computer_id": COMPUTER, "state": "gone"}, {},
     400, "gone"),
    ("supply without url", "POST", "supplySupply", {"computer_id": COMPUTER, "state": "available"}, {}, 400, "url"),
    ("malformed format", "POST", "loadComputerConfigurationFromXML", {"xml": "<marshal>"}, {}, 400, "malformed"),
    ("format without xml", "POST", "loadComputerConfigurationFromXML", {}, {}, 400, "xml"),
    ("format with a bad list", "POST", "loadComputerConfigurationFromXML",
     {"xml": dumps({"reference": COMPUTER, "partition_list": ["x"]})}, {}, 400, "partition_list[0]"),
    ("format with a bad address", "POST", "loadComputerConfigurationFromXML",
     {"xml": dumps(computer_dict(1) | {"partition_list": [{"reference": "p", "address_list": [{"addr": "nope"}]}]})},
     {}, 400, "nope"),
    ("format with a path in a reference", "POST", "loadComputerConfigurationFromXML",
     {"xml": dumps(computer_dict(1) | {"partition_list": [{"reference": "../etc", "address_list": []}]})},
     {}, 400, "../etc"),
    ("unknown computer report", "POST", "buildingSoftwareRelease", {"url": SR, "computer_id": "COMP-X"}, {},
     404, "COMP-X"),
    ("unknown partition report", "POST", "startedComputerPartition",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart9"}, {}, 404, "slappart9"),
    ("report with a header of an unknown partition", "POST", "startedComputerPartition",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart9"}, header("slappart9"), 400,
     "No partition matching"),
    ("report for another partition", "POST", "stoppedComputerPartition",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0"}, header("slappart1"), 400,
     "No partition matching"),
    ("free a live instance", "POST", "destroyedComputerPartition",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0"}, header("slappart0"), 409, "destroyed"),
    ("malformed connection", "POST", "setComputerPartitionConnectionXml",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "connection_xml": "<x/>"},
     header("slappart0"), 400, "marshal"),
    ("connection for an unknown shared instance", "POST", "setComputerPartitionConnectionXml",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "connection_xml": dumps({"a": "b"}),
      "slave_reference": "SOFTINST-nope"}, header("slappart0"), 404, "SOFTINST-nope"),
    ("connection without connection_xml", "POST", "setComputerPartitionConnectionXml",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0"}, header("slappart0"), 400, "connection_xml"),
    ("rename to nothing", "POST", "softwareInstanceRename",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "new_name": ""}, header("slappart0"), 400,
     "new_name"),
    ("rename onto a sibling", "POST", "softwareInstanceRename",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "new_name": "other"}, header("slappart0"),
     409, "other"),
    ("NUL in an id", "GET", "getFullComputerInformation", {"computer_id": "a\x00b"}, {}, 400, "NUL"),
    ("related list not a list", "POST", "updateComputerPartitionRelatedInstanceList",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "instance_reference_xml": dumps("x")},
     header("slappart0"), 400, "list"),
    ("related list of non-titles", "POST", "updateComputerPartitionRelatedInstanceList",
     {"computer_id": COMPUTER, "computer_partition_id": "slappart0", "instance_reference_xml": dumps([1])},
     header("slappart0"), 400, "titles"),
]


@pytest.mark.parametrize("method,path,fields,headers,status,message",
                         [case[1:] for case in BAD_CALLS], ids=[case[0] for case in BAD_CALLS])
def test_bad_input_is_refused_and_changes_nothing(
        app: Flask, db: Database, client: FlaskClient, method: str, path: str, fields: dict[str, Any],
        headers: dict[str, str], status: int, message: str) -> None:
    deploy_root(client)
    request(client, "other")
    before = snapshot(app, db)
    if method == "GET":
        answer = client.get(f"/{path}", query_string=fields, headers=headers)
    else:
        answer = client.post(f"/{path}", data=fields, headers=headers)
    assert answer.status_code == status, answer.text
    assert message in answer.text
    assert answer.content_type.startswith("text/plain") and answer.text.count("\n") == 1
    assert snapshot(app, db) == before


# --------------------------------------------------------------------------------------------
# The getFullComputerInformation cache: never stale
# --------------------------------------------------------------------------------------------

def test_cached_answer_follows_every_change_it_shows(app: Flask, client: FlaskClient) -> None:
    deploy_root(client)
    guid = request(client, "myslave", shared=True, parameters={"a": "1"}).state["_instance_guid"]

    def cached_equals_fresh(step: int = -1) -> None:
        cached = client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER}).data
        app.extensions.pop(routes.CACHE_KEY, None)
        fresh = client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER}).data
        assert cached == fresh, f"stale answer after step {step}"

    steps = [
        lambda: post(client, "setComputerPartitionConnectionXml", "slappart0", connection_xml=dumps({"u": "1"})),
        lambda: post(client, "setComputerPartitionConnectionXml", "slappart0", connection_xml=dumps({"u": "2"}),
                     slave_reference=guid),
        lambda: request(client, "myslave", shared=True, parameters={"a": "2"}),
        lambda: post(client, "softwareInstanceRename", "slappart0", new_name="s2", slave_reference=guid),
        lambda: post(client, "softwareInstanceRename", "slappart0", new_name="root2"),
        lambda: request(client, "child", partition="slappart0"),
        lambda: post(client, "softwareInstanceRename", "slappart0", new_name="root3"),
        lambda: supply(client, OTHER_SR),
        lambda: supply(client, OTHER_SR, state="destroyed"),
        lambda: client.post("/destroyedSoftwareRelease", data={"url": OTHER_SR, "computer_id": COMPUTER}),
        lambda: request(client, "myslave", shared=True, state="destroyed"),
        lambda: request(client, "root3", state="stopped"),
        lambda: post(client, "softwareInstanceBang", "slappart0", message="x"),
        lambda: format_computer(client, 4),
    ]
    cached_equals_fresh()
    for number, step in enumerate(steps):
        full(client)  # fill the cache
        step()
        cached_equals_fresh(number)


def test_generation_increments_are_not_lost_between_concurrent_writers(pg_db: Database) -> None:
    """Two PostgreSQL transactions that both change a computer give it two new generations.

    (On SQLite writers are serialized by BEGIN IMMEDIATE, so the race cannot happen there.)
    """
    from partita.master.db.changes import mark_computer_changed

    db = pg_db
    client = create_app(db, AppSettings(mode="proxy", computer_id=COMPUTER)).test_client()

    format_computer(client, 1)
    with db.read() as session:
        start = session.scalar(select(Computer.generation).where(Computer.reference == COMPUTER))
    first, second = db.write(), db.write()
    sessions = [first.__enter__(), second.__enter__()]
    loaded = [s.scalar(select(Computer).where(Computer.reference == COMPUTER)) for s in sessions]
    mark_computer_changed(sessions[0], loaded[0])  # both have read the same generation

    def second_writer() -> None:
        mark_computer_changed(sessions[1], loaded[1])  # waits for the first to commit
        second.__exit__(None, None, None)

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(0.5)
    first.__exit__(None, None, None)
    thread.join(30)
    assert not thread.is_alive()
    with db.read() as session:
        end = session.scalar(select(Computer.generation).where(Computer.reference == COMPUTER))
    assert end == start + 2


# --------------------------------------------------------------------------------------------
# Compatibility with the real xml_marshaller, and a computer of 200 busy partitions
# --------------------------------------------------------------------------------------------

@pytest.fixture
def fake_slap_classes(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``slapos.slap.slap`` with the constructors of slapos.core 1.26.1 (§2.2), nothing else."""
    module = types.ModuleType("slapos.slap.slap")

    class Computer:
        def __init__(self, computer_id: str) -> None:
            self._computer_id = computer_id

    class ComputerPartition:
        def __init__(self, computer_id: str, partition_id: str, request_dict: Any = None) -> None:
            if request_dict is None and (computer_id is None or partition_id is None):
                raise TypeError("computer_id and partition_id or request_dict are required")
            self._computer_id, self._partition_id, self._request_dict = computer_id, partition_id, request_dict

    class SoftwareRelease:
        def __init__(self, software_release: str | None = None, computer_guid: str | None = None) -> None:
            self._software_instance_list: list = []
            self._software_release, self._computer_guid = software_release, computer_guid

    class SoftwareInstance:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    for cls in (Computer, ComputerPartition, SoftwareRelease, SoftwareInstance):
        cls.__module__ = module.__name__
        setattr(module, cls.__name__, cls)
    for name in ("slapos", "slapos.slap"):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name) or types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "slapos.slap.slap", module)
    return module


def test_real_xml_marshaller_reads_the_answers(client: FlaskClient, fake_slap_classes: types.ModuleType) -> None:
    from xml_marshaller import xml_marshaller

    deploy_root(client)
    shared = request(client, "myslave", shared=True, parameters={"x": "<&>é"})
    post(client, "setComputerPartitionConnectionXml", "slappart0", connection_xml=dumps({"url": "http://[::1]/"}))
    computer = xml_marshaller.loads(client.get("/getFullComputerInformation",
                                               query_string={"computer_id": COMPUTER}).data)
    assert isinstance(computer, fake_slap_classes.Computer)
    busy, free, _ = computer._computer_partition_list
    assert isinstance(busy, fake_slap_classes.ComputerPartition)
    assert busy._partition_id == "slappart0" and busy._connection_dict == {"url": "http://[::1]/"}
    assert busy._parameter_dict["slave_instance_list"][0]["x"] == "<&>é"
    assert busy._parameter_dict["ip_list"] == [("slaptap0", "127.0.1.1"), ("slaptap0", "::1")]
    assert busy._software_release_document._software_release == SR
    assert free._requested_state == "destroyed" and free._software_release_document is None
    assert computer._software_release_list[0]._requested_state == "available"
    answer = client.post("/requestComputerPartition", data=request_form("myinstance", {"foo": "bar", "baz": "qux"}))
    instance = xml_marshaller.loads(answer.data)
    assert isinstance(instance, fake_slap_classes.SoftwareInstance)
    assert instance._connection_dict == {"url": "http://[::1]/"}
    assert instance.connection_xml == dict_to_instance_xml({"url": "http://[::1]/"})
    assert xml_marshaller.loads(dumps(shared)).slap_computer_partition_id == "slappart0"


def test_full_computer_information_of_200_busy_partitions(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every busy partition is listed with its parameters; served again without a change, the
    answer comes from the cache, byte for byte the cold one. (Its time: bench/slap_xml_bench.py.)"""
    format_computer(client, 200)
    supply(client)
    for n in range(200):
        request(client, f"instance{n}", parameters={f"p{k}": f"v{k}-{n}" for k in range(10)})
    assembled: list[str] = []
    real_assemble = ComputerCache.assemble

    def assemble(self: ComputerCache, key: Any, source: Any) -> bytes:
        assembled.append(source.reference)
        return real_assemble(self, key, source)
    monkeypatch.setattr(ComputerCache, "assemble", assemble)
    app.extensions.pop(routes.CACHE_KEY, None)
    cold = client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER}).data
    cached = client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER}).data
    assert assembled == [COMPUTER]  # the second answer was the kept one
    assert cached == cold
    listed = [p.state["_parameter_dict"] for p in loads(cold).state["_computer_partition_list"]]
    assert sorted(parameters["instance_title"] for parameters in listed) == sorted(f"instance{n}" for n in range(200))
    for parameters in listed:
        n = parameters["instance_title"].removeprefix("instance")
        assert {key: parameters[key] for key in parameters if key.startswith("p")} == {
            f"p{k}": f"v{k}-{n}" for k in range(10)}
