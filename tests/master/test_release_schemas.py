"""The master checks a request's parameters against its release's schema (issue 12): on the JSON
API and SLAP XML, a mismatch is a 400 INVALID naming the field and stores nothing; http(s)
descriptors are fetched only for releases a computer's owner or an admin supplied (SSRF); short
names ``product.NAME`` resolve to published and shipped releases."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from partita.master.api.slap_xml.marshal import dumps, loads
from partita.master.db.database import Database
from partita.master.db.models import Computer, Owner, SoftwareInstance, Supply
from partita.master.services import release_schemas, software_names
from partita.master.services.identity import Caller
from partita.slap import software_names as shipped_names
from partita.slap.errors import Forbidden, ValidationError
from tests.master.test_json_rpc import Api, snapshot
from tests.support.file_server import serve_directory

SCHEMA = {
    "type": "object",
    "properties": {
        "greeting": {"type": "string", "default": "Hello"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 8080},
    },
    "additionalProperties": False,
}
DESCRIPTOR = {"serialisation": "xml",
              "software-type": {"default": {"title": "Default", "request": "input.json", "index": 0}}}


def write_release(directory: Path, descriptor: Any = DESCRIPTOR, schema: Any = SCHEMA) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "software.cfg").write_text("[buildout]\nparts =\n")
    if descriptor is not None:
        text = descriptor if isinstance(descriptor, str) else json.dumps(descriptor)
        (directory / "software.cfg.json").write_text(text)
    (directory / "input.json").write_text(json.dumps(schema))
    return str(directory / "software.cfg")


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    release_schemas.CACHE.clear()
    yield
    release_schemas.CACHE.clear()


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server on loopback serving a directory: base URL, directory, paths asked for."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as (url, asked):
        yield url, root, asked


def request_body(url: str, title: str = "main", **parameters: Any) -> dict[str, Any]:
    return {"title": title, "software_release_uri": url, "software_type": "default", "parameters": parameters}


# ---------------------------------------------------------------------------------------- JSON API

def test_json_api_refuses_a_parameter_out_of_range_naming_it_and_stores_nothing(
        api: Api, db: Database, tmp_path: Path) -> None:
    url = write_release(tmp_path / "sr")
    before = snapshot(db)
    error = api.fails("slapos.post.v0.software_instance", request_body(url, port="70000"), 400, "INVALID")
    assert error["title"] == "parameter 'port': 70000 is greater than the maximum of 65535"
    error = api.fails("slapos.post.v0.software_instance", request_body(url, colour="red"), 400, "INVALID")
    assert error["title"].startswith("parameter 'colour' is not a parameter of this software type")
    assert snapshot(db) == before
    good = api.call("slapos.post.v0.software_instance", request_body(url, port="8081"))
    assert good["parameters"] == {"port": "8081"}  # stored as sent: the instance types it itself


def test_json_in_xml_parameters_are_checked_once_decoded(api: Api, tmp_path: Path) -> None:
    url = write_release(tmp_path / "sr", {**DESCRIPTOR, "serialisation": "json-in-xml"})
    error = api.fails("slapos.post.v0.software_instance",
                      request_body(url, _=json.dumps({"port": 0})), 400, "INVALID")
    assert error["title"] == "parameter 'port': 0 is less than the minimum of 1"
    api.call("slapos.post.v0.software_instance", request_body(url, _=json.dumps({"port": 9000})))


def test_unchanged_re_request_and_destruction_are_not_checked_again(api: Api, tmp_path: Path) -> None:
    directory = tmp_path / "sr"
    url = write_release(directory)
    api.call("slapos.post.v0.software_instance", request_body(url, port="8081"))
    (directory / "input.json").write_text(json.dumps({**SCHEMA, "properties": {}}))  # the release changed
    release_schemas.CACHE.clear()
    api.call("slapos.post.v0.software_instance", request_body(url, port="8081"))  # idempotent
    api.fails("slapos.post.v0.software_instance", request_body(url, port="8082"), 400, "INVALID")
    destroyed = api.call("slapos.post.v0.software_instance", {**request_body(url, port="8082"), "state": "destroyed"})
    assert destroyed["state"] == "destroyed"


@pytest.mark.parametrize("descriptor", [None, "{not json", {"software-type": {"other": {"request": "input.json"}}}])
def test_a_release_without_a_usable_schema_for_the_type_is_not_checked(
        api: Api, tmp_path: Path, descriptor: Any) -> None:
    url = write_release(tmp_path / "sr", descriptor)
    api.call("slapos.post.v0.software_instance", request_body(url, port="70000"))


def test_a_shared_request_uses_the_shared_schema_of_its_type(api: Api, tmp_path: Path) -> None:
    shared_schema = {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}
    descriptor = {"software-type": {"default": {"request": "input.json"},
                                    "default-slave": {"software-type": "default", "shared": True,
                                                      "request": "shared.json"}}}
    url = write_release(tmp_path / "sr", descriptor)
    (tmp_path / "sr" / "shared.json").write_text(json.dumps(shared_schema))
    error = api.fails("slapos.post.v0.software_instance", {**request_body(url, "route"), "shared": True},
                      400, "INVALID")
    assert error["title"] == "parameter 'url' is required"


# ---------------------------------------------------------------------------------------- SLAP XML

def xml_request(client: FlaskClient, url: str, parameters: dict[str, Any]) -> Any:
    return client.post("/requestComputerPartition", data={
        "software_release": url, "partition_reference": "main", "partition_parameter_xml": dumps(parameters),
        "filter_xml": dumps({}), "software_type": "default", "state": dumps(None), "shared_xml": dumps(False),
    })


def test_slap_xml_checks_string_parameters_typed_by_the_schema(app: Flask, db: Database, tmp_path: Path) -> None:
    client = app.test_client()
    url = write_release(tmp_path / "sr")
    before = snapshot(db)
    refused = xml_request(client, url, {"port": "70000"})
    assert refused.status_code == 400
    assert "parameter 'port': 70000 is greater than the maximum of 65535" in refused.text
    refused = xml_request(client, url, {"port": "eighty"})
    assert refused.status_code == 400 and "parameter 'port': 'eighty' is not of type 'integer'" in refused.text
    assert snapshot(db) == before
    accepted = xml_request(client, url, {"port": "8081", "greeting": "hi"})
    assert accepted.status_code == 408  # stored, waiting for a partition (none formatted)


def test_slap_xml_checks_the_decoded_underscore(app: Flask, tmp_path: Path) -> None:
    url = write_release(tmp_path / "sr", {**DESCRIPTOR, "serialisation": "json-in-xml"})
    refused = xml_request(app.test_client(), url, {"_": json.dumps({"port": 70000})})
    assert refused.status_code == 400 and "parameter 'port'" in refused.text


# ---------------------------------------------------------------------------------------- http(s): SSRF

def test_an_http_release_is_fetched_only_once_supplied_by_the_computers_owner(
        api: Api, served: tuple[str, Path, list[str]]) -> None:
    base, root, asked = served
    write_release(root / "sr")
    url = f"{base}/sr/software.cfg"
    api.call("slapos.post.v0.software_instance", request_body(url, "first", port="70000"))
    assert asked == []  # nobody trusted supplied it: not fetched, not checked
    api.format("slappart0")
    api.call("slapos.post.v0.software_installation", {"computer_guid": "local_computer", "software_release_uri": url})
    error = api.fails("slapos.post.v0.software_instance", request_body(url, "second", port="70000"), 400, "INVALID")
    assert "70000 is greater than the maximum" in error["title"]
    assert asked == ["/sr/software.cfg.json", "/sr/input.json"]
    api.fails("slapos.post.v0.software_instance", request_body(url, "third", port="0"), 400, "INVALID")
    assert len(asked) == 2  # cached


def _rows(db: Database, *, admin: bool, supplier_owns_computer: bool, url: str) -> None:
    with db.write() as session:
        owner = Owner(name="owner", created_at=time.time(), admin=False)
        supplier = Owner(name="supplier", created_at=time.time(), admin=admin)
        session.add_all([owner, supplier])
        session.flush()
        computer = Computer(reference="COMP-1", owner_id=supplier.id if supplier_owns_computer else owner.id,
                            created_at=time.time())
        session.add(computer)
        session.flush()
        session.add(Supply(computer_id=computer.id, owner_id=supplier.id, url=url, requested_state="available",
                           updated_at=time.time()))


@pytest.mark.parametrize(("admin", "owns", "trusted"), [(False, False, False), (False, True, True),
                                                         (True, False, True)])
def test_trusted_remote_rule(db: Database, admin: bool, owns: bool, trusted: bool) -> None:
    url = "https://releases.example/sr/software.cfg"
    _rows(db, admin=admin, supplier_owns_computer=owns, url=url)
    with db.read() as session:
        assert release_schemas.trusted_remote(session, url) is trusted
        assert release_schemas.trusted_remote(session, url + "x") is False


def test_kind_of_urls() -> None:
    assert release_schemas.kind_of("/opt/sr/software.cfg") == "local"
    assert release_schemas.kind_of("file:///opt/sr/software.cfg") == "local"
    assert release_schemas.kind_of("https://h/sr/software.cfg") == "remote"
    assert release_schemas.kind_of("ftp://h/sr/software.cfg") == "other"


def test_cache_entries_expire() -> None:
    cache = release_schemas.SchemaCache()
    cache.put("u", None, "no descriptor", ttl=10)
    assert cache.get("u") is not None
    assert cache.get("u", now=time.time() + 11) is None


def test_a_slow_descriptor_does_not_hold_the_request(tmp_path: Path) -> None:
    """A host that accepts and never answers: the request goes on unchecked within the timeout."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/sr/software.cfg"
        started = time.monotonic()
        assert release_schemas.load(url, timeout=0.5) is not None  # requests' own timeout answered
        assert time.monotonic() - started < 2.0
        release_schemas.check(url, "default", {"port": "70000"})  # unusable: not checked
    finally:
        listener.close()


