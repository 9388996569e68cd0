"""The cross-process contracts of slap.wire: held to master/api/openapi.yaml, rendered and parsed
back unchanged, and refusing a wrong document with one line that names the field."""
from __future__ import annotations

import configparser
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import partita.master.api
from partita.slap.errors import MalformedDocument, ValidationError
from partita.slap.wire.connection import (
    SlapConnection, buildout_tail, connection_options, for_instance_file, parse_connection,
)
from partita.slap.wire.instance import (
    InstanceDocument, NodeInstanceDocument, SharedInstance, TreeEntry, parse_instance, parse_node_instance,
    parse_tree_entry, render_instance, render_tree_entry,
)
from partita.slap.wire.instance_file import InstanceFile, parse_instance_file, render_instance_file
from partita.slap.wire.node_state import (
    ComputeNodeState, ComputePartition, SoftwareInstallation, parse_node_state, parse_software_installation,
    render_node_state, render_software_installation,
)
from partita.slap.wire.promise_result import (
    PromiseAnswer, answer_line, last_answer, parse_promise_answer, render_promise_answer,
)

OPENAPI = Path(partita.master.api.__file__).with_name("openapi.yaml")
BASE_URI = "urn:partita:test-wire"

SHARED = SharedInstance(instance_guid="SOFTINST-9", title="front", software_type="route",
                        parameters={"url": "http://a/"}, connection_parameters={"ok": True})
INSTANCE = InstanceDocument(
    title="web", instance_guid="SOFTINST-1", software_release_uri="/srv/sr/software.cfg",
    software_type="default", state="started", connection_parameters={"url": "http://127.0.1.1/"},
    parameters={"greeting": "Bonjour", "nested": {"a": [1, True]}}, shared=False, root_instance_title="web",
    ip_list=(("lo", "127.0.1.1"), ("lo", "fd70::1")), full_ip_list=(), sla_parameters={"computer_guid": "COMP-1"},
    computer_guid="COMP-1", compute_partition_id="slappart0", processing_timestamp=1732230000,
    access_status_message="", status_reason="started", reported_state="started", timestamp=1732230000.5,
)
WAITING = dataclasses.replace(INSTANCE, computer_guid=None, compute_partition_id=None, ip_list=(),
                              reported_state=None, status_reason="waiting for a free partition (any computer)")
UNKNOWN_DESTROYED = dataclasses.replace(WAITING, instance_guid=None, state="destroyed",
                                        status_reason="no such instance: nothing to destroy", timestamp=0.0)
NODE_INSTANCE = NodeInstanceDocument(**{f.name: getattr(INSTANCE, f.name) for f in dataclasses.fields(INSTANCE)},
                                     shared_instance_list=(SHARED,))
TREE = TreeEntry(title="web", instance_guid="SOFTINST-1", state="started", status_reason="started",
                 software_release_uri="/srv/sr/software.cfg", software_type="default",
                 compute_partition_id=None, computer_guid=None, shared=False)
SOFTWARE = SoftwareInstallation(software_release_uri="/srv/sr/software.cfg", state="available", reported_state=None)
NODE_STATE = ComputeNodeState(
    computer_guid="COMP-1", generation=7,
    software_installation_list=(SOFTWARE, SoftwareInstallation("https://x/software.cfg", "destroyed", "error")),
    compute_partition_list=(
        ComputePartition("slappart0", "busy", (("lo", "127.0.1.1"),), NODE_INSTANCE),
        ComputePartition("slappart1", "free", (), None),
    ),
)
INSTANCE_FILE = InstanceFile(
    computer_id="COMP-1", partition_id="slappart0", server_url="http://127.0.0.1:5000",
    instance_guid="SOFTINST-1", title="web", root_instance_title="tree", software_release_uri="/srv/sr/software.cfg",
    software_type="default", state="started", parameters={"port": 8080}, connection_parameters={},
    ip_list=(("lo", "127.0.1.1"),), shared_instance_list=(SHARED,), timestamp=1732230000.5,
    software_path="/opt/slapgrid/0123", partition_path="/srv/slapgrid/slappart0",
)
CONNECTION = for_instance_file(INSTANCE_FILE, instance_file="/srv/slapgrid/slappart0/.slapgrid/instance.json",
                               key_file="/etc/partita/key.pem", cert_file="/etc/partita/cert.pem")
