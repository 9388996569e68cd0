"""The OpenAPI document (master/api/openapi.yaml) and its agreement with the JSON API's routes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from flask import Flask
from jsonschema import Draft202012Validator

from partita.master.api import json_rpc, openapi
from partita.master.app import create_app
from partita.master.db import migrate
from partita.master.db.database import Database
from partita.master.settings import AppSettings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    db = Database(f"sqlite:///{tmp_path / 'master.db'}")
    migrate.upgrade(db.engine)
    return create_app(db, AppSettings(mode="proxy", computer_id="local_computer"))


def _routed_methods(app: Flask) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("json_rpc.") and rule.rule.startswith("/slapos.")}


def test_document_loads_and_has_the_openapi_skeleton() -> None:
    document = openapi.document()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["paths"]
    assert yaml.safe_load(openapi.DOCUMENT_PATH.read_text()) == document


def test_every_route_is_documented_and_every_documented_path_is_routed(app: Flask) -> None:
    routed = _routed_methods(app)
    documented = set(openapi.document()["paths"])
    assert routed == documented
    assert routed == {f"/{name}" for name in json_rpc.METHODS}


def test_every_method_is_post_only_with_a_json_request_and_a_200_answer() -> None:
    for path, item in openapi.document()["paths"].items():
        assert set(item) & HTTP_METHODS == {"post"}, path
        operation = item["post"]
        assert operation["requestBody"]["required"] is True, path
        assert "application/json" in operation["requestBody"]["content"], path
        assert "200" in operation["responses"], path
        assert operation.get("operationId"), path


def test_every_request_schema_is_a_closed_object_and_valid_json_schema() -> None:
    for path, item in openapi.document()["paths"].items():
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object", path
        assert schema["additionalProperties"] is False, path


def test_every_component_schema_is_valid_json_schema() -> None:
    for name, schema in openapi.document()["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as error:  # pragma: no cover - the message names the schema
            raise AssertionError(f"components/schemas/{name}: {error}") from error


def test_every_reference_resolves() -> None:
    document = openapi.document()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in set(refs(document)):
        assert ref.startswith("#/"), ref
        node: object = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]


def test_every_response_and_request_validator_builds() -> None:
    for path, item in openapi.document()["paths"].items():
        method = path[1:]
        openapi.request_validator(method)
        for status in item["post"]["responses"]:
            openapi.response_validator(method, int(status))


def test_partita_extensions_are_marked() -> None:
    paths = openapi.document()["paths"]
    for method in ("slapos.get.v0.compute_node_state", "slapos.wait.v0.compute_node_change"):
        assert paths[f"/{method}"]["post"]["x-partita"] is True


def test_request_validation_gives_slapproxy_messages() -> None:
    with pytest.raises(Exception, match=r"^'instance_guid' is a required property$"):
        openapi.validate_request("slapos.get.v0.software_instance", {})
    openapi.validate_request("slapos.get.v0.software_instance", {"instance_guid": "SOFTINST-1"})


def test_document_is_served_as_yaml_and_json(app: Flask) -> None:
    client = app.test_client()
    as_yaml = client.get("/openapi.yaml")
    assert as_yaml.status_code == 200 and as_yaml.mimetype == "application/yaml"
    assert yaml.safe_load(as_yaml.get_data(as_text=True)) == openapi.document()
    as_json = client.get("/openapi.json")
    assert as_json.status_code == 200 and as_json.mimetype == "application/json"
    assert json.loads(as_json.get_data(as_text=True)) == openapi.document()
