"""Parameter checks and short names on real servers (issue 12): ``slapos proxy start`` refuses a
request whose parameters do not match on both protocols and resolves ``product.NAME`` for the
``slapos`` command; on ``slapos master start`` with certificates, only an admin publishes names,
and a user's http release is fetched only once an admin vouched for it (SSRF)."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from partita.master.api.slap_xml.marshal import dumps
from partita.slap.software_names import shipped_releases
from tests.support.file_server import serve_directory
from tests.support.secure_master import SecureMaster, call, enrol, start_secure_master
from tests.support.server import SLAPOS, ServerProcess, start

HELLO_WEB = shipped_releases()["hello-web"]
SCHEMA = {"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535, "default": 8080}}}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start(tmp_path, ("proxy", "start"))
    try:
        yield server
    finally:
        server.stop()


def slapos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_the_proxy_refuses_bad_parameters_on_both_protocols(proxy: ServerProcess, tmp_path: Path) -> None:
    body = {"title": "web", "software_release_uri": "product.hello-web", "software_type": "default",
            "parameters": {"port": "70000"}}
    refused = requests.post(f"{proxy.url}/slapos.post.v0.software_instance", json=body, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["code"] == "INVALID"
    assert refused.json()["title"] == "parameter 'port': 70000 is greater than the maximum of 65535"
    form = {"software_release": HELLO_WEB, "partition_reference": "web", "software_type": "default",
            "partition_parameter_xml": dumps({"port": "0"}), "filter_xml": dumps({}), "state": dumps(None),
            "shared_xml": dumps(False)}
    refused = requests.post(f"{proxy.url}/requestComputerPartition", data=form, timeout=30)
    assert refused.status_code == 400 and "parameter 'port': 0 is less than the minimum of 1" in refused.text
    listed = requests.post(f"{proxy.url}/slapos.allDocs.v0.instance_tree_list", json={}, timeout=30)
    assert listed.json()["result_list"] == []
    stored = requests.post(f"{proxy.url}/slapos.post.v0.software_instance",
                           json={**body, "parameters": {"port": "8081"}}, timeout=30)
    assert stored.status_code == 200 and stored.json()["software_release_uri"] == HELLO_WEB


def test_the_slapos_command_against_the_proxy(proxy: ServerProcess, tmp_path: Path) -> None:
    cfg = str(proxy.config_path)
    info = slapos("software", "info", "--cfg", cfg, "product.hello-web", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "software type 'default'" in info.stdout and HELLO_WEB in info.stdout
    bad = slapos("request", "--cfg", cfg, "web", "product.hello-web", "--parameters", "port=70000", cwd=tmp_path)
    assert (bad.returncode, bad.stderr) == (1, "slapos: error: parameter 'port': 70000 is greater than the "
                                               "maximum of 65535\n")
    unknown = slapos("request", "--cfg", cfg, "web", "product.nope", cwd=tmp_path)
    assert unknown.returncode == 1 and "unknown software release name 'product.nope' (known: " in unknown.stderr
    published = slapos("software", "publish", "--cfg", cfg, "greeter", HELLO_WEB, cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    done = slapos("request", "--cfg", cfg, "web", "product.greeter", "--format", "json", cwd=tmp_path)
    assert done.returncode in (0, 2), done.stderr  # stored (the proxy's computer has no partition yet)
    assert json.loads(done.stdout)["software_release"] == HELLO_WEB


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A release over HTTP on loopback: its URL and the paths the server was asked for."""
    root = tmp_path / "www"
    (root / "sr").mkdir(parents=True)
    (root / "sr" / "software.cfg").write_text("[buildout]\n")
    (root / "sr" / "software.cfg.json").write_text(json.dumps({"software-type": {"default": {"request": "in.json"}}}))
    (root / "sr" / "in.json").write_text(json.dumps(SCHEMA))
    with serve_directory(root) as (url, asked):
        yield f"{url}/sr/software.cfg", asked


@pytest.fixture
def master(tmp_path: Path) -> Iterator[SecureMaster]:
    (tmp_path / "master").mkdir()
    with start_secure_master(tmp_path / "master") as master:
        yield master


def test_names_and_remote_schemas_on_an_authenticated_master(
        master: SecureMaster, served: tuple[str, list[str]], tmp_path: Path) -> None:
    url, asked = served
    admin = enrol(master, master.admin_token, tmp_path / "admin", "admin")
    token = call(master, admin, "slapos.post.v0.user", {"name": "alice"}).json()["token"]
    alice = enrol(master, token, tmp_path / "alice", "alice")

    def request(title: str, port: str) -> requests.Response:
        return call(master, alice, "slapos.post.v0.software_instance", {
            "title": title, "software_release_uri": url, "software_type": "default", "parameters": {"port": port}})

    assert request("first", "70000").status_code == 200  # a user's URL: never fetched by the master
    assert asked == []
    refused = call(master, alice, "slapos.put.v0.software_release_name", {"name": "mine", "software_release_uri": url})
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    published = call(master, admin, "slapos.put.v0.software_release_name", {"name": "web", "software_release_uri": url})
    assert published.status_code == 200, published.text
    bad = request("second", "70000")
    assert bad.status_code == 400 and bad.json()["title"] == "parameter 'port': 70000 is greater than the maximum of 65535"
    assert asked == ["/sr/software.cfg.json", "/sr/in.json"]
    by_name = call(master, alice, "slapos.get.v0.software_release_name", {"name": "product.web"})
    assert by_name.json() == {"name": "web", "software_release_uri": url, "source": "published"}