ANSWER = PromiseAnswer(ok=False, message="port 8080 closed", period=60.0, timeout=20.0, failure_threshold=2)


# ------------------------------------------------------------------------ the OpenAPI document

@functools.cache
def openapi() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def schema(*path: str) -> dict[str, Any]:
    node: Any = openapi()
    for part in path:
        node = node[part]
    return node


def validator(name: str) -> Draft202012Validator:
    """A validator of ``components/schemas/<name>``, its $refs resolved inside the document."""
    resource = Resource.from_contents(openapi(), default_specification=DRAFT202012)
    registry = Registry().with_resource(BASE_URI, resource)
    return Draft202012Validator({"$ref": f"{BASE_URI}#/components/schemas/{name}"}, registry=registry)


def field_names(contract: type) -> list[str]:
    return [f.name for f in dataclasses.fields(contract)]


SCHEMAS = {  # contract -> (its properties, its required list) in openapi.yaml
    InstanceDocument: (schema("components", "schemas", "InstanceFields"),),
    NodeInstanceDocument: (schema("components", "schemas", "InstanceFields"),
                           schema("components", "schemas", "NodeInstanceDocument")),
    SharedInstance: (schema("components", "schemas", "NodeInstanceDocument", "properties",
                            "shared_instance_list", "items"),),
    TreeEntry: (schema("components", "schemas", "InstanceTreeEntry"),),
    SoftwareInstallation: (schema("components", "schemas", "SoftwareInstallation"),),
    ComputePartition: (schema("components", "schemas", "ComputeNodeState", "properties",
                              "compute_partition_list", "items"),),
    ComputeNodeState: (schema("components", "schemas", "ComputeNodeState"),),
}


@pytest.mark.parametrize("contract", list(SCHEMAS), ids=lambda c: c.__name__)
def test_fields_are_the_schema_properties_and_all_required(contract: type) -> None:
    parts = SCHEMAS[contract]
    properties = [name for part in parts for name in part.get("properties", {})]
    required = [name for part in parts for name in part.get("required", [])]
    assert field_names(contract) == properties
    assert field_names(contract) == required


def test_the_instance_document_schemas_are_built_from_the_instance_fields() -> None:
    """InstanceDocument and NodeInstanceDocument take their fields from InstanceFields (what the
    field test above assumes)."""
    for name in ("InstanceDocument", "NodeInstanceDocument"):
        assert schema("components", "schemas", name)["allOf"] == [{"$ref": "#/components/schemas/InstanceFields"}]


@pytest.mark.parametrize(("name", "document"), [
    ("InstanceDocument", render_instance(INSTANCE)),
    ("InstanceDocument", render_instance(WAITING)),
    ("InstanceDocument", render_instance(UNKNOWN_DESTROYED)),
    ("NodeInstanceDocument", render_instance(NODE_INSTANCE)),
    ("InstanceTreeEntry", render_tree_entry(TREE)),
    ("SoftwareInstallation", render_software_installation(SOFTWARE)),
    ("ComputeNodeState", render_node_state(NODE_STATE)),
], ids=lambda value: value if isinstance(value, str) else "")
def test_rendered_documents_validate_against_the_schema(name: str, document: dict[str, Any]) -> None:
    errors = list(validator(name).iter_errors(document))
    assert not errors, [error.message for error in errors]


def test_a_plain_instance_document_is_not_a_node_one_and_back() -> None:
    """The node's document has shared_instance_list; the JSON API's plain one must not."""
    assert list(validator("InstanceDocument").iter_errors(render_instance(NODE_INSTANCE)))
    assert list(validator("NodeInstanceDocument").iter_errors(render_instance(INSTANCE)))


# ------------------------------------------------------------------------ render, then parse

def through_json(document: Any) -> Any:
    return json.loads(json.dumps(document))


@pytest.mark.parametrize(("value", "render", "parse"), [
    (INSTANCE, render_instance, parse_instance),
    (WAITING, render_instance, parse_instance),
    (UNKNOWN_DESTROYED, render_instance, parse_instance),
    (NODE_INSTANCE, render_instance, parse_node_instance),
    (TREE, render_tree_entry, parse_tree_entry),
    (SOFTWARE, render_software_installation, parse_software_installation),
    (NODE_STATE, render_node_state, parse_node_state),
    (INSTANCE_FILE, render_instance_file, parse_instance_file),
    (ANSWER, render_promise_answer, parse_promise_answer),
], ids=lambda value: type(value).__name__ if dataclasses.is_dataclass(value) else "")
def test_render_then_parse_gives_the_same_object(value: Any, render: Any, parse: Any) -> None:
    assert parse(through_json(render(value))) == value


