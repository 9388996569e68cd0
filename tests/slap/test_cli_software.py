"""``slapos request`` checks parameters before sending and shows defaults; ``slapos software info``
and ``slapos software publish``; short names ``product.NAME`` (issue 12). Against a real master
on loopback (`tests.slap.live_master`)."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from partita.slap.cli.main import cli
from partita.slap.software_names import shipped_releases
from tests.slap.live_master import LiveMaster, master  # noqa: F401

HELLO_WEB = shipped_releases()["hello-web"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def titles(live: LiveMaster) -> list[str]:
    return [tree["title"] for tree in live.client.list_instance_trees()]


def test_request_refuses_bad_parameters_before_sending(master: LiveMaster) -> None:
    result = run("request", "--cfg", str(master.cfg), "web", HELLO_WEB, "--parameters", "port=70000")
    assert result.exit_code == 1
    assert result.stderr == "slapos: error: parameter 'port': 70000 is greater than the maximum of 65535\n"
    result = run("request", "--cfg", str(master.cfg), "web", HELLO_WEB, "--parameters", "colour=red")
    assert result.exit_code == 1 and "parameter 'colour' is not a parameter of this software type" in result.stderr
    assert titles(master) == []


def test_verbose_request_shows_the_defaults_the_instance_gets(master: LiveMaster) -> None:
    result = run("-v", "request", "--cfg", str(master.cfg), "web", HELLO_WEB, "--parameters", "port=8081")
    assert result.exit_code == 0, result.output
    assert "defaults the instance gets: greeting='Hello'" in result.stderr
    assert titles(master) == ["web"]


def test_help_parameters_shows_the_table_and_sends_nothing(master: LiveMaster) -> None:
    result = run("request", "--cfg", str(master.cfg), "web", HELLO_WEB, "--parameters", "port=8081",
                 "--help-parameters")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["port", "integer", "8080", "8081"] for line in lines), result.stdout
    assert any(line.split()[:4] == ["greeting", "string", "Hello", "(default)"] for line in lines), result.stdout
    assert titles(master) == []


def test_an_unusable_descriptor_warns_and_the_request_is_sent(master: LiveMaster, tmp_path: Path) -> None:
    release = tmp_path / "sr"
    release.mkdir()
    (release / "software.cfg").write_text("[buildout]\n")
    (release / "software.cfg.json").write_text("{broken")
    result = run("request", "--cfg", str(master.cfg), "web", str(release / "software.cfg"),
                 "--parameters", "port=70000")
    assert result.exit_code == 0, result.output
    assert "warning: not checking parameters" in result.stderr
    assert titles(master) == ["web"]


def test_request_by_short_name_resolves_on_the_master(master: LiveMaster) -> None:
    result = run("request", "--cfg", str(master.cfg), "web", "product.hello-web", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["software_release"] == HELLO_WEB
    bad = run("request", "--cfg", str(master.cfg), "web2", "product.hello-web", "--parameters", "port=0")
    assert bad.exit_code == 1 and "parameter 'port': 0 is less than the minimum of 1" in bad.stderr
    unknown = run("request", "--cfg", str(master.cfg), "web3", "product.nothing")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("slapos: error: unknown software release name 'product.nothing' (known: ")
    assert "product.hello-web" in unknown.stderr and len(unknown.stderr.splitlines()) == 1
    assert titles(master) == ["web"]


def test_software_info_prints_types_and_parameters(master: LiveMaster) -> None:
    result = run("software", "info", HELLO_WEB)
    assert result.exit_code == 0, result.output
    assert "software type 'default'" in result.stdout
    assert "serialisation: xml" in result.stdout
    port = [line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["port"]]
    assert port and port[0][:3] == ["port", "integer", "8080"]
    raw = run("software", "info", HELLO_WEB, "--format", "json")
    summary = json.loads(raw.stdout)
    assert summary["software_release"] == HELLO_WEB
    (default,) = summary["software_types"]
    assert {p["name"]: p.get("default") for p in default["parameters"]} == {"greeting": "Hello", "port": 8080}
    assert default["request"]["properties"]["port"]["maximum"] == 65535
    by_name = run("software", "info", "--cfg", str(master.cfg), "product.hello-web", "--type", "default")
    assert by_name.exit_code == 0 and HELLO_WEB in by_name.stdout


def test_software_info_errors_are_one_line(tmp_path: Path) -> None:
    missing = run("software", "info", str(tmp_path / "none" / "software.cfg"))
    assert missing.exit_code == 1 and "has no descriptor" in missing.stderr
    wrong_type = run("software", "info", HELLO_WEB, "--type", "nope")
    assert wrong_type.exit_code == 1
    assert wrong_type.stderr == f"slapos: error: no software type 'nope' in {HELLO_WEB} (known: default)\n"


def test_publish_then_request_by_the_published_name(master: LiveMaster, tmp_path: Path) -> None:
    result = run("software", "publish", "--cfg", str(master.cfg), "greeter", HELLO_WEB)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Published {HELLO_WEB} as product.greeter.\n"
    done = run("request", "--cfg", str(master.cfg), "g", "product.greeter", "--format", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["software_release"] == HELLO_WEB
    bad = run("software", "publish", "--cfg", str(master.cfg), "Bad Name", HELLO_WEB)
    assert bad.exit_code == 1 and "bad software release name" in bad.stderr
