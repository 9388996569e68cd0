"""`node.package_index`: the variables every pip of the node gets, the public copy of the CA, the
``[slapos] package_index`` option and ``slapos node register --package-index`` (issue 13)."""
from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from partita.node import toolchain
from partita.node.config import NodeConfig, node_config
from partita.node.errors import SetupError
from partita.node.package_index import CA_COPY, certificates_of, pip_environment
from partita.slap.cli.main import cli
from partita.slap.config import read_config
from partita.slap.errors import ConfigurationError
from tests.support.enrolment_server import EnrolmentServer

CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAAAA==\n-----END CERTIFICATE-----"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"


def config(tmp_path: Path, index: str | None, ca: bytes | None = None) -> NodeConfig:
    ca_file = None
    if ca is not None:
        ca_file = tmp_path / "master-ca.crt"
        ca_file.write_bytes(ca)
        ca_file.chmod(0o600)  # root's only, as a node's may be
    (tmp_path / "opt").mkdir(exist_ok=True)
    return NodeConfig(computer_id="COMP-1", master_url="https://10.0.0.1:8443", instance_root=tmp_path / "srv",
                      software_root=tmp_path / "opt", ca_file=str(ca_file) if ca_file else None,
                      package_index=index)


def read_node_config(tmp_path: Path, lines: str) -> NodeConfig:
    path = tmp_path / "slapos.cfg"
    path.write_text(f"[slapos]\ncomputer_id = COMP-1\nmaster_url = https://m:1\n{lines}\n")
    return node_config(read_config(str(path)))


def test_without_an_index_pip_gets_nothing(tmp_path: Path) -> None:
    assert pip_environment(config(tmp_path, None, CERTIFICATE)) == {}


def test_an_http_index_needs_no_certificate(tmp_path: Path) -> None:
    assert pip_environment(config(tmp_path, "http://10.0.0.1/simple/", CERTIFICATE)) == {
        "PIP_INDEX_URL": "http://10.0.0.1/simple/", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CONFIG_FILE": os.devnull}
    assert not (tmp_path / "opt" / CA_COPY).exists()


def test_an_https_index_gets_a_public_copy_of_the_certificates_only(tmp_path: Path) -> None:
    index = "https://10.0.0.1:8443/packages/simple/"
    environment = pip_environment(config(tmp_path, index, KEY + CERTIFICATE + b"\n"))
    copy = tmp_path / "opt" / CA_COPY
    assert environment == {"PIP_INDEX_URL": index, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CERT": str(copy),
                           "PIP_CONFIG_FILE": os.devnull}
    assert copy.read_bytes() == CERTIFICATE + b"\n"  # no key, whatever else the file holds
    assert stat.S_IMODE(copy.stat().st_mode) == 0o644
    assert pip_environment(config(tmp_path, index, CERTIFICATE), for_node=True)["PIP_CERT"] == str(
        tmp_path / "master-ca.crt")


def test_the_copy_is_rewritten_only_when_it_changed_and_never_through_a_link(tmp_path: Path) -> None:
    index = "https://10.0.0.1:8443/packages/simple/"
    copy = tmp_path / "opt" / CA_COPY
    pip_environment(config(tmp_path, index, CERTIFICATE))
    inode = copy.stat().st_ino
    pip_environment(config(tmp_path, index, CERTIFICATE))
    assert copy.stat().st_ino == inode
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    copy.unlink()
    copy.symlink_to(victim)
    pip_environment(config(tmp_path, index, CERTIFICATE))
    assert victim.read_bytes() == b"keep" and not copy.is_symlink()


def test_a_ca_file_without_a_certificate_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="holds no certificate"):
        pip_environment(config(tmp_path, "https://10.0.0.1/simple/", KEY))
    assert certificates_of(b"junk") == b"\n"


@pytest.mark.parametrize("value", ["ftp://x/simple/", "packages/simple", "https://", "https://[::1/simple/",
                                   "https://a b/"])
def test_a_package_index_that_is_not_a_url_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"\[slapos\] package_index must be an http"):
        read_node_config(tmp_path, f"package_index = {value}")


def test_the_package_index_option_is_read(tmp_path: Path) -> None:
    assert read_node_config(tmp_path, "").package_index is None
    assert read_node_config(tmp_path, "package_index = https://m:1/packages/simple/").package_index == (
        "https://m:1/packages/simple/")


def test_the_toolchain_build_uses_the_index_instead_of_the_environment(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []

    def fake_run(command: Any, **options: Any) -> subprocess.CompletedProcess[str]:
        seen.append(options["env"])
        return subprocess.CompletedProcess(command, 1, "", "stop here")

    monkeypatch.setattr(toolchain.subprocess, "run", fake_run)
    monkeypatch.setenv("PIP_INDEX_URL", "https://elsewhere.invalid/simple/")
    monkeypatch.setenv("PIP_FIND_LINKS", "/somewhere")
    ours = {"PIP_INDEX_URL": "https://10.0.0.1/packages/simple/", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    with pytest.raises(SetupError):
        toolchain._build(tmp_path / "tc", toolchain.installed_source(), "/usr/bin/python3", 10, ours)
    assert seen[0]["PIP_INDEX_URL"] == ours["PIP_INDEX_URL"] and "PIP_FIND_LINKS" not in seen[0]
    with pytest.raises(SetupError):
        toolchain._build(tmp_path / "tc", toolchain.installed_source(), "/usr/bin/python3", 10, {})
    assert seen[1]["PIP_INDEX_URL"] == "https://elsewhere.invalid/simple/" and seen[1]["PIP_FIND_LINKS"] == "/somewhere"


@pytest.fixture
def server() -> Iterator[EnrolmentServer]:
    with EnrolmentServer() as running:
        yield running


def test_register_writes_the_masters_package_index(server: EnrolmentServer, tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "slapos.cfg"
    done = CliRunner().invoke(cli, ["node", "register", "--token", server.token("computer", "COMP-7"),
                                    "--master-url", server.url, "--cfg", str(cfg), "--packages-from-master",
                                    "--instance-root", str(tmp_path / "srv"), "--software-root", str(tmp_path / "opt")])
    assert done.exit_code == 0, done.output
    assert node_config(read_config(str(cfg))).package_index == server.url.rstrip("/") + "/packages/simple/"


def test_register_refuses_a_bad_index_before_the_token_is_used(server: EnrolmentServer, tmp_path: Path) -> None:
    token = server.token("computer", "COMP-1")
    for extra in (["--package-index", "file:///srv/wheels"],
                  ["--package-index", "https://x/simple/", "--packages-from-master"]):
        done = CliRunner().invoke(cli, ["node", "register", "--token", token, "--master-url", server.url,
                                        "--cfg", str(tmp_path / "slapos.cfg"), *extra])
        assert done.exit_code == 1 and "--package-index" in done.output, done.output
        assert token in server.tokens and not (tmp_path / "slapos.cfg").exists()
    assert os.listdir(tmp_path) == []