def test_integral_timestamps_read_as_numbers() -> None:
    document = {**render_instance(INSTANCE), "timestamp": 5}
    assert parse_instance(document).timestamp == 5.0


def sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_the_buildout_tail_reads_back_as_the_same_connection() -> None:
    tail = sections(buildout_tail(CONNECTION, ipv4_network="127.0.1.0/24"))
    assert parse_connection(dict(tail["slap-connection"])) == CONNECTION
    assert dict(tail["slap-connection"]) == connection_options(CONNECTION)
    legacy = dict(tail["slap_connection"])
    assert legacy["server_url"] == CONNECTION.server_url and legacy["instance_guid"] == CONNECTION.instance_guid
    assert "requested_state" not in legacy
    assert tail["network-information"]["global-ipv4-network"] == "127.0.1.0/24"
    assert tail["buildout"]["newest"] == "false"


def test_the_masters_ca_file_is_partitas_key_and_reads_back() -> None:
    connection = dataclasses.replace(CONNECTION, ca_file="/etc/opt/slapos/ssl/master-ca.crt")
    tail = sections(buildout_tail(connection, ipv4_network="127.0.1.0/24"))
    assert tail["slap-connection"]["partita-ca-file"] == "/etc/opt/slapos/ssl/master-ca.crt"
    assert parse_connection(dict(tail["slap-connection"])) == connection
    assert "partita_ca_file" not in tail["slap_connection"]
    assert tail["slap-connection"]["key-file"] == CONNECTION.key_file


def test_the_connection_follows_its_instance_file() -> None:
    assert (CONNECTION.computer_id, CONNECTION.partition_id, CONNECTION.server_url) == (
        INSTANCE_FILE.computer_id, INSTANCE_FILE.partition_id, INSTANCE_FILE.server_url)
    assert (CONNECTION.instance_guid, CONNECTION.requested_state, CONNECTION.software_path) == (
        INSTANCE_FILE.instance_guid, INSTANCE_FILE.state, INSTANCE_FILE.software_path)


def test_a_multi_line_value_stays_on_its_line() -> None:
    tail = buildout_tail(dataclasses.replace(CONNECTION, key_file="/a\n[evil]\nx = 1"), ipv4_network="10.0.0.0/8")
    assert "evil" not in sections(tail).sections()


def test_the_promise_answer_is_the_last_json_line_of_the_output() -> None:
    assert last_answer(["checking…", '{"not": "an answer"}', answer_line(ANSWER), "trailing noise"]) == ANSWER
    assert last_answer(["no answer", "[1, 2]"]) is None


# ------------------------------------------------------------------------ wrong documents

def one_line_error(parse: Any, document: Any) -> str:
    with pytest.raises(MalformedDocument) as raised:
        parse(document)
    message = str(raised.value)
    assert "\n" not in message
    assert isinstance(raised.value, ValidationError)
    return message


