"""The real slapos.core 1.26.1 NODE (slapformat + slapgrid) against Partita, as an unprivileged user.

`slapos node format/software/instance/report` run as ``slapnode`` through ``runuser`` with a node
config like reference/slap-protocol.md §9.3 (no root check, no user or network changes, partitions
from a definition file at 127.0.1.1-3 and ::1) and build the tiny offline software release of
tests/compat/hello_sr (§9.4): its instance runs an HTTP server on the partition's IPv4 under the
node's supervisord, checks it with a plugin promise and publishes its URL with the real `slap`
library. The recipes (tests/compat/hello_sr/recipe) are pip-installed into the peer's environment
once, idempotently.

Every subprocess has a deadline; the supervisord the node started is stopped by its pid at the end.
Set PARTITA_COMPAT_NODE_OUTPUT=<file> to append every node command's output to that file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compat.conftest import (
    COMPUTER_ID, CompatServer, PeerClient, is_free, partition_of, partitions_by_id,
)
from tests.support.peer import NODE_USER, Peer

pytestmark = pytest.mark.peer

HELLO_SR = Path(__file__).parent / "hello_sr"
RECIPE_DISTRIBUTION = "partita-compat-hello"
RECIPE_MODULE = "partita_compat_hello"
PARTITIONS = 3
NODE_TIMEOUT = 300
IPV6_NETMASK = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


# ------------------------------------------------------------------------------------------------
# The recipes, in the peer's environment
# ------------------------------------------------------------------------------------------------

def _installed_recipe(peer: Peer) -> bytes | None:
    """The recipe module the peer imports, or None."""
    probe = subprocess.run(
        [str(peer.python), "-c",
         f"import importlib.metadata as m, {RECIPE_MODULE} as r; "
         f"assert {{e.name for e in m.entry_points(group='zc.buildout') if e.module == '{RECIPE_MODULE}'}}"
         f" == {{'write', 'configuration', 'publish'}}; print(r.__file__)"],
        capture_output=True, text=True, timeout=60, cwd="/")
    if probe.returncode != 0:
        return None
    return Path(probe.stdout.strip()).read_bytes()


@pytest.fixture(scope="session")
def hello_recipes(peer: Peer) -> None:
    """pip-install tests/compat/hello_sr/recipe into the peer unless the same version is there."""
    source = HELLO_SR / "recipe"
    wanted = (source / f"{RECIPE_MODULE}.py").read_bytes()
    with open("/tmp/partita-compat-hello.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_recipe(peer) == wanted:
            return
        # Build from a copy: an in-tree build would leave build/ and *.egg-info in the repository.
        with tempfile.TemporaryDirectory(prefix="partita-compat-hello-") as build:
            copy = Path(build) / "recipe"
            shutil.copytree(source, copy)
            result = subprocess.run(
                [str(peer.python), "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                 "--no-index", "--force-reinstall", str(copy)],
                capture_output=True, text=True, timeout=300, cwd=build)
        assert result.returncode == 0, f"pip install of the test recipes failed:\n{result.stdout}{result.stderr}"
        assert _installed_recipe(peer) == wanted


# ------------------------------------------------------------------------------------------------
# A node directory tree owned by slapnode
# ------------------------------------------------------------------------------------------------

@dataclass
class Node:
    peer: Peer
    base: Path
    config: Path
    software_url: str
    durations: list[tuple[str, float]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def instance_root(self) -> Path:
        return self.base / "node" / "srv" / "slapgrid"

    @property
    def software_root(self) -> Path:
        return self.base / "node" / "opt" / "slapgrid"

    @property
    def software_path(self) -> Path:
        return self.software_root / hashlib.md5(self.software_url.encode()).hexdigest()

    def partition(self, reference: str) -> Path:
        return self.instance_root / reference

    def run(self, *args: str, program: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`slapos ARGS --cfg node.cfg` as slapnode; any exit code is returned."""
        command = ["runuser", "-u", NODE_USER, "--", str(program or self.peer.slapos), *args, "--cfg", str(self.config)]
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=NODE_TIMEOUT,
                                cwd=self.base, env=NODE_ENV)
        self.durations.append((" ".join(args), time.monotonic() - started))
        self.outputs.append((" ".join(args), result.stdout + result.stderr))
        return result

    def must(self, *args: str, program: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, program=program)
        assert result.returncode == 0, (
            f"slapos {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr[-6000:]}\n{self.logs()}")
        return result

    def format(self) -> None:
        self.must("node", "format", "--now", program=self.peer.slapos_noext)

    def software(self) -> None:
        self.must("node", "software", "--now")

    def instance(self) -> subprocess.CompletedProcess[str]:
        return self.must("node", "instance", "--now")

    def report(self) -> None:
        self.must("node", "report", "--now")

    def logs(self) -> str:
        """Error logs slapgrid leaves in partitions, for failure messages."""
        parts = []
        for path in sorted(self.instance_root.glob("slappart*/.slapgrid*error.log")):
            parts.append(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}")
        for path in sorted(self.instance_root.glob("slappart*/.slapgrid/log/instance.log")):
            parts.append(f"--- {path} (tail)\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop_supervisord(self) -> None:
        """Stop the supervisord `node instance` started (and so its services), by its pid."""
        for pidfile in (self.instance_root / "var" / "run" / "supervisord.pid",):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            if not _is_supervisord(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _is_supervisord(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _is_supervisord(pid):
                os.kill(pid, signal.SIGKILL)


def _is_supervisord(pid: int) -> bool:
    try:
        return b"supervisord" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _write_software_release(directory: Path) -> str:
    """Copy tests/compat/hello_sr (not the recipe) to `directory`; return the software.cfg URL."""
    directory.mkdir()
    for source in HELLO_SR.iterdir():
        if source.is_file():
            text = source.read_text().replace("@@SR_DIRECTORY@@", str(directory))
            (directory / source.name).write_text(text)
    return str(directory / "software.cfg")


def _write_node_config(node_dir: Path, master_url: str) -> Path:
    definition = node_dir / "computer_definition.cfg"
    lines = ["[computer]", "address = 127.0.0.1/255.0.0.0", f"software_user = {NODE_USER}", ""]
    for i in range(PARTITIONS):
        lines += [f"[partition_{i}]", f"address = 127.0.1.{i + 1}/255.0.0.0 ::1/{IPV6_NETMASK}",
                  f"pathname = slappart{i}", f"user = {NODE_USER}", f"network_interface = slaptap{i}", ""]
    definition.write_text("\n".join(lines))
    config = node_dir / "slapos.cfg"
    config.write_text(f"""\
[slapos]
computer_id = {COMPUTER_ID}
master_url = {master_url}
instance_root = {node_dir}/srv/slapgrid
software_root = {node_dir}/opt/slapgrid
root_check = False
pidfile_software = {node_dir}/var/slapgrid-sr.pid
pidfile_instance = {node_dir}/var/slapgrid-cp.pid
pidfile_report = {node_dir}/var/slapgrid-ur.pid

[slapformat]
alter_user = False
alter_network = False
create_tap = False
create_tun = False
partition_amount = {PARTITIONS}
input_definition_file = {definition}
computer_xml = {node_dir}/var/slapos.xml
computer_json = {node_dir}/var/slapos.json
log_file = {node_dir}/log/slapos-node-format.log
partition_base_name = slappart
user_base_name = slapuser
tap_base_name = slaptap
software_user = {NODE_USER}
interface_name = lo
ipv4_local_network = 127.0.0.0/8
""")
    return config


@pytest.fixture
def node(peer: Peer, server: CompatServer, hello_recipes: None) -> Iterator[Node]:
    # Under /tmp (pytest's tmp_path is below a 0700 directory slapnode cannot traverse).
    base = Path(tempfile.mkdtemp(prefix="partita-compat-node-", dir="/tmp"))
    os.chmod(base, 0o755)
    node_dir = base / "node"
    for sub in ("srv/slapgrid", "opt/slapgrid", "var", "log"):
        (node_dir / sub).mkdir(parents=True)
    software_url = _write_software_release(base / "sr")
    config = _write_node_config(node_dir, server.url)
    user = pwd.getpwnam(NODE_USER)
    for path in [node_dir, *node_dir.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    the_node = Node(peer, base, config, software_url)
    try:
        yield the_node
    finally:
        the_node.stop_supervisord()
        print("node command durations:\n" + "\n".join(f"  {s:6.2f} s  {c}" for c, s in the_node.durations))
        if os.environ.get("PARTITA_COMPAT_NODE_OUTPUT"):
            with open(os.environ["PARTITA_COMPAT_NODE_OUTPUT"], "a") as dump:
                for command, output in the_node.outputs:
                    dump.write(f"===== {server.kind}: {command}\n{output}\n")
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------

def free_port_on_partitions() -> int:
    """A TCP port free on 127.0.1.1..3 right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.1.1", 0))
            port = probe.getsockname()[1]
        sockets = []
        try:
            for i in range(2, PARTITIONS + 1):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind((f"127.0.1.{i}", port))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no common free port on 127.0.1.1-3")


def computer(client: PeerClient) -> dict[str, Any]:
    return client.one({"op": "computer", "computer_id": COMPUTER_ID})


def connection(client: PeerClient, url: str, title: str, parameters: dict[str, str]) -> dict[str, Any]:
    """The instance's connection parameters, as a user's repeated request shows them."""
    answer = client.one({"op": "request", "url": url, "title": title, "parameters": parameters})
    return answer["answer"].get("_connection_dict") or {}


def http_get(url: str) -> str:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.text


def assert_wiped(path: Path) -> None:
    left = sorted(p.name for p in path.iterdir()) if path.exists() else []
    assert left == [], f"{path} still holds {left}"


# ------------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------------

def test_real_node_deploys_publishes_and_destroys(
        node: Node, client: PeerClient, server: CompatServer, record_property: Any) -> None:
    """format -> software -> instance -> published URL answers -> destroy -> report frees and wipes;
    then an instance tree (a root requesting a child) converges and is freed in one report pass."""
    port = free_port_on_partitions()
    sr = node.software_url

    # requested before the node exists: waiting (408) until `node format` brings partitions
    early = client.one({"op": "request", "url": sr, "title": "hello", "parameters": hello_parameters(port)})
    assert early["getId"].get("error") == "ResourceNotReady", early

    # format (real slapformat, definition file) and build the software release
    node.format()
    listed = computer(client)
    assert sorted(partitions_by_id(listed)) == [f"slappart{i}" for i in range(PARTITIONS)]
    assert partition_of(listed, "hello")["_partition_id"] == "slappart0"
    assert sum(is_free(p) for p in listed["partitions"]) == PARTITIONS - 1
    for i in range(PARTITIONS):
        assert node.partition(f"slappart{i}").is_dir()
    client.ok({"op": "supply", "url": sr, "computer_id": COMPUTER_ID})
    node.software()
    assert (node.software_path / ".completed").is_file()
    assert (node.software_path / "instance.cfg").is_file()
    assert computer(client)["software_releases"] == [{"url": sr, "state": "available", "computer": COMPUTER_ID}]

    one_instance_and_a_shared_one(node, client, port)
    instance_tree(node, client, server, port, record_property)

    # slapgrid carries on after many master errors (logging them): there must be none.
    for command, output in node.outputs:
        bad = [line for line in output.splitlines() if " ERROR " in line or "Traceback" in line]
        assert not bad, f"`slapos {command}` logged errors:\n" + "\n".join(bad)


def hello_parameters(port: int) -> dict[str, str]:
    return {"port": str(port), "foo": "bar"}


def one_instance_and_a_shared_one(node: Node, client: PeerClient, port: int) -> None:
    sr = node.software_url
    parameters = hello_parameters(port)

    # deploy, read the published URL back, and the service answers on it
    node.instance()
    published = connection(client, sr, "hello", parameters)
    url = f"http://127.0.1.1:{port}/"
    assert published == {"url": url, "partition": "slappart0", "echo-foo": "bar"}, published
    assert "hello from slappart0" in http_get(url)
    promise_result = node.partition("slappart0") / ".slapgrid" / "promise" / "result" / "hello.status.json"
    assert promise_result.is_file(), "the plugin promise did not run"
    node.instance()  # nothing changed: skipped by timestamp, still fine
    assert "hello from slappart0" in http_get(url)

    # a shared instance hosted by it gets its own connection parameters on the next run
    shared = client.one({"op": "request", "url": sr, "title": "hello-shared", "shared": True,
                         "parameters": {"hostname": "example.invalid"}})
    assert shared["answer"]["slap_computer_partition_id"] == "slappart0"
    node.instance()
    (shared_again,) = client.ok({"op": "request", "url": sr, "title": "hello-shared", "shared": True,
                                 "parameters": {"hostname": "example.invalid"}})
    slave_url = shared_again["answer"]["_connection_dict"].get("slave-url", "")
    assert slave_url.startswith(url + "_"), shared_again["answer"]

    # destroy (CLI): one instance run stops it, one report run frees the partition and wipes it
    destroyed = client.cli("request", "hello", sr, "--state", "destroyed", "--parameters", f"port={port}", "foo=bar")
    assert destroyed.returncode == 0, str(destroyed)
    node.instance()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    node.report()
    assert is_free(partitions_by_id(computer(client))["slappart0"])
    assert_wiped(node.partition("slappart0"))


def instance_tree(node: Node, client: PeerClient, server: CompatServer, port: int, record_property: Any) -> None:
    """The root requests child0 and publishes child0's URL as child-url; destroying it frees all."""
    sr = node.software_url
    tree_parameters = {"port": str(port), "foo": "tree", "request-child": "yes"}
    client.ok({"op": "request", "url": sr, "title": "tree", "parameters": tree_parameters})
    runs, tree_connection = 0, {}
    while "child-url" not in tree_connection and runs < 5:
        node.instance()
        runs += 1
        tree_connection = connection(client, sr, "tree", tree_parameters)
    record_property("node_instance_runs_until_child_url", runs)
    print(f"[{server.kind}] `slapos node instance` runs until the root published child-url: {runs}")
    listed = computer(client)
    root, child = partition_of(listed, "tree"), partition_of(listed, "child0")
    root_ip, child_ip = (f"127.0.1.{int(p['_partition_id'][len('slappart'):]) + 1}" for p in (root, child))
    assert tree_connection.get("child-url") == f"http://{child_ip}:{port}/", tree_connection
    assert tree_connection.get("url") == f"http://{root_ip}:{port}/"
    assert runs <= 3, f"{runs} node runs to converge"
    assert child["_parameter_dict"]["root_instance_title"] == "tree"
    assert f"hello from {child['_partition_id']}" in http_get(tree_connection["child-url"])

    # destroying the root destroys the tree; one instance run and ONE report run free it all
    client.ok({"op": "request", "url": sr, "title": "tree", "parameters": tree_parameters, "state": "destroyed"})
    node.instance()
    node.report()
    listed = computer(client)
    assert all(is_free(p) for p in listed["partitions"]), [
        (p["_partition_id"], p.get("_requested_state")) for p in listed["partitions"]]
    for p in (root, child):
        assert_wiped(node.partition(p["_partition_id"]))
