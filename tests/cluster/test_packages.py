"""A node that reaches only its master builds from the master's package index (issue 13).

One more node joins the cluster in a namespace of its own, with no default route, a **fresh,
empty toolchain directory** and cache (not the tests' prebuilt toolchain), and ``package_index``
pointing at the master, which is its pip's only source (`node.package_index`: no machine pip
configuration either) and no binary cache. Its daemon builds its toolchain from the master's
wheels, then builds and deploys hello-web, which answers.

The master's packages come from ``slapos master packages fetch --toolchain``, run once into
``$PARTITA_TEST_ROOT/package-index/<key>`` (the key: the toolchain's requirements and Python) and
reused by later runs, then copied into the master's ``packages_directory``.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from partita.node.toolchain import MARKER
from partita.slap.toolchain import REQUIREMENTS
from tests.cluster.conftest import ready
from tests.support import netns
from tests.support.cluster import SLAPOS, Cluster, ClusterNode, _register, http_get_in, supply_and_request
from tests.support.node import HELLO_WEB
from tests.support.toolchain import TEST_ROOT

PYTHON_VERSION = "3.11"  # the nodes' toolchain_python (Debian's /usr/bin/python3.11)
BUILD_TIMEOUT = 600.0


def wheelhouse() -> Path:
    """The toolchain's wheels for the nodes' Python, fetched once (see the module docstring)."""
    key = hashlib.sha256("\n".join([*REQUIREMENTS, PYTHON_VERSION]).encode()).hexdigest()[:16]
    directory = TEST_ROOT / "package-index" / key
    if (directory / ".complete").is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = directory.parent / f"{key}.cfg"
    config.write_text(f"[slapmaster]\ndatabase_uri = unused.db\npackages_directory = {directory}\n")
    done = subprocess.run([SLAPOS, "master", "packages", "fetch", "--toolchain", "--python-version", PYTHON_VERSION,
                           "--cfg", str(config)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    (directory / ".complete").write_text(done.stdout)
    return directory


@dataclass
class OfflineNode:
    node: ClusterNode
    toolchain_directory: Path
    started: float
    doc: dict


@pytest.fixture(scope="module")
def offline(cluster: Cluster) -> Iterator[OfflineNode]:
    packages = cluster.directory / "master" / "packages"  # the master's default: beside its configuration
    packages.mkdir(mode=0o755, exist_ok=True)
    for wheel in wheelhouse().glob("*.whl"):
        shutil.copy2(wheel, packages / wheel.name)
    namespace = netns.add_namespace(cluster.network)
    node = _register(cluster, namespace, 1)
    toolchain_directory = node.directory / "toolchain"
    text = node.config_path.read_text()
    lines = [line for line in text.splitlines() if not line.startswith(("toolchain_directory", "cache_directory"))]
    at = lines.index("[slapos]") + 1
    lines[at:at] = [f"toolchain_directory = {toolchain_directory}", f"cache_directory = {node.directory / 'cache'}",
                    f"package_index = {cluster.master_url}/packages/simple/",
                    "binary_cache = false"]  # the release is built here, not fetched built
    node.config_path.write_text("\n".join(lines) + "\n")
    try:
        node.slapos("node", "format")
        started = time.time()
        node.start()
        supply_and_request(cluster, "hello-offline", str(HELLO_WEB), node, greeting="built from the master")
        try:
            doc = cluster.wait_for("hello-offline", ready, timeout=BUILD_TIMEOUT, what="ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- the offline node:\n{node.log()[-4000:]}") from None
        yield OfflineNode(node, toolchain_directory, started, doc)
    finally:
        node.stop()
        cluster.client.set_compute_node_allocation_scope(node.computer_id, "close")  # later tests: not here


def test_the_node_has_no_route_but_to_the_cluster(cluster: Cluster, offline: OfflineNode) -> None:
    for family in ("-4", "-6"):
        routes = cluster.network.run_in(offline.node.namespace, ["ip", family, "route", "show"]).stdout
        assert routes.strip() and "default" not in routes, routes
    outside = netns.probe(cluster.network, offline.node.namespace, ["192.0.2.1", "2001:db8::1"])
    assert "open" not in outside and "refused" not in outside, outside


def test_its_toolchain_was_built_from_the_master_during_the_test(offline: OfflineNode) -> None:
    built = [path for path in offline.toolchain_directory.iterdir() if (path / MARKER).is_file()]
    assert len(built) == 1, built
    assert (built[0] / MARKER).stat().st_mtime >= offline.started - 1
    installed = {path.name.split("-")[0].lower() for path in built[0].glob("lib/python*/site-packages/*.dist-info")}
    assert {"zc.buildout", "zc_buildout"} & installed and "jinja2" in installed, installed


def test_the_release_it_built_answers(cluster: Cluster, offline: OfflineNode) -> None:
    assert offline.doc["computer_guid"] == offline.node.computer_id
    assert "software" in offline.node.log() and "built in" in offline.node.log()
    url = offline.doc["connection_parameters"]["url"]
    assert http_get_in(cluster.network, offline.node.namespace, url).strip() == "built from the master"