@pytest.mark.parametrize(("parse", "document", "expected"), [
    (parse_instance, [], "instance document must be an object, not an array"),
    (parse_instance, {k: v for k, v in render_instance(INSTANCE).items() if k != "title"},
     "instance document: field 'title' is missing"),
    (parse_instance, {**render_instance(INSTANCE), "state": "running"},
     "field 'state' must be one of destroyed, started, stopped, not 'running'"),
    (parse_instance, {**render_instance(INSTANCE), "shared": "no"}, "field 'shared' must be a boolean, not a string"),
    (parse_instance, {**render_instance(INSTANCE), "processing_timestamp": True},
     "field 'processing_timestamp' must be an integer, not a boolean"),
    (parse_instance, {**render_instance(INSTANCE), "parameters": None}, "field 'parameters' must be an object, not null"),
    (parse_instance, {**render_instance(INSTANCE), "ip_list": [["lo"]]},
     "field 'ip_list[0]' must be an [interface, address] pair of strings"),
    (parse_node_instance, {**render_instance(NODE_INSTANCE), "instance_guid": None},
     "field 'instance_guid' must be a string, not null"),
    (parse_node_instance, {**render_instance(NODE_INSTANCE), "shared_instance_list": [{"title": "x"}]},
     "node instance document.shared_instance_list[0]: field 'instance_guid' is missing"),
    (parse_tree_entry, {**render_tree_entry(TREE), "shared": 1}, "field 'shared' must be a boolean, not an integer"),
    (parse_node_state, {**render_node_state(NODE_STATE), "generation": "7"},
     "compute_node_state: field 'generation' must be an integer, not a string"),
    (parse_node_state, {**render_node_state(NODE_STATE), "software_installation_list": [
        {"software_release_uri": "/x", "state": "available", "reported_state": "lost"}]},
     "compute_node_state.software_installation_list[0]: field 'reported_state' must be one of"),
    (parse_node_state, {**render_node_state(NODE_STATE), "compute_partition_list": [
        {"compute_partition_id": "slappart0", "state": "busy", "ip_list": []}]},
     "compute_node_state.compute_partition_list[0]: field 'instance' is missing"),
    (parse_instance_file, {**render_instance_file(INSTANCE_FILE), "timestamp": "later"},
     "instance.json: field 'timestamp' must be a number, not a string"),
    (parse_promise_answer, {**render_promise_answer(ANSWER), "ok": "yes"},
     "promise answer: field 'ok' must be a boolean, not a string"),
    (parse_promise_answer, {"ok": True}, "promise answer: field 'message' is missing"),
], ids=lambda value: value.__name__ if callable(value) else "")
def test_a_wrong_document_is_one_line_naming_the_field(parse: Any, document: Any, expected: str) -> None:
    assert expected in one_line_error(parse, document)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"server-url": ""}, "[slap-connection] needs option 'server-url'"),
    ({"partition-id": "  "}, "[slap-connection] needs option 'partition-id'"),
    ({"requested-state": "paused"}, "[slap-connection] option 'requested-state' must be one of"),
])
def test_a_wrong_connection_section_is_one_line_naming_the_option(changes: dict[str, str], expected: str) -> None:
    assert expected in one_line_error(parse_connection, {**connection_options(CONNECTION), **changes})


def test_a_connection_section_without_optional_keys_takes_their_defaults() -> None:
    minimal = {"server-url": "http://m/", "computer-id": "COMP-1", "partition-id": "slappart0"}
    connection = parse_connection(minimal)
    assert connection == SlapConnection(
        computer_id="COMP-1", partition_id="slappart0", server_url="http://m/", software_release_url="",
        key_file="", cert_file="", requested_state="started", instance_guid="", instance_file="", software_path="")


def test_a_malformed_promise_answer_line_is_refused() -> None:
    assert "field 'period' is missing" in one_line_error(last_answer, ['{"ok": true, "message": "fine"}'])


def test_a_partitions_ipv6_range_travels_to_the_instance_file_and_older_peers_omit_it() -> None:
    """The master's partition entry carries ``ipv6_range`` (issue 13); a master or node that does
    not know it omits it, read as None."""
    entry = {"compute_partition_id": "slappart0", "state": "free", "ip_list": [], "instance": None,
             "ipv6_range": "2001:db8::1:0/112"}
    state = parse_node_state({"computer_guid": "COMP-1", "generation": 1, "software_installation_list": [],
                              "compute_partition_list": [entry, {**entry, "ipv6_range": None}]})
    assert [p.ipv6_range for p in state.compute_partition_list] == ["2001:db8::1:0/112", None]
    older = {key: value for key, value in entry.items() if key != "ipv6_range"}
    assert parse_node_state({"computer_guid": "C", "generation": 1, "software_installation_list": [],
                             "compute_partition_list": [older]}).compute_partition_list[0].ipv6_range is None
    document = InstanceFile(
        computer_id="C", partition_id="slappart0", server_url="http://m", instance_guid="G", title="t",
        root_instance_title="t", software_release_uri="/sr/software.cfg", software_type="default",
        state="started", parameters={}, connection_parameters={}, ip_list=(), shared_instance_list=(),
        timestamp=1.0, software_path="/s", partition_path="/p", ipv6_range="2001:db8::1:0/112")
    rendered = render_instance_file(document)
    assert parse_instance_file(json.loads(json.dumps(rendered))) == document
    del rendered["ipv6_range"]
    assert parse_instance_file(rendered).ipv6_range is None
    with pytest.raises(MalformedDocument, match="ipv6_range"):
        parse_instance_file({**render_instance_file(document), "ipv6_range": 112})