# ---------------------------------------------------------------------------------------- short names

def test_short_names_resolve_to_shipped_then_published_releases(api: Api, db: Database, tmp_path: Path) -> None:
    shipped = shipped_names.shipped_releases()
    assert "hello-web" in shipped
    found = api.call("slapos.get.v0.software_release_name", {"name": "product.hello-web"})
    assert found == {"name": "hello-web", "software_release_uri": shipped["hello-web"], "source": "shipped"}
    bad = api.fails("slapos.post.v0.software_instance", request_body("product.hello-web", port="70000"),
                    400, "INVALID")
    assert bad["title"] == "parameter 'port': 70000 is greater than the maximum of 65535"
    made = api.call("slapos.post.v0.software_instance", request_body("product.hello-web", port="8081"))
    assert made["software_release_uri"] == shipped["hello-web"]
    mine = write_release(tmp_path / "mine")
    api.call("slapos.put.v0.software_release_name", {"name": "hello-web", "software_release_uri": mine})
    names = api.call("slapos.allDocs.v0.software_release_name_list", {})["result_list"]
    assert {"name": "hello-web", "software_release_uri": mine, "source": "published"} in names
    unknown = api.fails("slapos.post.v0.software_instance", request_body("product.nothing"), 400, "INVALID")
    assert unknown["title"].startswith("unknown software release name 'product.nothing' (known: product.")
    assert "product.hello-web" in unknown["title"]
    with db.read() as session:
        urls = set(session.scalars(select(SoftwareInstance.software_release)))
    assert urls == {shipped["hello-web"]}


