"""partita:slapconfiguration against the release's JSON schema (software.cfg.json), through real buildout runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import (check_fails, check_ok, instance_document, listing, read_values,
                                   run_buildout, write_partition)

HELLO_WEB = Path(__file__).resolve().parents[2] / "software-releases" / "hello-web" / "software.cfg"
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "greeting": {"type": "string", "default": "Hello"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 8080},
        "debug": {"type": "boolean", "default": False},
        "users": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["users"],
    "additionalProperties": False,
}
NAMES = ["configuration", "configuration.greeting", "configuration.port", "configuration.debug"]


def release(directory: Path, serialisation: str = "xml") -> str:
    """A release directory with a descriptor giving the `default` type `SCHEMA`; its URL."""
    directory.mkdir()
    (directory / "software.cfg.json").write_text(json.dumps({
        "name": "test", "serialisation": serialisation,
        "software-type": {"default": {"title": "Default", "request": "schemas/input.json",
                                      "response": "schemas/output.json"}},
    }))
    (directory / "schemas").mkdir()
    (directory / "schemas" / "input.json").write_text(json.dumps(SCHEMA))
    (directory / "schemas" / "output.json").write_text(json.dumps({"type": "object"}))
    return str(directory / "software.cfg")


def partition(tmp_path: Path, software_url: str, parameters: dict, *lines: str,
              software_type: str = "default", names: list[str] = NAMES) -> Path:
    directory = tmp_path / "partition"
    document = instance_document(directory, software_release_uri=software_url, parameters=parameters,
                                 software_type=software_type)
    profile = "\n".join(["[buildout]", "parts = values", "[slap-configuration]",
                         "recipe = partita:slapconfiguration", *lines,
                         "[values]", "recipe = partita:template", "url = values.in", "output = values.txt"])
    write_partition(directory, profile + "\n", document)
    (directory / "values.in").write_text(listing("slap-configuration", names))
    return directory


def test_text_parameters_are_typed_and_defaults_filled(toolchain: Toolchain, tmp_path: Path) -> None:
    url = release(tmp_path / "sr")
    directory = partition(tmp_path, url, {"port": "8081", "debug": "true", "users": ["ada"]},
                          "configuration.greeting = from the profile")
    check_ok(run_buildout(toolchain, directory))
    values = read_values(directory / "values.txt")
    assert json.loads(values["configuration"]) == {"greeting": "Hello", "port": 8081, "debug": True, "users": ["ada"]}
    assert (values["configuration.greeting"], values["configuration.port"], values["configuration.debug"]) == (
        "Hello", "8081", "true")  # the schema's default wins over the profile's


@pytest.mark.parametrize(("parameters", "expected"), [
    ({"port": "http", "users": []}, "[slap-configuration] parameter 'port': 'http' is not of type 'integer'"),
    ({"port": "0", "users": []}, "parameter 'port': 0 is less than the minimum of 1"),
    ({"users": [1]}, "parameter 'users.0': 1 is not of type 'string'"),
    ({}, "parameter 'users' is required"),
    ({"users": [], "colour": "red"}, "parameter 'colour' is not a parameter of this software type (known: debug, greeting, port, users)"),
])
def test_a_mismatch_fails_with_one_line_naming_the_field(toolchain: Toolchain, tmp_path: Path,
                                                         parameters: dict, expected: str) -> None:
    directory = partition(tmp_path, release(tmp_path / "sr"), parameters)
    error = check_fails(run_buildout(toolchain, directory), "[slap-configuration]", expected,
                        "software type 'default'")
    assert "\n" not in error
    assert not (directory / "values.txt").exists()


def test_json_in_xml_releases_are_decoded_then_checked(toolchain: Toolchain, tmp_path: Path) -> None:
    url = release(tmp_path / "sr", serialisation="json-in-xml")
    directory = partition(tmp_path, url, {"_": json.dumps({"port": 9000, "users": ["ada"]})})
    check_ok(run_buildout(toolchain, directory))
    assert read_values(directory / "values.txt")["configuration.port"] == "9000"


def test_the_explicit_jsonschema_option(toolchain: Toolchain, tmp_path: Path) -> None:
    url = release(tmp_path / "sr")
    directory = partition(tmp_path, "/nowhere/software.cfg", {"port": "x", "users": []},
                          f"jsonschema = {url}.json")
    check_fails(run_buildout(toolchain, directory), "parameter 'port'")
    directory = partition(tmp_path, url, {}, "jsonschema = /nowhere/software.cfg.json")
    check_fails(run_buildout(toolchain, directory), "[slap-configuration] option 'jsonschema'",
                "/nowhere/software.cfg.json does not exist")
    directory = partition(tmp_path, url, {}, "jsonschema = /nowhere/schema")
    check_fails(run_buildout(toolchain, directory), "option 'jsonschema' must name the release's descriptor")


@pytest.mark.parametrize(("lines", "software_type"), [
    (["validate-parameters = false"], "default"),
    ([], "other"),  # a type the descriptor does not describe
])
def test_nothing_is_checked_when_there_is_no_schema_to_use(toolchain: Toolchain, tmp_path: Path,
                                                           lines: list[str], software_type: str) -> None:
    directory = partition(tmp_path, release(tmp_path / "sr"), {"port": "x"}, *lines, software_type=software_type,
                          names=["configuration.port"])
    check_ok(run_buildout(toolchain, directory))
    assert read_values(directory / "values.txt")["configuration.port"] == "x"


def test_a_broken_schema_is_a_warning_found_by_default_and_an_error_when_named(toolchain: Toolchain,
                                                                             tmp_path: Path) -> None:
    """As on the master and the client, a release whose descriptor cannot be used is not checked;
    a descriptor the profile names explicitly must be usable."""
    url = release(tmp_path / "sr")
    (tmp_path / "sr" / "schemas" / "input.json").write_text('{"type": "object", "properties": {"a": {"type": 7}}}')
    result = check_ok(run_buildout(toolchain, partition(tmp_path, url, {}, names=["configuration"])))
    assert "parameters not checked" in result.output and "is not a valid JSON Schema" in result.output
    check_fails(run_buildout(toolchain, partition(tmp_path, url, {}, f"jsonschema = {url}.json")),
                "[slap-configuration] cannot use", "is not a valid JSON Schema")
    (tmp_path / "sr" / "schemas" / "input.json").unlink()
    result = check_ok(run_buildout(toolchain, partition(tmp_path, url, {}, names=["configuration"])))
    assert "the schema 'schemas/input.json' does not exist" in result.output
    check_fails(run_buildout(toolchain, partition(tmp_path, url, {}, f"jsonschema = {url}.json")),
                "the schema 'schemas/input.json' does not exist")


def test_hello_web_s_own_schema(toolchain: Toolchain, tmp_path: Path) -> None:
    directory = partition(tmp_path, str(HELLO_WEB), {"port": "8081"},
                          names=["configuration.greeting", "configuration.port"])
    check_ok(run_buildout(toolchain, directory))
    assert read_values(directory / "values.txt") == {"configuration.greeting": "Hello", "configuration.port": "8081"}
    directory = partition(tmp_path, str(HELLO_WEB), {"port": "99999"})
    check_fails(run_buildout(toolchain, directory), "parameter 'port': 99999 is greater than the maximum")
