"""``slapos info``, ``slapos list`` and their SlapOS names ``service info|list``."""
from __future__ import annotations

import json

from click.testing import CliRunner, Result

from partita.slap.cli.main import cli
from tests.slap.live_master import SR, LiveMaster, master  # noqa: F401

INFO_KEYS = {"title", "state", "partition", "computer", "software_release", "software_type",
             "status_reason", "parameters", "connection_parameters"}


def run(master: LiveMaster, *args: str) -> Result:
    """The command, its output not a terminal and no $COLUMNS (pytest-xdist's workers set it)."""
    return CliRunner(env={"COLUMNS": None}).invoke(cli, [*args, "--cfg", str(master.cfg)])


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


LONG_SR = ("https://git.example.org/partita/software-releases/raw/branch/main/software/"
           "a-web-application-with-a-long-name/software.cfg")
TRACEBACK = ("buildout failed: Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "ValueError: a long explanation of what went wrong in the instance profile, over many words")


def test_list_is_readable_at_80_columns(master: LiveMaster) -> None:
    """Issue 11: long URLs shortened in the middle, status reasons on one bounded line."""
    guid = master.client.request_instance("an-instance-with-a-rather-long-title", LONG_SR)["instance_guid"]
    master.client.supply("local_computer", LONG_SR)
    master.client.report_software_installation_state("local_computer", LONG_SR, "available")
    master.client.report_instance_state(guid, "error", TRACEBACK)
    master.client.request_instance("web", SR)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["list", "--cfg", str(master.cfg)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    assert len(lines) == 4  # header, rule, one line per instance: nothing wrapped
    row = lines[2]
    assert "https://gi…/software.cfg" in row
    assert "buildout fai…" in row and "Traceback" not in result.stdout
    assert lines[3].split()[:2] == ["web", "started"]
    # the JSON keeps every value whole
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["list", "--cfg", str(master.cfg), "--format", "json"])
    rows = {row["title"]: row for row in json.loads(result.stdout)}
    assert rows["an-instance-with-a-rather-long-title"]["software_release"] == LONG_SR


def test_info_shows_the_status_reason_on_one_line(master: LiveMaster) -> None:
    guid = master.client.request_instance("web", SR)["instance_guid"]
    master.act_as_node(guid)
    master.client.report_instance_state(guid, "error", TRACEBACK)
    result = run(master, "info", "web")
    assert result.exit_code == 0, result.output
    status = [line.split(None, 1)[1] for line in result.stdout.splitlines() if line.strip().startswith("status")]
    assert status == [" | ".join(line.strip() for line in TRACEBACK.splitlines())]
