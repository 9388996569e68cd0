"""``slapos request`` against a real master: output, exit statuses, parameters, SLA, --wait."""
from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from partita.slap.cli import waiting
from partita.slap.cli.main import cli
from partita.slap.cli.waiting import is_ready
from partita.slap.wire.instance import InstanceDocument
from tests.slap.live_master import COMPUTER, SR, LiveMaster, master  # noqa: F401


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def request(master: LiveMaster, *args: str) -> Result:
    return run("request", "--cfg", str(master.cfg), *args)


def test_request_prints_state_partition_and_connection_parameters(master: LiveMaster) -> None:
    result = request(master, "web", SR)
    assert result.exit_code == 0, result.output
    assert "slappart0 on local_computer" in result.stdout
    assert "started" in result.stdout
    guid = master.client.get_instance_tree("web")["instance_guid"]
    master.act_as_node(guid, {"url": "http://127.0.1.1:8080/", "password": "s3cret"})
    result = request(master, "web", SR)
    assert result.exit_code == 0, result.output
    assert "http://127.0.1.1:8080/" in result.stdout
    assert "s3cret" in result.stdout


def test_request_decodes_json_in_xml_connection_parameters(master: LiveMaster) -> None:
    request(master, "web", SR)
    guid = master.client.get_instance_tree("web")["instance_guid"]
    master.act_as_node(guid, {"_": json.dumps({"url": "http://x/", "port": 8080})})
    result = request(master, "web", SR, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["connection_parameters"] == {"url": "http://x/", "port": 8080}


def test_request_without_free_partition_exits_2_and_says_why(master: LiveMaster) -> None:
    for i in range(3):
        master.client.request_instance(f"busy{i}", SR)
    result = request(master, "extra", SR)
    assert result.exit_code == 2, result.output
    assert "waiting for a free partition" in result.stderr
    assert "Traceback" not in result.output


def test_parameters_take_several_pairs_after_one_flag(master: LiveMaster) -> None:
    result = request(master, "--parameters", "a=1", "b=x=y", "web", SR, "--type", "t1")
    assert result.exit_code == 0, result.output
    doc = master.client.get_instance_tree("web")
    assert doc["parameters"] == {"a": "1", "b": "x=y"}
    assert doc["software_type"] == "t1"
    result = request(master, "web", SR, "--type", "t1", "--parameters", "a=2", "c=3", "--parameters", "d=4")
    assert result.exit_code == 0, result.output
    assert master.client.get_instance_tree("web")["parameters"] == {"a": "2", "c": "3", "d": "4"}


def test_parameters_file_json_nested_is_sent_as_json_in_xml(master: LiveMaster, tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text(json.dumps({"name": "x", "ports": [1, 2], "tls": {"on": True}}))
    result = request(master, "web", SR, "--parameters-file", str(file))
    assert result.exit_code == 0, result.output
    parameters = master.client.get_instance_tree("web")["parameters"]
    assert list(parameters) == ["_"]
    assert json.loads(parameters["_"]) == {"name": "x", "ports": [1, 2], "tls": {"on": True}}


def test_parameters_file_yaml_of_strings_is_sent_flat(master: LiveMaster, tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("name: x\nurl: 'http://y/'\n")
    result = request(master, "web", SR, "--parameters-file", str(file))
    assert result.exit_code == 0, result.output
    assert master.client.get_instance_tree("web")["parameters"] == {"name": "x", "url": "http://y/"}


def test_parameters_file_must_hold_a_mapping(master: LiveMaster, tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("- a\n- b\n")
    result = request(master, "web", SR, "--parameters-file", str(file))
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("slapos: error: parameters file")
    assert len(result.stderr.strip().splitlines()) == 1


def test_node_filter_goes_to_sla(master: LiveMaster) -> None:
    result = request(master, "web", SR, "--node", f"computer_guid={COMPUTER}")
    assert result.exit_code == 0, result.output
    assert master.client.get_instance_tree("web")["sla_parameters"] == {"computer_guid": COMPUTER}
    result = request(master, "elsewhere", SR, "--node", "computer_guid=COMP-404")
    # not deployed, and the computer is named (a waiting reason, or an error once the master
    # refuses unknown computers, issue 11)
    assert result.exit_code in (1, 2), result.output
    assert "COMP-404" in result.stderr


def test_slave_request_is_shared_and_hosted(master: LiveMaster) -> None:
    assert request(master, "host", SR).exit_code == 0
    result = request(master, "route", SR, "--slave", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["shared"] is True
    assert doc["partition"] == "slappart0"


def test_state_stopped(master: LiveMaster) -> None:
    assert request(master, "web", SR).exit_code == 0
    result = request(master, "web", SR, "--state", "stopped")
    assert result.exit_code == 0, result.output
    assert master.client.get_instance_tree("web")["state"] == "stopped"


def test_destroying_an_unknown_instance_is_not_an_error(master: LiveMaster) -> None:
    result = request(master, "ghost", SR, "--state", "destroyed")
    assert result.exit_code == 0, result.output


def test_both_parameter_sources_are_refused(master: LiveMaster, tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text("{}")
    result = request(master, "web", SR, "--parameters", "a=1", "--parameters-file", str(file))
    assert result.exit_code == 1
    assert "not both" in result.stderr


def test_wait_times_out_with_exit_2(master: LiveMaster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.1)
    result = request(master, "web", SR, "--wait", "--timeout", "0.5")
    assert result.exit_code == 2, result.output
    assert "not ready after 0.5s" in result.stderr


def test_wait_returns_once_the_node_reports(master: LiveMaster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.1)
    doc = master.client.request_instance("web", SR)
    node = threading.Timer(0.5, master.act_as_node, args=(doc["instance_guid"], {"url": "http://ready/"}))
    node.start()
    try:
        result = request(master, "web", SR, "--wait", "--timeout", "20")
    finally:
        node.join()
    assert result.exit_code == 0, result.output
    assert "http://ready/" in result.stdout


def test_is_ready_rule() -> None:
    base = InstanceDocument(
        title="t", instance_guid="SOFTINST-1", software_release_uri=SR, software_type="default",
        state="started", connection_parameters={}, parameters={}, shared=False, root_instance_title="t",
        ip_list=(), full_ip_list=(), sla_parameters={}, computer_guid=COMPUTER,
        compute_partition_id="slappart0", processing_timestamp=0, access_status_message="",
        status_reason="started", reported_state="started", timestamp=1.0)

    def doc(**changes: object) -> InstanceDocument:
        return dataclasses.replace(base, **changes)

    assert is_ready(base)
    assert not is_ready(doc(compute_partition_id=None, status_reason="waiting for a free partition"))
    assert not is_ready(doc(reported_state=None, status_reason="software building"))
    assert not is_ready(doc(status_reason="promise check-port failing: refused"))
    assert not is_ready(doc(state="stopped"))
    assert is_ready(doc(state="stopped", reported_state="stopped", status_reason="stopped"))
    assert is_ready(doc(state="destroyed", compute_partition_id=None))
    shared = doc(shared=True, reported_state=None, status_reason="hosted by instance h")
    assert not is_ready(shared)
    assert is_ready(dataclasses.replace(shared, connection_parameters={"url": "x"}))


# -- issue 11: the release's declared serialisation ------------------------------------------------

HELLO_WEB = str(Path(__file__).resolve().parents[2] / "software-releases" / "hello-web" / "software.cfg")


def write_json(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_typed_parameters_follow_a_release_declaring_xml(master: LiveMaster, tmp_path: Path) -> None:
    """What the user did: {"port": 8081} for hello-web, whose software.cfg.json says "xml"."""
    file = write_json(tmp_path / "p.json", {"port": 8081, "greeting": "Hi"})
    result = request(master, "hello", HELLO_WEB, "--parameters-file", file)
    assert result.exit_code == 0, result.output
    assert master.client.get_instance_tree("hello")["parameters"] == {"port": "8081", "greeting": "Hi"}
    info = run("info", "hello", "--cfg", str(master.cfg), "--format", "json")
    assert json.loads(info.stdout)["parameters"] == {"port": "8081", "greeting": "Hi"}


def test_nested_parameters_for_a_release_declaring_xml_are_one_error_line(master: LiveMaster,
                                                                         tmp_path: Path) -> None:
    file = write_json(tmp_path / "p.json", {"ports": [8081, 8082]})
    result = request(master, "hello", HELLO_WEB, "--parameters-file", file)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "slapos: error: parameter 'ports' is a list: the software release declares xml serialisation, "
        "which sends only strings, numbers and booleans"]
    assert master.client.list_instance_trees() == []


def test_a_release_declaring_json_in_xml_gets_underscore(master: LiveMaster, tmp_path: Path) -> None:
    sr = tmp_path / "sr"
    sr.mkdir()
    (sr / "software.cfg").write_text("[buildout]\nparts =\n")
    write_json(sr / "software.cfg.json", {"name": "typed", "serialisation": "json-in-xml"})
    file = write_json(tmp_path / "p.json", {"greeting": "Hi"})  # strings only: still wrapped
    result = request(master, "typed", str(sr / "software.cfg"), "--parameters-file", file)
    assert result.exit_code == 0, result.output
    stored = master.client.get_instance_tree("typed")["parameters"]
    assert list(stored) == ["_"] and json.loads(stored["_"]) == {"greeting": "Hi"}
    info = run("info", "typed", "--cfg", str(master.cfg), "--format", "json")
    assert json.loads(info.stdout)["parameters"] == {"greeting": "Hi"}


def test_force_serialisation_wins_over_the_declared_one(master: LiveMaster, tmp_path: Path) -> None:
    file = write_json(tmp_path / "p.json", {"port": 8081})
    result = request(master, "hello", HELLO_WEB, "--parameters-file", file, "--force-serialisation", "json-in-xml")
    assert result.exit_code == 0, result.output
    assert list(master.client.get_instance_tree("hello")["parameters"]) == ["_"]


def test_info_shows_underscore_as_the_instance_of_an_xml_release_gets_it(master: LiveMaster) -> None:
    """Stored before the fix: json-in-xml for a release that reads flat strings."""
    master.client.request_instance("hello", HELLO_WEB, parameters={"_": json.dumps({"port": 8081})})
    result = run("info", "hello", "--cfg", str(master.cfg), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["parameters"] == {"_": '{"port": 8081}'}
    assert "declares xml serialisation" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- issue 11: a request that drops parameters warns -------------------------------------------

def test_request_without_parameters_warns_it_drops_them(master: LiveMaster) -> None:
    assert request(master, "web", SR, "--parameters", "greeting=Hi", "port=8081").exit_code == 0
    result = request(master, "web", SR, "--state", "stopped")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: 'web' has parameters (greeting, port) and this request sends none: they are "
                        "dropped; to change only its state, use slapos start|stop|destroy web"]
    assert master.client.get_instance_tree("web")["parameters"] == {}
    # nothing to drop: no warning, for a new instance nor for one without parameters
    assert "warning" not in request(master, "web", SR).stderr
    assert "warning" not in request(master, "new", SR).stderr
