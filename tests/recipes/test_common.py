"""recipes.common: option parsing and file writing shared by the recipes."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from partita.recipes.common import as_option, flag, master_client, number, write_file
from partita.slap.wire.connection import parse_connection


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("Yes", True), ("1", True), ("off", False),
                                                 ("", False), (None, False)])
def test_flag(value: str | None, expected: bool) -> None:
    options = {} if value is None else {"shared": value}
    assert flag(options, "shared", "x") is expected


def test_number_defaults_and_parses() -> None:
    assert number({}, "period", "x", 60.0) == 60.0
    assert number({"period": "2.5"}, "period", "x", 60.0) == 2.5


def test_as_option_keeps_text_and_encodes_the_rest() -> None:
    assert [as_option(v) for v in ("a b", 8080, True, None, {"b": 1, "a": [2]})] == [
        "a b", "8080", "true", "null", '{"a": [2], "b": 1}']


def test_write_file_is_atomic_and_reports_changes(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "file"
    assert write_file(path, "one", 0o640) is True
    assert (path.read_text(), stat.S_IMODE(path.stat().st_mode)) == ("one", 0o640)
    before = path.stat().st_ino
    assert write_file(path, "one", 0o640) is False
    assert path.stat().st_ino == before  # untouched
    assert write_file(path, "one", 0o600) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_file(path, b"two", 0o600) is True
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["file"]  # no temporary file left


def test_the_master_client_uses_the_partitions_certificate_and_the_masters_ca() -> None:
    connection = parse_connection({
        "computer-id": "COMP-1", "partition-id": "slappart0", "server-url": "https://127.0.0.1:1",
        "key-file": "/pki/slappart0.key", "cert-file": "/pki/slappart0.crt", "partita-ca-file": "/ssl/ca.crt"})
    with master_client(connection) as client:
        assert client.session.cert == ("/pki/slappart0.crt", "/pki/slappart0.key")
        assert client.session.verify == "/ssl/ca.crt"


def test_without_certificates_the_master_client_is_the_proxys_partition() -> None:
    connection = parse_connection({"computer-id": "c", "partition-id": "slappart0", "server-url": "http://p"})
    with master_client(connection) as client:
        assert client.session.cert is None and client.session.verify is True
        assert "X-SlapPartition" in client.session.headers["Authorization"]
