"""``slapos info``, ``slapos list`` and their SlapOS names ``service info|list``."""
from __future__ import annotations

import json

from click.testing import CliRunner, Result

from partita.slap.cli.main import cli
from tests.slap.live_master import SR, LiveMaster, master  # noqa: F401

INFO_KEYS = {"title", "state", "partition", "computer", "software_release", "software_type",
             "status_reason", "parameters", "connection_parameters"}


def run(master: LiveMaster, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--cfg", str(master.cfg)])


def test_info_json_has_the_documented_keys(master: LiveMaster) -> None:
    doc = master.client.request_instance("web", SR, parameters={"foo": "bar"})
    master.act_as_node(doc["instance_guid"], {"url": "http://127.0.1.1/"})
    result = run(master, "info", "web", "--format", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert INFO_KEYS <= set(info)
    assert info["partition"] == "slappart0"
    assert info["computer"] == "local_computer"
    assert info["state"] == "started"
    assert info["status_reason"] == "started"
    assert info["parameters"] == {"foo": "bar"}
    assert info["connection_parameters"] == {"url": "http://127.0.1.1/"}


def test_info_table_is_readable(master: LiveMaster) -> None:
    master.client.request_instance("web", SR, parameters={"foo": "bar"})
    result = run(master, "info", "web")
    assert result.exit_code == 0, result.output
    for text in ("web", "slappart0 on local_computer", SR, "Parameters:", "foo", "bar", "Connection parameters:"):
        assert text in result.stdout


def test_service_info_is_info(master: LiveMaster) -> None:
    master.client.request_instance("web", SR)
    result = run(master, "service", "info", "web", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "web"


def test_info_of_unknown_title_is_one_error_line(master: LiveMaster) -> None:
    result = run(master, "info", "nope")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slapos: error: ")
    assert "nope" in lines[0]


def test_list_shows_the_trees(master: LiveMaster) -> None:
    for i in range(4):  # the fourth waits for a partition
        master.client.request_instance(f"tree{i}", SR)
    result = run(master, "list")
    assert result.exit_code == 0, result.output
    for i in range(4):
        assert f"tree{i}" in result.stdout
    assert "slappart2 on local_computer" in result.stdout
    assert "waiting for a free partition" in result.stdout


def test_list_json_and_service_list(master: LiveMaster) -> None:
    master.client.request_instance("web", SR)
    result = run(master, "list", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["title"], r["partition"], r["software_release"]) for r in rows] == [("web", "slappart0", SR)]
    result = run(master, "service", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == rows


def test_list_when_empty(master: LiveMaster) -> None:
    result = run(master, "list")
    assert result.exit_code == 0, result.output
    assert "No instances." in result.stdout
