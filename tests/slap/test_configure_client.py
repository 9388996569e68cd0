"""``slapos configure client``: enrol a user and write a configuration the client reads back,
owner-only; refuse to overwrite; a refused token writes nothing.

First against a local HTTPS stand-in (`tests.support.enrolment_server`), then against a real
master with certificates (`tests.support.secure_master`), through the real ``slapos`` command."""
from __future__ import annotations

import configparser
import dataclasses
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from partita.master.pki import certificates as master_pki
from partita.slap.cli.main import cli
from partita.slap.client import MasterClient, connect
from partita.slap.config import client_config, read_config
from partita.slap.enrolment import load_certificate, load_key, matches_key
from partita.slap.tokens import parse_token
from tests.support.enrolment_server import EnrolmentServer
from tests.support.secure_master import SecureMaster, start_secure_master
from tests.support.server import SLAPOS


@pytest.fixture
def server() -> Iterator[EnrolmentServer]:
    with EnrolmentServer() as running:
        yield running


def configure(cfg: Path, url: str, token: str, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["configure", "client", "--token", token, "--master-url", url,
                                    "--cfg", str(cfg), *extra])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_it_writes_a_configuration_the_client_reads(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "home" / ".slapos" / "slapos-client.cfg"
    done = configure(cfg, server.url, server.token("user", "alice"))
    assert done.exit_code == 0, done.output
    assert "enrolled as user alice" in done.output
    directory = cfg.parent
    assert mode(directory) == 0o700 and mode(cfg) == 0o600 and mode(directory / "client.key") == 0o600
    config = client_config(read_config(str(cfg), client=True))
    assert config.master_url == server.url
    assert (config.key_file, config.cert_file) == (str(directory / "client.key"), str(directory / "client.crt"))
    key = load_key(Path(config.key_file).read_bytes())
    assert matches_key(key, load_certificate(Path(config.cert_file).read_bytes()))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(cfg)
    assert parser["slapos"]["partita_ca_file"] == str(directory / "master-ca.crt")
    assert "master_ca_file" not in parser["slapos"]  # slapos.core 1.26.1 raises on it
    assert parser["slapconsole"]["key_file"] == config.key_file
    assert parser["slapconsole"]["cert_file"] == config.cert_file
    ca = load_certificate((directory / "master-ca.crt").read_bytes())
    assert master_pki.fingerprint(ca) == server.fingerprint


def test_an_existing_configuration_is_kept_without_force(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "slapos-client.cfg"
    assert configure(cfg, server.url, server.token("user", "alice")).exit_code == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    token = server.token("user", "alice")
    done = configure(cfg, server.url, token)
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [f"slapos: error: {cfg} exists; give --force to replace "
                                                "the client configuration"]
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert token in server.tokens  # refused before the token was used
    forced = configure(cfg, server.url, token, "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "client.key").read_bytes() != before["client.key"]


def test_a_refused_token_writes_nothing(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "new" / "slapos-client.cfg"
    token = server.token("user", "alice")
    done = configure(cfg, server.url, "0" * 12 + token[12:])  # not one the master made
    assert done.exit_code == 1
    assert done.output.count("\n") == 1 and "already used" in done.output
    assert not cfg.parent.exists()


def test_a_token_of_another_master_is_refused_before_it_is_sent(server: EnrolmentServer, tmp_path: Path) -> None:
    other = master_pki.fingerprint(master_pki.new_ca().certificate)
    done = configure(tmp_path / "c.cfg", server.url, server.token("user", "alice", fingerprint=other))
    assert done.exit_code == 1
    assert other in done.output and server.fingerprint in done.output
    assert server.posts("slapos.post.v0.enrolment") == []
    assert list(tmp_path.iterdir()) == []


def test_a_computer_token_is_not_a_user_configuration(server: EnrolmentServer, tmp_path: Path) -> None:
    done = configure(tmp_path / "c.cfg", server.url, server.token("computer", "COMP-1"))
    assert done.exit_code == 1 and "slapos node register" in done.output
    assert list(tmp_path.iterdir()) == []


def test_a_plain_http_master_is_refused(tmp_path: Path) -> None:
    done = configure(tmp_path / "c.cfg", "http://127.0.0.1:1", "x")
    assert done.exit_code == 1 and "https://" in done.output


# -- against a real master (`slapos master start` over HTTPS) -----------------------------------

@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureMaster]:
    with start_secure_master(tmp_path_factory.mktemp("master")) as running:
        yield running


@pytest.fixture(scope="module")
def admin_cfg(master: SecureMaster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The admin, enrolled with the token `slapos master init` printed, by the real command."""
    cfg = tmp_path_factory.mktemp("admin") / ".slapos" / "slapos-client.cfg"
    done = slapos("configure", "client", "--token", master.admin_token, "--master-url", master.url,
                  "--cfg", str(cfg))
    assert done.returncode == 0, done.stderr
    return cfg


def slapos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, *args], capture_output=True, text=True, timeout=120)


def client_of(cfg: Path) -> MasterClient:
    config = client_config(read_config(str(cfg), client=True))
    return connect(config.master_url, key_file=config.key_file, cert_file=config.cert_file,
                   ca_file=config.ca_file)


def test_the_admin_enrols_with_the_token_master_init_printed(master: SecureMaster, admin_cfg: Path) -> None:
    with client_of(admin_cfg) as client:
        me = client.call("slapos.get.v0.whoami", {})
    assert me["kind"] == "user" and me["admin"] is True
    assert mode(admin_cfg) == 0o600 and mode(admin_cfg.parent / "client.key") == 0o600
    assert mode(admin_cfg.parent) == 0o700
    assert (admin_cfg.parent / "master-ca.crt").read_bytes() == master.ca_file.read_bytes()
    listed = slapos("computer", "list", "--cfg", str(admin_cfg))  # the client commands take it as it is
    assert listed.returncode == 0, listed.stderr


def test_a_reused_token_is_refused_and_writes_nothing(master: SecureMaster, admin_cfg: Path,
                                                    tmp_path: Path) -> None:
    cfg = tmp_path / ".slapos" / "slapos-client.cfg"
    done = slapos("configure", "client", "--token", master.admin_token, "--master-url", master.url,
                  "--cfg", str(cfg))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "already used" in done.stderr, done.stderr
    assert not cfg.parent.exists()


def test_a_token_with_a_wrong_fingerprint_is_refused_before_the_secret_is_sent(
        master: SecureMaster, admin_cfg: Path, tmp_path: Path) -> None:
    with client_of(admin_cfg) as client:
        made = client.call("slapos.post.v0.user", {"name": "bob", "admin": False})
    token = parse_token(made["token"], enrolment=True)
    other = master_pki.fingerprint(master_pki.new_ca().certificate)
    forged = dataclasses.replace(token, ca_fingerprint=other).text()
    cfg = tmp_path / "bob" / "slapos-client.cfg"
    done = slapos("configure", "client", "--token", forged, "--master-url", master.url, "--cfg", str(cfg))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert other in done.stderr and master.ca_fingerprint in done.stderr
    assert not cfg.parent.exists()
    # the secret never reached the master: the token is still unused, and works
    done = slapos("configure", "client", "--token", made["token"], "--master-url", master.url, "--cfg", str(cfg))
    assert done.returncode == 0, done.stderr
    with client_of(cfg) as client:
        assert client.call("slapos.get.v0.whoami", {})["name"] == "bob"
