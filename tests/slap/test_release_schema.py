"""`slap.release_schema` (the parameter schemas a descriptor declares, checked as the instance
reads them) and `slap.software_names` (short names, shipped releases) (issue 12)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from partita.slap import software_names
from partita.slap.errors import ValidationError
from partita.slap.software_descriptor import DescriptorProblem
from partita.slap.release_schema import (
    Descriptor, ParameterMismatch, SchemaProblem, SoftwareType, check_parameters, defaults_used, first_error,
    instance_parameters, load_descriptor, parameter_rows, relative_location, summary,
)

SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "description": "Who"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 8080},
        "debug": {"type": "boolean", "default": False},
        "ratio": {"type": ["number", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def descriptor(**types: SoftwareType) -> Descriptor:
    return Descriptor(location="/sr/software.cfg.json", types=tuple(types.values()))


def test_relative_locations_stay_at_the_descriptor_s_origin() -> None:
    assert relative_location("/opt/sr/software.cfg.json", "schemas/in.json") == "/opt/sr/schemas/in.json"
    assert relative_location("/opt/sr/software.cfg.json", "../common/in.json") == "/opt/common/in.json"
    assert relative_location("https://h/sr/software.cfg.json", "in.json") == "https://h/sr/in.json"
    assert relative_location("https://h/sr/software.cfg.json", "https://h/other/in.json") == "https://h/other/in.json"
    assert relative_location("file:///opt/sr/software.cfg.json", "in.json") == "/opt/sr/in.json"
    for base, reference in (("https://h/sr/software.cfg.json", "http://169.254.169.254/latest"),
                            ("https://h/sr/software.cfg.json", "https://other/in.json"),
                            ("https://h/sr/software.cfg.json", "file:///etc/passwd"),
                            ("/opt/sr/software.cfg.json", "http://127.0.0.1:8080/admin")):
        with pytest.raises(SchemaProblem, match="is not where the descriptor is"):
            relative_location(base, reference)


def test_text_parameters_are_typed_by_the_schema_as_the_instance_reads_them() -> None:
    typed = instance_parameters({"name": "a", "port": "8081", "debug": "yes", "ratio": "0.5", "x": "1"}, SCHEMA)
    assert typed == {"name": "a", "port": 8081, "debug": True, "ratio": 0.5, "x": "1"}
    assert instance_parameters({"port": "eighty"}, SCHEMA) == {"port": "eighty"}  # left for the check to name
    assert instance_parameters({"_": json.dumps({"port": 1, "tags": ["a"]})}, SCHEMA) == {"port": 1, "tags": ["a"]}
    with pytest.raises(ParameterMismatch, match="does not hold JSON"):
        instance_parameters({"_": "{"}, SCHEMA)
    with pytest.raises(ParameterMismatch, match="not hold a JSON object"):
        instance_parameters({"_": "[1]"}, SCHEMA)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"name": "a", "port": 70000}, "parameter 'port': 70000 is greater than the maximum of 65535"),
    ({"name": "a", "tags": [1]}, "parameter 'tags.0': 1 is not of type 'string'"),
    ({"port": 80}, "parameter 'name' is required"),
    ({"name": "a", "colour": "red"},
     "parameter 'colour' is not a parameter of this software type (known: debug, name, port, ratio, tags)"),
])
def test_first_error_names_the_field(parameters: dict, message: str) -> None:
    assert first_error(parameters, SCHEMA) == message


def test_a_broken_schema_is_a_schema_problem() -> None:
    with pytest.raises(SchemaProblem, match="not a valid JSON Schema"):
        first_error({}, {"type": "object", "properties": {"a": {"type": 7}}})
    with pytest.raises(SchemaProblem, match=r"\$ref cannot be resolved"):
        first_error({"a": 1}, {"properties": {"a": {"$ref": "defs.json#/a"}}})


def test_check_parameters_picks_the_type_and_its_shared_schema() -> None:
    shared = {"type": "object", "required": ["url"]}
    found = descriptor(main=SoftwareType(name="default", key="default", request=SCHEMA),
                       slave=SoftwareType(name="default", key="default-slave", shared=True, request=shared))
    assert check_parameters(found, "default", {"name": "a"}) == {"name": "a", "port": 8080, "debug": False}
    with pytest.raises(ParameterMismatch, match="parameter 'url' is required"):
        check_parameters(found, "default", {}, shared=True)
    assert check_parameters(found, "other", {"anything": 1}) is None
    assert defaults_used({"port": 1}, SCHEMA) == {"debug": False}


def test_load_descriptor_reads_every_schema_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "software.cfg").write_text("")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "in.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "software.cfg.json").write_text(json.dumps({
        "name": "demo", "serialisation": "json-in-xml",
        "software-type": {"default": {"title": "Main", "request": "schemas/in.json", "index": 0},
                          "other": {"description": "no schema"}}}))
    loaded = load_descriptor(str(tmp_path / "software.cfg"))
    assert loaded is not None and loaded.serialisation == "json-in-xml" and loaded.type_names() == ["default", "other"]
    assert loaded.find("default").request == SCHEMA and loaded.find("other").request is None
    data = summary(loaded)
    assert [t["software_type"] for t in data["software_types"]] == ["default", "other"]
    assert data["software_types"][0]["parameters"][1] == {
        "name": "port", "type": "integer", "required": False, "default": 8080, "description": ""}
    assert load_descriptor(str(tmp_path / "none.cfg")) is None
    (tmp_path / "schemas" / "in.json").unlink()
    with pytest.raises(SchemaProblem, match="does not exist"):
        load_descriptor(str(tmp_path / "software.cfg"))


def test_parameter_rows() -> None:
    rows = {row.name: row for row in parameter_rows(SCHEMA)}
    assert rows["name"].required and rows["name"].description == "Who" and not rows["name"].has_default
    assert rows["ratio"].type == "number|null"
    assert parameter_rows(None) == []


def test_short_names_and_shipped_releases(tmp_path: Path) -> None:
    assert software_names.split_name("product.hello-web") == "hello-web"
    for bad in ("product.", "product.Hello", "product.../x", "product.a b"):
        with pytest.raises(ValidationError, match="bad software release name"):
            software_names.split_name(bad)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "software.cfg").write_text("")
    (tmp_path / "not-a-release").mkdir()
    assert software_names.shipped_releases(tmp_path) == {"one": str(tmp_path / "one" / "software.cfg")}
    assert software_names.shipped_releases(tmp_path / "missing") == {}
    shipped = software_names.shipped_releases()
    assert {"hello-web", "tree"} <= set(shipped)
    assert str(software_names.unknown_name("x", ["b", "a"])) == \
        "unknown software release name 'product.x' (known: product.a, product.b)"


def test_a_fifo_or_a_directory_named_by_a_release_never_holds_the_reader(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.cfg.json")
    with pytest.raises(DescriptorProblem, match="fifo.cfg.json is not a regular file"):
        load_descriptor(str(tmp_path / "fifo.cfg"))
    (tmp_path / "dir.cfg.json").mkdir()
    with pytest.raises(DescriptorProblem, match="dir.cfg.json is not a regular file"):
        load_descriptor(str(tmp_path / "dir.cfg"))
