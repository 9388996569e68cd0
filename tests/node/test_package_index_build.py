"""A ``partita:pip`` part built with the variables `node.package_index` gives, from a real master's
package index (issue 13): the buildout's pip finds the pinned wheel there, and nowhere else."""
from __future__ import annotations

import getpass
import hashlib
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node.config import NodeConfig
from partita.node.package_index import pip_environment
from partita.node.runner import RunAs, clean_environment
from partita.node.toolchain import Toolchain
from tests.recipes.test_pip import make_wheel, write_profile
from tests.support.server import ServerProcess, start


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    directory = tmp_path_factory.mktemp("index-master")
    sha = make_wheel(directory / "packages")  # the master's packages_directory: beside its configuration
    server = start(directory, ("master", "start"), database=str(directory / "catalog.db"))
    try:
        yield server, sha
    finally:
        server.stop()


def other_wheel(directory: Path) -> str:
    """A wheel of the project partita-other 1.0 (on no index); its sha256."""
    directory.mkdir(parents=True)
    path = directory / "partita_other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("partita_other/__init__.py", "")
        archive.writestr("partita_other-1.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: partita-other\nVersion: 1.0\n")
        archive.writestr("partita_other-1.0.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("partita_other-1.0.dist-info/RECORD", "")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(toolchain: Toolchain, directory: Path, index: str, *,
          control: bool = False) -> subprocess.CompletedProcess[str]:
    config = NodeConfig(computer_id="COMP-1", master_url="http://127.0.0.1:1", instance_root=directory / "srv",
                        software_root=directory, package_index=index)
    env = clean_environment(directory, RunAs(getpass.getuser()), pip_environment(config))
    if control:  # the same without the node's PIP_CONFIG_FILE: what the test shows the node prevents
        del env["PIP_CONFIG_FILE"]
    return subprocess.run([str(toolchain.buildout), "-c", "buildout.cfg"], cwd=directory, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def test_a_pip_part_installs_from_the_masters_index(toolchain: Toolchain, master: tuple[ServerProcess, str],
                                                    tmp_path: Path) -> None:
    server, sha = master
    write_profile(tmp_path / "sr", tmp_path / "cache", "packages = partita-demo==1.0", f"sha256-partita-demo = {sha}")
    done = build(toolchain, tmp_path / "sr", f"{server.url}/packages/simple/")
    assert done.returncode == 0, done.stdout + done.stderr
    location = (tmp_path / "sr" / "outputs.txt").read_text().split()[0]
    assert (Path(location) / "partita_demo" / "__init__.py").is_file()


def test_the_machines_pip_configuration_adds_no_source(toolchain: Toolchain, master: tuple[ServerProcess, str],
                                                      tmp_path: Path) -> None:
    """A wheel that only a pip configuration of the build user names (``~/.config/pip/pip.conf``,
    HOME being the build directory) is not found: the master's index is the only source."""
    server, _ = master
    sha = other_wheel(tmp_path / "elsewhere")
    configuration = tmp_path / "sr" / ".config" / "pip" / "pip.conf"
    configuration.parent.mkdir(parents=True)
    configuration.write_text(f"[global]\nfind-links = {tmp_path / 'elsewhere'}\n")
    write_profile(tmp_path / "sr", tmp_path / "cache", "packages = partita-demo==1.0", f"sha256-partita-demo = {sha}")
    (tmp_path / "sr" / "buildout.cfg").write_text((tmp_path / "sr" / "buildout.cfg").read_text().replace(
        "partita-demo", "partita-other"))
    done = build(toolchain, tmp_path / "sr", f"{server.url}/packages/simple/")
    assert done.returncode != 0 and "partita-other==1.0" in done.stdout + done.stderr, done.stdout + done.stderr
    control = build(toolchain, tmp_path / "sr", f"{server.url}/packages/simple/", control=True)
    assert control.returncode == 0, control.stdout + control.stderr  # the wheel was there to be found
