"""``slapos start|stop|destroy TITLE`` against a real master: the state changes, nothing else (issue 11)."""
from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner, Result

from partita.slap.cli import waiting
from partita.slap.cli.main import cli
from partita.slap.cli.state_change import same_request
from partita.slap.cli.common import read_instance
from tests.slap.live_master import COMPUTER, SR, LiveMaster, master  # noqa: F401

KEPT = ("software_release_uri", "software_type", "parameters", "sla_parameters", "shared", "instance_guid",
        "compute_partition_id")


def run(master: LiveMaster, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--cfg", str(master.cfg)])


def kept(doc: dict) -> dict:
    return {key: doc[key] for key in KEPT}


def test_stop_then_start_keep_release_type_parameters_and_sla(master: LiveMaster) -> None:
    parameters = {"greeting": "Hi", "_": json.dumps({"port": 8081})}
    master.client.request_instance("web", SR, "web-type", parameters=parameters,
                                   sla_parameters={"computer_guid": COMPUTER})
    before = master.client.get_instance_tree("web")

    result = run(master, "stop", "web")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    stopped = master.client.get_instance_tree("web")
    assert stopped["state"] == "stopped"
    assert kept(stopped) == kept(before)

    result = run(master, "start", "web", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "started"
    started = master.client.get_instance_tree("web")
    assert started["state"] == "started"
    assert kept(started) == kept(before)
    assert started["parameters"] == parameters


def test_destroy_keeps_the_rest(master: LiveMaster) -> None:
    master.client.request_instance("web", SR, parameters={"a": "1"})
    result = run(master, "destroy", "web")
    assert result.exit_code == 0, result.output
    doc = master.client.get_instance_tree("web")
    assert doc["state"] == "destroyed"
    assert doc["parameters"] == {"a": "1"} and doc["software_release_uri"] == SR


def test_an_unknown_title_is_one_error_line_naming_it(master: LiveMaster) -> None:
    for verb in ("start", "stop", "destroy"):
        result = run(master, verb, "nope")
        assert result.exit_code == 1, result.output
        assert result.stderr.strip().splitlines() == [
            "slapos: error: no instance titled 'nope' (slapos list shows yours)"]
    assert master.client.list_instance_trees() == []


def test_stop_wait_returns_once_the_node_reports_stopped(master: LiveMaster,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.1)
    doc = master.client.request_instance("web", SR)
    master.act_as_node(doc["instance_guid"])
    node = threading.Timer(0.5, master.act_as_node, args=(doc["instance_guid"],), kwargs={"state": "stopped"})
    node.start()
    try:
        result = run(master, "stop", "web", "--wait", "--timeout", "20")
    finally:
        node.join()
    assert result.exit_code == 0, result.output
    assert "waiting: started" in result.stderr  # what it showed until the node stopped it
    assert master.client.get_instance_tree("web")["reported_state"] == "stopped"


def test_same_request_changes_only_the_state(master: LiveMaster) -> None:
    raw = master.client.request_instance("web", SR, "t", parameters={"k": "v"},
                                         sla_parameters={"computer_guid": COMPUTER}, shared=False)
    doc = read_instance(raw)
    want = same_request(doc, "stopped")
    assert (want.title, want.software_release_uri, want.software_type, want.parameters, want.sla_parameters,
            want.shared, want.state) == ("web", SR, "t", {"k": "v"}, {"computer_guid": COMPUTER}, False, "stopped")
