"""The JSON API adapter (master/api/json_rpc*.py) through Flask's test client, on SQLite and PostgreSQL.

Every answer is checked against the response schema of ``openapi.yaml``; every rejected request is
checked to change nothing in the catalog.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from partita.master.api import json_rpc_node, openapi
from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.db.models import Base
from partita.master.services import supplies
from partita.master.services.identity import Caller
from partita.master.settings import AppSettings
from tests.master.conftest import open_catalog
from partita.slap.states import SupplyState

COMPUTER = "local_computer"
SR = "/opt/software/demo/software.cfg"
OTHER_SR = "https://example.org/software/other/software.cfg"


# ---------------------------------------------------------------------------------------- fixtures

def _app(db: Database, **settings: Any) -> Flask:
    return create_app(db, AppSettings(mode="proxy", computer_id=COMPUTER, **settings))


class Api:
    """Calls JSON API methods and checks every answer against the OpenAPI document."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def call(self, method: str, body: Any = None, status: int = 200,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.client.post(f"/{method}", json={} if body is None else body, headers=headers)
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        document = response.get_json()
        openapi.validate_response(method, status, document)
        return document

    def fails(self, method: str, body: Any, status: int, code: str,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
        error = self.call(method, body, status, headers)
        assert error["status"] == status and error["code"] == code
        return error

    def request(self, title: str, **fields: Any) -> dict[str, Any]:
        headers = fields.pop("headers", None)
        body = {"title": title, "software_release_uri": SR, "software_type": "default", **fields}
        return self.call("slapos.post.v0.software_instance", body, headers=headers)

    def format(self, *partitions: str, computer: str = COMPUTER) -> None:
        listed = [{"partition_id": p, "ip_list": [{"ip-address": f"10.0.0.{i + 1}", "network-interface": "lo"}]}
                  for i, p in enumerate(partitions)]
        done = self.call("slapos.put.v0.compute_node_format",
                         {"computer_guid": computer, "compute_partition_list": listed})
        assert done == {"type": "success", "title": "Formatted"}

    def state(self, computer: str = COMPUTER) -> dict[str, Any]:
        return self.call("slapos.get.v0.compute_node_state", {"computer_guid": computer})

    def instance(self, guid: str) -> dict[str, Any]:
        return self.call("slapos.get.v0.software_instance", {"instance_guid": guid})


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def partition_header(partition: str, computer: str = COMPUTER) -> dict[str, str]:
    return {"Authorization": f"X-SlapPartition computer_id={computer}, computer_partition_id={partition}"}


def snapshot(db: Database) -> list[tuple[str, list[str]]]:
    """Every row of every table, to show that a rejected request changed nothing."""
    with db.read() as session:
        return [(table.name, sorted(repr(tuple(row)) for row in session.execute(select(table))))
                for table in Base.metadata.sorted_tables]


# ---------------------------------------------------------------------------------------- instances

def test_waiting_request_is_stored_then_allocated_by_format(api: Api) -> None:
    waiting = api.request("main", parameters={"foo": "bar", "n": 3})
    assert waiting["compute_partition_id"] is None and waiting["computer_guid"] is None
    assert waiting["status_reason"] == "waiting for a free partition (any computer)"
    assert waiting["parameters"] == {"foo": "bar", "n": 3}
    api.format("slappart0", "slappart1")
    allocated = api.instance(waiting["instance_guid"])
    assert allocated["compute_partition_id"] == "slappart0"
    assert allocated["computer_guid"] == COMPUTER
    assert allocated["ip_list"] == [["lo", "10.0.0.1"]]
    assert allocated["timestamp"] > waiting["timestamp"]
    assert allocated["processing_timestamp"] == int(allocated["timestamp"])


def test_request_is_idempotent_and_answers_the_slapproxy_document(api: Api) -> None:
    api.format("slappart0", "slappart1")
    first = api.request("main", state="started")
    again = api.request("main")
    assert again["instance_guid"] == first["instance_guid"]
    assert again["compute_partition_id"] == first["compute_partition_id"] == "slappart0"
    assert first | {"timestamp": 0, "processing_timestamp": 0, "status_reason": ""} == {
        "title": "main", "instance_guid": first["instance_guid"], "software_release_uri": SR,
        "software_type": "default", "state": "started", "connection_parameters": {}, "parameters": {},
        "shared": False, "root_instance_title": "main", "ip_list": [["lo", "10.0.0.1"]],
        "full_ip_list": [], "sla_parameters": {}, "computer_guid": COMPUTER,
        "compute_partition_id": "slappart0", "processing_timestamp": 0, "access_status_message": "",
        "status_reason": "", "reported_state": None, "timestamp": 0,
    }


def test_sla_pins_the_computer_and_waits_naming_it(api: Api) -> None:
    api.format("slappart0")
    api.format(computer="COMP-9")  # known, without partitions yet (an unknown one is refused, issue 11)
    waiting = api.request("pinned", sla_parameters={"computer_guid": "COMP-9"})
    assert waiting["compute_partition_id"] is None
    assert "computer_guid=COMP-9" in waiting["status_reason"]
    assert waiting["sla_parameters"] == {"computer_guid": "COMP-9"}
    api.format("slappart0", computer="COMP-9")
    assert api.instance(waiting["instance_guid"])["computer_guid"] == "COMP-9"


def test_partition_requests_a_child_in_its_tree(api: Api) -> None:
    api.format("slappart0", "slappart1")
    root = api.request("root")
    child = api.request("child", software_type="worker", headers=partition_header("slappart0"))
    assert child["root_instance_title"] == "root"
    assert child["compute_partition_id"] == "slappart1"
    assert child["software_type"] == "worker"
    tree = api.call("slapos.get.v0.instance_tree", {"title": "root"})
    assert tree["instance_guid"] == root["instance_guid"]
    unknown = api.request("ghost", state="destroyed", headers=partition_header("slappart0"))
    assert unknown["instance_guid"] is None and unknown["state"] == "destroyed"
    assert unknown["root_instance_title"] == "root"
    titles = [e["title"] for e in api.call("slapos.allDocs.v0.instance_tree_list")["result_list"]]
    assert titles == ["root"]


def test_what_an_instance_no_longer_requests_is_destroyed(api: Api) -> None:
    api.format("slappart0", "slappart1", "slappart2")
    root = api.request("root")
    kept = api.request("kept", headers=partition_header("slappart0"))
    dropped = api.request("dropped", headers=partition_header("slappart0"))
    done = api.call("slapos.put.v0.software_instance_requested_list",
                    {"instance_guid": root["instance_guid"], "title_list": ["kept", "not-a-child"]})
    assert done["type"] == "success"
    assert api.instance(kept["instance_guid"])["state"] == "started"
    assert api.instance(dropped["instance_guid"])["state"] == "destroyed"
    assert api.instance(root["instance_guid"])["state"] == "started"
    bad = api.call("slapos.put.v0.software_instance_requested_list",
                   {"instance_guid": root["instance_guid"], "title_list": "kept"}, status=400)
    assert "title_list" in json.dumps(bad)
    assert api.instance(kept["instance_guid"])["state"] == "started"


def test_destroying_an_unknown_instance_stores_nothing(api: Api, db: Database) -> None:
    api.request("other")  # the owner exists (a first request creates it)
    before = snapshot(db)
    answer = api.request("nothing", state="destroyed")
    assert answer["instance_guid"] is None and answer["state"] == "destroyed"
    assert answer["status_reason"] == "no such instance: nothing to destroy"
    assert snapshot(db) == before


def test_instance_tree_list_has_the_roots_and_shared_roots(api: Api) -> None:
    api.format("slappart0")
    api.request("host")
    api.request("waiting")
    api.request("front", shared=True)
    entries = {e["title"]: e for e in api.call("slapos.allDocs.v0.instance_tree_list")["result_list"]}
    assert set(entries) == {"host", "waiting", "front"}
    assert entries["front"]["shared"] is True
    assert entries["waiting"]["compute_partition_id"] is None
    assert entries["waiting"]["status_reason"].startswith("waiting for a free partition")
    assert entries["host"]["computer_guid"] == COMPUTER


def test_shared_instance_is_hosted_and_gets_its_connection_parameters(api: Api) -> None:
    api.format("slappart0")
    host = api.request("host")
    shared = api.request("front", shared=True, parameters={"url": "http://backend"})
    assert shared["shared"] is True and shared["compute_partition_id"] == "slappart0"
    hosted = api.call("slapos.allDocs.v0.instance_node_instance_list",
                      {"instance_guid": host["instance_guid"]})["result_list"]
    assert hosted == [{
        "instance_guid": shared["instance_guid"], "title": "front", "software_type": "default",
        "state": "started", "parameters": {"url": "http://backend"}, "compute_partition_id": "slappart0",
        "software_release_uri": SR, "connection_parameters": {},
    }]
    api.call("slapos.put.v0.software_instance_connection_parameter", {
        "instance_guid": host["instance_guid"], "connection_parameter_dict": {"site": "https://front"},
        "shared_instance_guid": shared["instance_guid"],
    })
    assert api.instance(shared["instance_guid"])["connection_parameters"] == {"site": "https://front"}
    assert api.instance(host["instance_guid"])["connection_parameters"] == {}
    listed = api.state()["compute_partition_list"][0]["instance"]["shared_instance_list"]
    assert listed[0]["connection_parameters"] == {"site": "https://front"}
    # stopped, it is still hosted (and listed as such) but no longer served by its host's node
    api.request("front", shared=True, parameters={"url": "http://backend"}, state="stopped")
    assert api.state()["compute_partition_list"][0]["instance"]["shared_instance_list"] == []
    still = api.call("slapos.allDocs.v0.instance_node_instance_list", {"instance_guid": host["instance_guid"]})
    assert [(entry["title"], entry["state"]) for entry in still["result_list"]] == [("front", "stopped")]


def test_connection_parameters_bang_rename_and_error(api: Api) -> None:
    api.format("slappart0")
    api.call("slapos.post.v0.software_installation", {"computer_guid": COMPUTER, "software_release_uri": SR})
    main = api.request("main")
    guid = main["instance_guid"]
    done = api.call("slapos.put.v0.software_instance_connection_parameter",
                    {"instance_guid": guid, "connection_parameter_dict": {"url": "http://x", "port": 8080}})
    assert done["type"] == "success"
    assert api.instance(guid)["connection_parameters"] == {"url": "http://x", "port": 8080}
    before = api.instance(guid)["timestamp"]
    api.call("slapos.put.v0.software_instance_bang", {"instance_guid": guid, "message": "again"})
    assert api.instance(guid)["timestamp"] > before
    api.call("slapos.put.v0.software_instance_title", {"instance_guid": guid, "title": "renamed"})
    assert api.call("slapos.get.v0.instance_tree", {"title": "renamed"})["instance_guid"] == guid
    api.call("slapos.put.v0.software_instance_error", {"instance_guid": guid, "message": "buildout failed: boom"})
    document = api.instance(guid)
    assert document["reported_state"] == "error"
    assert "boom" in document["status_reason"]


def test_rename_to_a_taken_title_is_a_conflict(api: Api, db: Database) -> None:
    api.format("slappart0", "slappart1")
    first = api.request("first")
    api.request("second")
    before = snapshot(db)
    error = api.fails("slapos.put.v0.software_instance_title",
                      {"instance_guid": first["instance_guid"], "title": "second"}, 409, "CONFLICT")
    assert "second" in error["title"]
    assert snapshot(db) == before


def test_reported_states_and_destruction_free_the_partition_for_a_waiting_request(api: Api, db: Database) -> None:
    api.format("slappart0")
    main = api.request("main")
    guid = main["instance_guid"]
    api.call("slapos.put.v0.software_instance_reported_state",
             {"instance_guid": guid, "reported_state": "started", "status_message": "all promises pass"})
    assert api.instance(guid)["reported_state"] == "started"
    before = snapshot(db)
    api.fails("slapos.put.v0.software_instance_reported_state",
              {"instance_guid": guid, "reported_state": "destroyed"}, 409, "CONFLICT")
    assert snapshot(db) == before
    waiting = api.request("next")
    assert waiting["compute_partition_id"] is None
    assert api.request("main", state="destroyed")["state"] == "destroyed"
    done = api.call("slapos.put.v0.software_instance_reported_state",
                    {"instance_guid": guid, "reported_state": "destroyed"})
    assert done == {"type": "success", "title": "Destroyed"}
    api.fails("slapos.get.v0.software_instance", {"instance_guid": guid}, 404, "NOT_FOUND")
    assert api.instance(waiting["instance_guid"])["compute_partition_id"] == "slappart0"


def test_compute_partition_and_compute_node_instance_list(api: Api) -> None:
    api.format("slappart0", "slappart1", "slappart2")
    main = api.request("main")
    api.request("other", software_release_uri=OTHER_SR)
    on_partition = api.call("slapos.get.v0.compute_partition",
                            {"computer_guid": COMPUTER, "compute_partition_id": "slappart0"})
    assert on_partition["instance_guid"] == main["instance_guid"]
    api.fails("slapos.get.v0.compute_partition",
              {"computer_guid": COMPUTER, "compute_partition_id": "slappart2"}, 404, "NOT_FOUND")
    api.fails("slapos.get.v0.compute_partition",
              {"computer_guid": COMPUTER, "compute_partition_id": "slappart9"}, 404, "NOT_FOUND")
    listed = api.call("slapos.allDocs.v0.compute_node_instance_list", {"computer_guid": COMPUTER})["result_list"]
    assert [(e["title"], e["compute_partition_id"], e["software_release_uri"]) for e in listed] == [
        ("main", "slappart0", SR), ("other", "slappart1", OTHER_SR),
    ]


# ---------------------------------------------------------------------------------------- software

def test_software_installation_lifecycle(api: Api) -> None:
    api.format("slappart0")
    supplied = api.call("slapos.post.v0.software_installation",
                        {"computer_guid": COMPUTER, "software_release_uri": SR})
    assert supplied == {"type": "success", "title": f"Supplied {SR} to be available"}
    listing = "slapos.allDocs.v0.compute_node_software_installation_list"

    def installations() -> list[dict[str, Any]]:
        return api.call(listing, {"computer_guid": COMPUTER})["result_list"]

    assert installations() == [{"software_release_uri": SR, "state": "available", "reported_state": None}]
    report = {"computer_guid": COMPUTER, "software_release_uri": SR}
    api.call("slapos.put.v0.software_installation_reported_state", report | {"reported_state": "building"})
    assert installations()[0]["reported_state"] == "building"
    api.call("slapos.put.v0.software_installation_error", report | {"message": "compile error in foo.c"})
    assert installations()[0]["reported_state"] == "error"
    main = api.request("main")
    assert "compile error in foo.c" in main["status_reason"]
    api.call("slapos.put.v0.software_installation_reported_state",
             report | {"reported_state": "error", "error_log": "second failure"})
    assert "second failure" in api.instance(main["instance_guid"])["status_reason"]
    api.call("slapos.put.v0.software_installation_reported_state", report | {"reported_state": "available"})
    assert installations()[0]["reported_state"] == "available"
    api.call("slapos.post.v0.software_installation", report | {"state": "destroyed"})
    assert installations()[0]["state"] == "destroyed"
    done = api.call("slapos.put.v0.software_installation_reported_state", report | {"reported_state": "destroyed"})
    assert done["title"] == "Destroyed"
    assert installations() == []


def test_software_installation_of_an_unknown_computer_is_404(api: Api) -> None:
    for method, extra in [
        ("slapos.allDocs.v0.compute_node_software_installation_list", {}),
        ("slapos.put.v0.software_installation_reported_state", {"software_release_uri": SR, "reported_state": "available"}),
        ("slapos.put.v0.software_installation_error", {"software_release_uri": SR, "message": "x"}),
    ]:
        api.fails(method, {"computer_guid": "COMP-NOPE", **extra}, 404, "NOT_FOUND")


# ---------------------------------------------------------------------------------------- compute nodes

def test_compute_node_state_has_everything_the_node_needs(api: Api) -> None:
    api.format("slappart0", "slappart1")
    api.call("slapos.post.v0.software_installation", {"computer_guid": COMPUTER, "software_release_uri": SR})
    host = api.request("host", parameters={"size": "L"})
    shared = api.request("front", shared=True, parameters={"domain": "example.org"})
    state = api.state()
    assert state["computer_guid"] == COMPUTER and state["generation"] > 0
    assert state["software_installation_list"] == [
        {"software_release_uri": SR, "state": "available", "reported_state": None}]
    busy, free = state["compute_partition_list"]
    assert free == {"compute_partition_id": "slappart1", "state": "free",
                    "ip_list": [["lo", "10.0.0.2"]], "instance": None, "ipv6_range": None}
    assert busy["state"] == "busy" and busy["ip_list"] == [["lo", "10.0.0.1"]]
    instance = busy["instance"]
    assert instance["instance_guid"] == host["instance_guid"]
    assert instance["parameters"] == {"size": "L"}
    assert isinstance(instance["timestamp"], float)
    assert instance["shared_instance_list"] == [{
        "instance_guid": shared["instance_guid"], "title": "front", "software_type": "default",
        "parameters": {"domain": "example.org"}, "connection_parameters": {},
    }]


def test_compute_node_misc_methods(api: Api) -> None:
    api.format("slappart0")
    api.request("main")
    known = {"computer_guid": COMPUTER}
    ignored = {"type": "success", "title": "Ignored"}
    assert api.call("slapos.put.v0.compute_node_bang", known | {"message": "hi"}) == ignored
    assert api.call("slapos.post.v0.compute_node_usage", known | {"tioxml": "<xml/>"}) == ignored
    assert api.call("slapos.remove.v0.compute_node_certificate", known) == ignored
    assert api.call("slapos.post.v0.compute_node_certificate", known) == {"key": "", "certificate": ""}
    text = api.call("slapos.get.v0.compute_node_status", known)["text"]
    assert text.startswith(f"{COMPUTER}: 1 partitions (1 busy)")
    api.format("slappart0", computer="COMP-2")
    assert api.call("slapos.allDocs.WIP.compute_node_list") == {"result_list": [
        {"computer_guid": "COMP-2", "title": "COMP-2"}, {"computer_guid": COMPUTER, "title": COMPUTER}]}
    for method in ("slapos.put.v0.compute_node_bang", "slapos.post.v0.compute_node_usage",
                   "slapos.remove.v0.compute_node_certificate", "slapos.post.v0.compute_node_certificate",
                   "slapos.get.v0.compute_node_status", "slapos.get.v0.compute_node_state",
                   "slapos.allDocs.v0.compute_node_instance_list"):
        api.fails(method, {"computer_guid": "COMP-NOPE"}, 404, "NOT_FOUND")


def test_certificates_and_hateoas_url(api: Api) -> None:
    api.format("slappart0")
    guid = api.request("main")["instance_guid"]
    assert api.call("slapos.get.v0.software_instance_certificate",
                    {"instance_guid": guid}) == {"key": "", "certificate": ""}
    api.fails("slapos.get.v0.software_instance_certificate", {"instance_guid": "SOFTINST-x"}, 404, "NOT_FOUND")
    assert api.call("slapos.get.v0.hateoas_url") == {"hateoas_url": "http://localhost/hateoas/"}
    empty_body = api.client.post("/slapos.get.v0.hateoas_url", data=b"")
    assert empty_body.status_code == 200


# ---------------------------------------------------------------------------------------- errors

BAD_REQUESTS = [
    # (method, raw body, status, code, title fragment)
    ("slapos.get.v0.software_instance", b"{not json", 400, "BAD_ENCODING", "malformed JSON"),
    # found by schemathesis: a body of blanks was read as {} (an empty body still is)
    ("slapos.allDocs.WIP.compute_node_list", b"\t", 400, "BAD_ENCODING", "malformed JSON"),
    ("slapos.get.v0.software_instance", b'{"instance_guid": NaN}', 400, "BAD_ENCODING", "NaN"),
    ("slapos.get.v0.software_instance", b"\xff\xfe\x00garbage", 400, "BAD_ENCODING", "malformed JSON"),
    ("slapos.get.v0.software_instance", b"[" * 100_000, 400, "BAD_ENCODING", "malformed JSON"),
    ("slapos.get.v0.software_instance", b'{"instance_guid": "a\\u0000b"}', 400, "BAD_ENCODING", "NUL"),
    ("slapos.put.v0.software_instance_connection_parameter",
     b'{"instance_guid": "x", "connection_parameter_dict": {"k": ["\\u0000"]}}', 400, "BAD_ENCODING", "NUL"),
    ("slapos.get.v0.software_instance", b"{}", 400, "INVALID", "'instance_guid' is a required property"),
    ("slapos.get.v0.software_instance", b"[]", 400, "INVALID", "[] is not of type 'object'"),
    ("slapos.get.v0.software_instance", b'{"instance_guid": 3}', 400, "INVALID",
     "3 is not of type 'string' (at $.instance_guid)"),
    ("slapos.get.v0.software_instance", b'{"instance_guid": "x", "extra": 1}', 400, "INVALID",
     "Additional properties are not allowed ('extra' was unexpected)"),
    ("slapos.get.v0.software_instance", b'{"instance_guid": "SOFTINST-nope"}', 404, "NOT_FOUND", "SOFTINST-nope"),
    ("slapos.post.v0.software_instance",
     json.dumps({"title": "t", "software_release_uri": SR, "software_type": "x", "state": "running"}).encode(),
     400, "INVALID", "'running' is not one of"),
    ("slapos.post.v0.software_instance",
     json.dumps({"title": "t", "software_release_uri": "ftp://x/../y", "software_type": "x"}).encode(),
     400, "INVALID", "software release"),
    ("slapos.post.v0.software_instance",
     json.dumps({"title": "", "software_release_uri": SR, "software_type": "x"}).encode(),
     400, "INVALID", "title must not be empty"),
    ("slapos.put.v0.software_instance_reported_state",
     json.dumps({"instance_guid": "x", "reported_state": "exploded"}).encode(), 400, "INVALID", "'exploded'"),
    ("slapos.put.v0.compute_node_format",
     json.dumps({"computer_guid": COMPUTER, "compute_partition_list": [{"ip_list": []}]}).encode(),
     400, "INVALID", "'partition_id' is a required property (at $.compute_partition_list[0])"),
    ("slapos.put.v0.compute_node_format",
     json.dumps({"computer_guid": COMPUTER, "compute_partition_list": [
         {"partition_id": "slappart0", "ip_list": [{"ip-address": "not-an-ip"}]}]}).encode(),
     400, "INVALID", "bad address"),
    ("slapos.put.v0.compute_node_format",
     json.dumps({"computer_guid": COMPUTER, "compute_partition_list": [
         {"partition_id": "slappart0", "ip_list": [{"ip-address": "10.0.0.1", "network-interface": "i" * 65}]}]}).encode(),
     400, "INVALID", "is too long"),
    ("slapos.put.v0.compute_node_format",
     json.dumps({"computer_guid": "../etc", "compute_partition_list": []}).encode(),
     400, "INVALID", "path separators"),
    ("slapos.wait.v0.compute_node_change",
     json.dumps({"computer_guid": COMPUTER, "generation": "1"}).encode(), 400, "INVALID", "'1' is not of type 'integer'"),
    ("slapos.wait.v0.compute_node_change",
     json.dumps({"computer_guid": COMPUTER, "generation": 0, "timeout": -1}).encode(), 400, "INVALID", "minimum"),
]


@pytest.mark.parametrize("method,raw,status,code,fragment", BAD_REQUESTS,
                         ids=[f"{m.split('.')[-1]}-{c}-{i}" for i, (m, _r, _s, c, _f) in enumerate(BAD_REQUESTS)])
def test_bad_requests_answer_a_json_error_and_change_nothing(
        api: Api, db: Database, method: str, raw: bytes, status: int, code: str, fragment: str) -> None:
    api.format("slappart0")
    api.request("main")
    before = snapshot(db)
    response = api.client.post(f"/{method}", data=raw, content_type="application/json")
    assert response.status_code == status
    error = response.get_json()
    openapi.validate_response(method, status, error)
    assert error["status"] == status and error["code"] == code
    assert error["type"] == {400: "Bad Request", 404: "Not Found"}[status]
    assert fragment in error["title"]
    assert snapshot(db) == before


def test_oversized_body_is_413_and_changes_nothing(db: Database) -> None:
    api = Api(_app(db, max_body_bytes=2048).test_client())
    before = snapshot(db)
    error = api.fails("slapos.post.v0.software_instance", {
        "title": "big", "software_release_uri": SR, "software_type": "default",
        "parameters": {"blob": "x" * 4096}}, 413, "TOO_LARGE")
    assert error["type"] == "Request Entity Too Large"
    assert "2048" in error["title"]
    assert snapshot(db) == before


def test_get_is_405_and_unknown_method_is_404_in_json(api: Api) -> None:
    response = api.client.get("/slapos.get.v0.software_instance")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.get_json() == {"status": 405, "type": "Method Not Allowed",
                                   "title": "The method is not allowed for the requested URL.",
                                   "code": "METHOD_NOT_ALLOWED"}
    response = api.client.post("/slapos.get.v0.nothing_like_this", json={})
    assert response.status_code == 404
    assert response.get_json()["title"] == "unknown JSON API method 'slapos.get.v0.nothing_like_this'"
    assert response.get_json()["code"] == "NOT_FOUND"


def test_malformed_partition_header_is_400_and_unknown_partition_is_rejected(api: Api, db: Database) -> None:
    api.format("slappart0")
    before = snapshot(db)
    body = {"title": "child", "software_release_uri": SR, "software_type": "default"}
    api.fails("slapos.post.v0.software_instance", body, 400, "BAD_AUTHORIZATION",
              headers={"Authorization": "X-SlapPartition garbage"})
    api.fails("slapos.post.v0.software_instance", body, 400, "BAD_AUTHORIZATION",
              headers=partition_header("slappart0"))  # a free partition acts for no instance
    assert snapshot(db) == before


def test_state_change_that_is_not_allowed_is_409(api: Api, db: Database) -> None:
    api.format("slappart0")
    api.request("main")
    api.request("main", state="destroyed")
    before = snapshot(db)
    error = api.fails("slapos.post.v0.software_instance",
                      {"title": "main", "software_release_uri": SR, "software_type": "default",
                       "state": "started"}, 409, "INVALID_TRANSITION")
    assert "destroyed" in error["title"]
    assert snapshot(db) == before


# ---------------------------------------------------------------------------------------- waiting for changes

def _wait(api: Api, generation: int, timeout: float) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    answer = api.call("slapos.wait.v0.compute_node_change",
                      {"computer_guid": COMPUTER, "generation": generation, "timeout": timeout})
    return answer, time.monotonic() - start


def test_wait_returns_at_once_when_the_generation_differs(api: Api) -> None:
    api.format("slappart0")
    generation = api.state()["generation"]
    answer, elapsed = _wait(api, generation - 1, 20)
    assert answer == {"computer_guid": COMPUTER, "generation": generation, "changed": True}
    assert elapsed < 2


def test_wait_times_out_without_polling_the_database(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.format("slappart0")
    generation = api.state()["generation"]
    reads: list[str] = []
    original = json_rpc_node._generation
    monkeypatch.setattr(json_rpc_node, "_generation",
                        lambda db, caller, ref: reads.append(ref) or original(db, caller, ref))
    answer, elapsed = _wait(api, generation, 1.0)
    assert answer == {"computer_guid": COMPUTER, "generation": generation, "changed": False}
    assert 0.9 <= elapsed < 5
    assert len(reads) <= 2


def test_wait_timeout_is_capped_by_the_settings(db: Database) -> None:
    api = Api(_app(db, max_wait_seconds=0.5).test_client())
    api.format("slappart0")
    answer, elapsed = _wait(api, api.state()["generation"], 600)
    assert answer["changed"] is False and elapsed < 3


def test_wait_for_an_unknown_computer_is_404(api: Api) -> None:
    api.fails("slapos.wait.v0.compute_node_change", {"computer_guid": "COMP-NOPE", "generation": 0}, 404, "NOT_FOUND")


def _change_later(app: Flask, delay: float) -> threading.Thread:
    def change() -> None:
        time.sleep(delay)
        Api(app.test_client()).call("slapos.post.v0.software_installation",
                                    {"computer_guid": COMPUTER, "software_release_uri": OTHER_SR})

    thread = threading.Thread(target=change)
    thread.start()
    return thread


def test_wait_wakes_up_when_another_thread_changes_the_computer(app: Flask, api: Api) -> None:
    api.format("slappart0")
    generation = api.state()["generation"]
    thread = _change_later(app, 0.5)
    answer, elapsed = _wait(api, generation, 20)
    thread.join()
    assert answer["changed"] is True and answer["generation"] > generation
    assert 0.4 <= elapsed < 5


@pytest.mark.postgresql
def test_change_through_another_worker_wakes_a_waiter_on_postgresql(postgres_url: str) -> None:
    worker_a, worker_b = open_catalog(postgres_url), Database(postgres_url)
    try:
        api = Api(_app(worker_a).test_client())
        api.format("slappart0")
        generation = api.state()["generation"]
        answers: list[tuple[dict[str, Any], float]] = []
        waiter = threading.Thread(target=lambda: answers.append(_wait(api, generation, 20)))
        waiter.start()
        time.sleep(1.0)  # the waiter is asleep on worker A's bus
        worker_b.run_write(lambda session: supplies.supply(
            session, Caller(), COMPUTER, OTHER_SR, SupplyState.AVAILABLE))
        changed_at = time.monotonic()
        waiter.join(timeout=25)
        woke_after = time.monotonic() - changed_at
        assert answers, "the waiter did not answer"
        answer, elapsed = answers[0]
        assert answer["changed"] is True and answer["generation"] == generation + 1
        assert elapsed >= 0.9 and woke_after < 5
    finally:
        worker_a.dispose()
        worker_b.dispose()
