"""``slapos node register`` (node.registration, node.cli.register) against a local HTTPS stand-in:
the configuration it writes is the one the node reads, its files and modes, registering again."""
from __future__ import annotations

import configparser
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from partita.node.config import node_config
from partita.node.registration import check_kept_package_index, registration_target
from partita.slap.config import read_config
from partita.slap.enrolment import load_certificate, load_key, matches_key
from partita.slap.cli.main import cli
from partita.slap.errors import Conflict
from tests.support.enrolment_server import EnrolmentServer


@pytest.fixture
def server() -> Iterator[EnrolmentServer]:
    with EnrolmentServer() as running:
        yield running


def register(cfg: Path, url: str, token: str, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["node", "register", "--token", token, "--master-url", url,
                                    "--cfg", str(cfg), *extra])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_register_writes_the_configuration_the_node_reads(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "slapos.cfg"
    done = register(cfg, server.url, server.token("computer", "COMP-7"), "--partition-number", "3",
                    "--ipv4-local-network", "127.0.42.0/24", "--ipv6-local-network", "fd70:6172:7469:42::/64",
                    "--instance-root", str(tmp_path / "srv"),
                    "--software-root", str(tmp_path / "opt"))
    assert done.exit_code == 0, done.output
    assert "registered as computer COMP-7" in done.output
    config = node_config(read_config(str(cfg)))
    ssl = cfg.parent / "ssl"
    assert (config.computer_id, config.master_url) == ("COMP-7", server.url)
    assert (config.key_file, config.cert_file, config.ca_file) == (
        str(ssl / "computer.key"), str(ssl / "computer.crt"), str(ssl / "master-ca.crt"))
    assert config.certificate_repository_path == ssl / "partition_pki"
    assert (config.instance_root, config.software_root) == (tmp_path / "srv", tmp_path / "opt")
    assert (config.partition_amount, config.ipv4_local_network) == (3, "127.0.42.0/24")
    assert (config.ipv6_local_network, config.ipv6_configured) == ("fd70:6172:7469:42::/64", True)
    assert mode(ssl / "computer.key") == 0o600 and mode(ssl / "computer.crt") == 0o644
    assert mode(ssl) == 0o711 and mode(ssl / "partition_pki") == 0o711
    assert matches_key(load_key((ssl / "computer.key").read_bytes()),
                       load_certificate((ssl / "computer.crt").read_bytes()))
    assert "master_ca_file" not in cfg.read_text()


def test_registering_again_replaces_the_key_and_keeps_the_rest(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "slapos.cfg"
    assert register(cfg, server.url, server.token("computer", "COMP-1")).exit_code == 0
    before = snapshot(tmp_path)
    done = register(cfg, server.url, server.token("computer", "COMP-1"))
    assert done.exit_code == 0, done.output
    assert "registered again as computer COMP-1" in done.output
    after = snapshot(tmp_path)
    assert after["slapos.cfg"] == before["slapos.cfg"]
    assert after["ssl/computer.key"] != before["ssl/computer.key"]
    assert after["ssl/computer.crt"] != before["ssl/computer.crt"]
    assert matches_key(load_key(after["ssl/computer.key"]), load_certificate(after["ssl/computer.crt"]))


def test_a_token_for_another_computer_changes_nothing(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "slapos.cfg"
    assert register(cfg, server.url, server.token("computer", "COMP-1")).exit_code == 0
    before = snapshot(tmp_path)
    done = register(cfg, server.url, server.token("computer", "COMP-2"))
    assert done.exit_code == 1 and done.output.count("\n") == 1
    assert "COMP-2" in done.output and "COMP-1" in done.output and "--force" in done.output
    assert snapshot(tmp_path) == before
    forced = register(cfg, server.url, server.token("computer", "COMP-3"), "--force")
    assert forced.exit_code == 0, forced.output
    assert node_config(read_config(str(cfg))).computer_id == "COMP-3"


def test_a_configuration_without_certificates_is_kept_without_force(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "slapos.cfg"
    cfg.write_text("[slapos]\ncomputer_id = local_computer\nmaster_url = http://127.0.0.1:8080\n")
    token = server.token("computer", "COMP-1")
    done = register(cfg, server.url, token)
    assert done.exit_code == 1 and "--force" in done.output
    assert token in server.tokens  # refused before the token was used
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slapos.cfg"]


def test_a_user_token_registers_nothing(server: EnrolmentServer, tmp_path: Path) -> None:
    done = register(tmp_path / "etc" / "slapos.cfg", server.url, server.token("user", "alice"))
    assert done.exit_code == 1 and "slapos configure client" in done.output
    assert not (tmp_path / "etc").exists()


def test_bad_options_are_refused_before_the_token_is_used(server: EnrolmentServer, tmp_path: Path) -> None:
    token = server.token("computer", "COMP-1")
    done = register(tmp_path / "slapos.cfg", server.url, token, "--partition-number", "0")
    assert done.exit_code == 1 and "partition number" in done.output
    assert token in server.tokens


def test_an_existing_node_of_another_master_is_a_conflict(tmp_path: Path) -> None:
    existing = configparser.ConfigParser()
    existing.read_string("[slapos]\ncomputer_id = C\nmaster_url = https://a\nkey_file = k\ncert_file = c\n"
                         "partita_ca_file = ca\ncertificate_repository_path = pki\n")
    with pytest.raises(Conflict, match="is a node of https://a, not https://b"):
        registration_target(tmp_path / "slapos.cfg", existing, "https://b", force=False)
    target = registration_target(tmp_path / "slapos.cfg", existing, "https://a", force=False)
    assert (target.computer_id, target.write_config, target.files.key) == ("C", False, tmp_path / "k")


def test_registering_again_refuses_a_package_index_it_would_not_write(tmp_path: Path) -> None:
    existing = configparser.ConfigParser()
    existing.read_string("[slapos]\ncomputer_id = C\nmaster_url = https://a\nkey_file = k\ncert_file = c\n"
                         "partita_ca_file = ca\ncertificate_repository_path = pki\n"
                         "package_index = https://a/packages/simple/\n")
    target = registration_target(tmp_path / "slapos.cfg", existing, "https://a", force=False)
    check_kept_package_index(existing, target, None)
    check_kept_package_index(existing, target, "https://a/packages/simple/")  # the same: nothing to say
    with pytest.raises(Conflict, match="its package_index is https://a/packages/simple/, not https://m/simple/"):
        check_kept_package_index(existing, target, "https://m/simple/")
    forced = registration_target(tmp_path / "slapos.cfg", existing, "https://a", force=True)
    check_kept_package_index(existing, forced, "https://m/simple/")  # a new configuration is written
