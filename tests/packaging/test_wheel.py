"""The distribution as users install it: a wheel built from the tracked files, installed with pip
into a fresh virtual environment, serves the proxy, the master and the node (issue 8, point 1).

The wheel is built from a copy of the files git tracks (an in-tree build could pick up a stale
``build/`` directory) and installed, with its dependencies from the package index, into a venv made
from Debian's Python. Every command then runs from a directory outside the checkout, so what it
imports is the installed ``partita`` package, never the repository's folders.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from partita.node.config import DEFAULT_TOOLCHAIN_PYTHON
from partita.slap.client import MasterClient
from tests.support import server
from tests.support.node import HELLO_WEB, NodeEnv

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 900


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def slapos(self) -> str:
        return str(self.venv / "bin" / "slapos")

    def python(self, code: str, cwd: Path) -> str:
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], cwd=cwd, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def _run(command: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    work.chmod(0o755)  # the node's users must reach the venv's Python below
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True,
                             timeout=60).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
          str(source)])
    wheel = next(dist.glob("partita-*.whl"))
    venv = work / "venv"
    _run([DEFAULT_TOOLCHAIN_PYTHON, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    return Installed(wheel, venv)


def test_the_wheel_claims_only_the_partita_namespace(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"partita", installed.wheel.name.split("-py")[0] + ".dist-info"}
    for needed in ("partita/master/migrations/versions/0001_initial_catalog.py",
                   "partita/master/migrations/script.py.mako", "partita/master/api/openapi.yaml"):
        assert needed in names
    assert not any(name.startswith(("partita/tests/", "tests/")) for name in names)


def test_it_imports_the_installed_copy(installed: Installed, tmp_path: Path) -> None:
    where = installed.python("import partita.master, partita.recipes; print(partita.master.__file__)", tmp_path)
    assert where.startswith(str(installed.venv)), where
    entry_points = installed.python(
        "from importlib.metadata import entry_points; "
        "print(sorted(e.name for e in entry_points(group='zc.buildout')))", tmp_path)
    assert "publish" in entry_points and "slapconfiguration" in entry_points


def test_the_proxy_from_the_wheel_allocates_a_request(installed: Installed, tmp_path: Path) -> None:
    proxy = server.start(tmp_path, ("proxy", "start"), slapos=installed.slapos)
    try:
        with MasterClient(proxy.url) as client:
            client.format_compute_node("local_computer", [{"partition_id": "slappart0", "ip_list": [
                {"ip-address": "127.0.1.1", "network-interface": "lo", "netmask": "255.255.255.255"}]}])
        done = subprocess.run([installed.slapos, "request", "first", "/srv/sr/software.cfg", "--cfg",
                               str(proxy.config_path), "--format", "json"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode in (0, 2), done.stderr  # 2: allocated, not ready (no node runs here)
        assert '"partition": "slappart0"' in done.stdout, done.stdout
    finally:
        proxy.stop()
    assert "Traceback" not in proxy.log()


def test_the_master_from_the_wheel_initialises_and_serves(installed: Installed, tmp_path: Path) -> None:
    config = server.write_config(tmp_path, server.free_port(), database=str(tmp_path / "master.db"))
    _run([installed.slapos, "master", "init", "--cfg", str(config)], cwd=tmp_path)
    master = server.start(tmp_path, ("master", "start"), database=str(tmp_path / "master.db"),
                          slapos=installed.slapos)
    try:
        with urllib.request.urlopen(master.url + "/openapi.json", timeout=10) as answer:
            assert answer.status == 200
    finally:
        master.stop()


@pytest.mark.root
def test_a_node_from_the_wheel_builds_its_toolchain_and_deploys_hello_web(installed: Installed) -> None:
    # Its own toolchain directory, which the partition users can reach (pytest's tmp_path is
    # below a 0700 directory), so that this node builds its toolchain from the wheel's files.
    toolchains = Path(tempfile.mkdtemp(prefix="pt-toolchains-", dir="/tmp"))
    toolchains.chmod(0o755)
    env = NodeEnv(partitions=1, slapos=installed.slapos,
                  extra={"slapos": {"toolchain_directory": str(toolchains)}})
    try:
        env.format()
        env.supply_and_request("hello", HELLO_WEB, greeting="from a wheel")
        env.software()
        env.instance()
        doc = env.wait_for("hello", lambda d: d.get("connection_parameters", {}).get("url"), what="its URL")
        with urllib.request.urlopen(doc["connection_parameters"]["url"], timeout=10) as answer:
            assert "from a wheel" in answer.read().decode()
        assert any(path.is_dir() for path in toolchains.iterdir()), "the node built no toolchain of its own"
    finally:
        env.close()
        shutil.rmtree(toolchains, ignore_errors=True)