def test_slap_xml_product_lookup(app: Flask) -> None:
    client = app.test_client()
    answer = client.get("/getSoftwareReleaseListFromSoftwareProduct",
                        query_string={"software_product_reference": "hello-web"})
    assert loads(answer.data) == [shipped_names.shipped_releases()["hello-web"]]
    answer = client.get("/getSoftwareReleaseListFromSoftwareProduct",
                        query_string={"software_product_reference": "nothing"})
    assert loads(answer.data) == []


def test_only_an_admin_publishes(db: Database) -> None:
    user = Caller(owner="alice", role="user")
    admin = Caller(owner="root", role="user", admin=True)
    with db.write() as session:
        with pytest.raises(Forbidden, match="only an admin"):
            software_names.publish(session, user, "mine", "/opt/sr/software.cfg")
        with pytest.raises(ValidationError, match="bad software release name"):
            software_names.publish(session, admin, "Bad Name", "/opt/sr/software.cfg")
        assert software_names.publish(session, admin, "mine", "/opt/sr/software.cfg").url == "/opt/sr/software.cfg"
        assert software_names.resolve(session, "product.mine") == "/opt/sr/software.cfg"


def test_a_supply_by_short_name_stores_the_url(api: Api) -> None:
    api.format("slappart0")
    api.call("slapos.post.v0.software_installation",
             {"computer_guid": "local_computer", "software_release_uri": "product.tree"})
    listed = api.call("slapos.allDocs.v0.compute_node_software_installation_list", {"computer_guid": "local_computer"})
    assert [entry["software_release_uri"] for entry in listed["result_list"]] == [shipped_names.shipped_releases()["tree"]]
    api.fails("slapos.post.v0.software_installation",
              {"computer_guid": "local_computer", "software_release_uri": "product.nope"}, 400, "INVALID")
