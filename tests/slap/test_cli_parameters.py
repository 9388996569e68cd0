"""Pure helpers of the request command: greedy k=v options, parameters files, serialisation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.slap.cli.common import decode_underscore
from partita.slap.cli.parameters import expand_greedy, parse_pairs, read_parameters_file, serialise
from partita.slap.errors import ValidationError

FLAGS = ("--parameters", "--node")


@pytest.mark.parametrize(("args", "expected"), [
    (["--parameters", "a=1", "b=2", "T", "U"], ["--parameters", "a=1", "--parameters", "b=2", "T", "U"]),
    (["T", "U", "--parameters", "a=1", "b=2", "--type", "x"],
     ["T", "U", "--parameters", "a=1", "--parameters", "b=2", "--type", "x"]),
    (["--parameters=a=1", "b=2"], ["--parameters=a=1", "--parameters", "b=2"]),
    (["--node", "computer_guid=C", "--parameters", "a=1", "x=2"],
     ["--node", "computer_guid=C", "--parameters", "a=1", "--parameters", "x=2"]),
    (["--parameters", "a=1", "--", "b=2"], ["--parameters", "a=1", "--", "b=2"]),
    (["--parameters", "noequal", "b=2"], ["--parameters", "noequal", "--parameters", "b=2"]),
    (["--type", "a=1", "b=2"], ["--type", "a=1", "b=2"]),
])
def test_expand_greedy(args: list[str], expected: list[str]) -> None:
    assert expand_greedy(args, FLAGS) == expected


def test_parse_pairs() -> None:
    assert parse_pairs(["a=1", "b=x=y", "c="], "--parameters") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ValidationError, match="KEY=VALUE"):
        parse_pairs(["nope"], "--parameters")
    with pytest.raises(ValidationError):
        parse_pairs(["=v"], "--node")


def test_serialise() -> None:
    assert serialise({"a": "1"}) == {"a": "1"}
    wrapped = serialise({"a": 1, "b": {"c": [1]}})
    assert list(wrapped) == ["_"] and json.loads(wrapped["_"]) == {"a": 1, "b": {"c": [1]}}
    assert json.loads(serialise({"a": "1"}, "json-in-xml")["_"]) == {"a": "1"}
    assert serialise({"a": 1, "b": True}, "xml") == {"a": "1", "b": "True"}
    with pytest.raises(ValidationError, match="'a' is a mapping: --force-serialisation xml"):
        serialise({"a": {"b": 1}}, "xml")


def test_serialise_follows_the_declared_serialisation() -> None:
    """Issue 11: a release declaring xml gets typed values as strings, not json-in-xml."""
    assert serialise({"port": 8081, "tls": False, "name": None}, declared="xml") == {
        "port": "8081", "tls": "False", "name": ""}
    with pytest.raises(ValidationError, match="'ports' is a list: the software release declares xml"):
        serialise({"ports": [1, 2]}, declared="xml")
    wrapped = serialise({"greeting": "Hi"}, declared="json-in-xml")
    assert list(wrapped) == ["_"] and json.loads(wrapped["_"]) == {"greeting": "Hi"}
    assert serialise({"_": '{"a": 1}'}, declared="json-in-xml") == {"_": '{"a": 1}'}
    assert serialise({"port": 8081}, force="json-in-xml", declared="xml") == {"_": '{\n  "port": 8081\n}'}
    assert serialise({"port": 8081}, force="xml", declared="json-in-xml") == {"port": "8081"}


def test_read_parameters_file(tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text("a: 1\nb: [x]\n")
    assert read_parameters_file(str(tmp_path / "p.yml")) == {"a": 1, "b": ["x"]}
    (tmp_path / "p.xml").write_text("<instance/>")
    with pytest.raises(ValidationError, match=r"\.json, \.yaml"):
        read_parameters_file(str(tmp_path / "p.xml"))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValidationError, match="bad parameters file"):
        read_parameters_file(str(tmp_path / "bad.json"))
    with pytest.raises(ValidationError, match="cannot read"):
        read_parameters_file(str(tmp_path / "missing.json"))


def test_decode_underscore() -> None:
    assert decode_underscore({"_": '{"url": "x"}'}) == {"url": "x"}
    assert decode_underscore({"_": "not json", "a": "b"}) == {"_": "not json", "a": "b"}
    assert decode_underscore({"_": "[1, 2]"}) == {"_": [1, 2]}
    assert decode_underscore(None) == {}
