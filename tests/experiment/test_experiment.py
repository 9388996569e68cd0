"""``slapos experiment up|status|collect|down`` against three hosts reached over SSH (issue 13, "a
Grid'5000 experiment in one command"): network namespaces with no default route, each running its
own sshd (`tests.support.ssh_hosts`), driven from this machine as a Grid'5000 frontend would be.

One experiment for the module: ``up`` once (the fixture), then the tests in order: the hosts file's
repeated lines, the table, a node's daemon killed (``status`` says so) and a second ``up`` that
restarts it and changes nothing else, hello-web pinned to the second host
answering from the third host's namespace, ``status``, ``collect`` (every host's files, no private
key), and ``down`` last (no process, user, address or remote directory left). The hosts share this
machine's file system and users, so ``--node-setting`` gives each its own user prefix. The hosts
reach no package index: Partita is installed from the wheels ``up`` copies, and each node builds
its toolchain from the master's package index (the wheels ``up`` put there).
"""
from __future__ import annotations

import configparser
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from partita.slap.client import MasterClient
from tests.support import netns
from tests.support.cluster import http_get_in
from tests.support.node import HELLO_WEB
from tests.support.ssh_hosts import SshHosts, ssh_hosts, users_of
from tests.support.toolchain import TEST_ROOT

pytestmark = pytest.mark.root
SLAPOS = str(Path(sys.executable).parent / "slapos")
WHEELHOUSE = TEST_ROOT / "experiment-wheelhouse"  # the wheels, kept between runs
HOSTS = 3
UP_TIMEOUT = 600
# a release whose partita:pip part pins one small wheel: the hosts reach no package index, so they
# build it from the master's, which up fills from what this machine downloads
SIX = "six==1.17.0"
SIX_SHA256 = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


def pinned_release(directory: Path) -> Path:
    profile = directory / "pinned" / "software.cfg"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(f"[buildout]\nparts = wheels instance-profile\n\n"
                       f"[wheels]\nrecipe = partita:pip\npackages = {SIX}\nsha256-six = {SIX_SHA256}\n\n"
                       "[instance-profile]\nrecipe = partita:template\ninline = [buildout]\n    parts =\n"
                       "output = ${buildout:directory}/instance.cfg\n")
    return profile


@dataclass
class Experiment:
    hosts: SshHosts
    directory: Path
    up: subprocess.CompletedProcess

    def slapos(self, *args: str, timeout: float = UP_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([SLAPOS, "experiment", *args, "--dir", str(self.directory)], capture_output=True,
                              text=True, timeout=timeout, cwd=self.directory.parent)
        if check and done.returncode != 0:
            raise AssertionError(f"slapos experiment {args[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    @property
    def state(self) -> dict:
        return json.loads((self.directory / "experiment.json").read_text())

    def client(self) -> MasterClient:
        files = configparser.ConfigParser(interpolation=None)
        files.read(self.directory / "client" / "slapos-client.cfg")
        section = files["slapos"]
        return MasterClient(section["master_url"], cert=(section["cert_file"], section["key_file"]),
                            ca_file=section["partita_ca_file"], timeout=30)


def up_arguments(hosts: SshHosts) -> list[str]:
    hosts_file = hosts.directory / "nodefile"
    # OAR writes a line per reserved core: repeated, in order
    hosts_file.write_text("".join(f"{name}\n" * 2 for name in hosts.names) + hosts.names[-1] + "\n")
    prefix = hosts.user_prefix
    return ["up", "--hosts", str(hosts_file), "--ssh-config", str(hosts.ssh_config),
            "--software", str(HELLO_WEB), "--software", str(pinned_release(hosts.directory)), "--partitions", "2",
            "--remote-dir", str(hosts.directory / "remote" / "{host}"),
            "--ipv4-network", str(hosts.network.ipv4_network),
            "--postgres-user", f"{prefix}pg", "--wheelhouse", str(WHEELHOUSE),
            "--node-setting", f"slapformat.user_base_name={prefix}{{index}}u",
            "--node-setting", "software_timeout=300", "--node-setting", "buildout_timeout=120"]


@pytest.fixture(scope="module")
def experiment() -> Iterator[Experiment]:
    with ssh_hosts(HOSTS) as hosts:
        directory = hosts.directory / "local"
        directory.mkdir()
        running = Experiment(hosts, directory, subprocess.CompletedProcess([], 0))
        running.up = running.slapos(*up_arguments(hosts))
        print(running.up.stdout)
        yield running


def test_the_hosts_reach_nothing_but_each_other(experiment: Experiment) -> None:
    for namespace in experiment.hosts.network.namespaces:
        assert netns.ip("-n", namespace.name, "route", "show", "default").strip() == ""


def test_up_prints_a_row_per_distinct_host_and_the_client_configuration(experiment: Experiment) -> None:
    state = experiment.state
    assert [host["name"] for host in state["hosts"]] == ["h1", "h2", "h3"]
    assert [host["role"] for host in state["hosts"]] == ["master", "node", "node"]
    output = experiment.up.stdout
    for host in state["hosts"][1:]:
        assert host["computer_id"].startswith("COMP-")
        row = next(line for line in output.splitlines() if line.startswith(host["name"] + " "))
        assert host["computer_id"] in row and "/2" in row, output
    assert f"SLAPOS_CLIENT_CONFIGURATION={experiment.directory / 'client' / 'slapos-client.cfg'}" in output
    assert os.stat(experiment.directory / "experiment.json").st_mode & 0o077 == 0


def test_a_second_up_completes_and_duplicates_nothing(experiment: Experiment) -> None:
    """A node's daemon killed: ``status`` says so (exit 1); ``up`` again starts it and nothing else."""
    before = experiment.state
    remote = experiment.hosts.directory / "remote"
    os.kill(int((remote / "h3" / "node" / "node-run.pid").read_text()), signal.SIGKILL)
    status = experiment.slapos("status", check=False)
    assert status.returncode == 1
    assert "daemon dead" in next(line for line in status.stdout.splitlines() if line.startswith("h3 ")), status.stdout
    wheels = {path: path.stat().st_mtime_ns for path in WHEELHOUSE.rglob("*.whl")}
    installed = {path: path.stat().st_mtime_ns for path in remote.glob("*/installed")}
    users = users_of(experiment.hosts.run_id)
    again = experiment.slapos(*up_arguments(experiment.hosts))
    print(again.stdout)
    assert experiment.state["hosts"] == before["hosts"]
    partita = {path for path in wheels if path.name.startswith("partita-")}
    assert {path: path.stat().st_mtime_ns for path in wheels if path not in partita} == {
        path: mark for path, mark in wheels.items() if path not in partita}  # nothing downloaded
    if all(path.exists() and path.stat().st_mtime_ns == wheels[path] for path in partita):
        # nothing installed again (unless Partita's source changed meanwhile: a checkout being edited)
        assert {path: path.stat().st_mtime_ns for path in installed} == installed
    assert users_of(experiment.hosts.run_id) == users
    with experiment.client() as client:
        assert len(client.list_compute_nodes()) == HOSTS - 1
    for namespace in experiment.hosts.network.namespaces[1:]:
        daemons = [pid for pid in netns.namespace_pids(namespace.name) if b"node\0run" in _cmdline(pid)]
        assert len(daemons) == 1, namespace.name


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_hello_web_on_the_second_host_answers_the_third(experiment: Experiment) -> None:
    second = experiment.state["hosts"][1]
    with experiment.client() as client:
        client.request_instance("hello", str(HELLO_WEB), parameters={"greeting": "from h2"},
                                sla_parameters={"computer_guid": second["computer_id"]})
        deadline = time.monotonic() + 300
        doc: dict = {}
        while time.monotonic() < deadline:
            doc = client.get_instance_tree("hello")
            if doc.get("status_reason") == "started" and doc.get("connection_parameters", {}).get("url"):
                break
            time.sleep(0.5)
    url = doc.get("connection_parameters", {}).get("url")
    assert url, doc.get("status_reason")
    assert (experiment.hosts.directory / "remote" / "h2" / "soft" / ".toolchain").is_dir()  # built from the master's index
    third = experiment.hosts.network.namespaces[2]
    assert "from h2" in http_get_in(experiment.hosts.network, third, url)


def test_a_release_pinning_wheels_builds_on_every_node_from_the_master_index(experiment: Experiment) -> None:
    release = str(pinned_release(experiment.hosts.directory))
    packages = experiment.hosts.directory / "remote" / "h1" / "master" / "packages"
    assert (packages / "six-1.17.0-py2.py3-none-any.whl").is_file()
    deadline = time.monotonic() + 300
    states: dict[str, str] = {}
    with experiment.client() as client:
        while time.monotonic() < deadline:
            states = {host["name"]: next((item.get("reported_state") for item in
                                          client.list_software_installations(host["computer_id"])
                                          if item.get("software_release_uri") == release), "")
                      for host in experiment.state["hosts"][1:]}
            if set(states.values()) == {"available"}:
                break
            time.sleep(1)
    log = (experiment.hosts.directory / "remote" / "h2" / "node" / "node-run.log").read_text(errors="replace")
    assert states == {"h2": "available", "h3": "available"}, "\n".join(
        line for line in log.splitlines() if "pinned" in line or "ERROR" in line)[-3000:]


def test_status_shows_every_node_online(experiment: Experiment) -> None:
    done = experiment.slapos("status")
    rows = [line for line in done.stdout.splitlines() if line.startswith(("h1 ", "h2 ", "h3 "))]
    assert len(rows) == HOSTS, done.stdout
    assert "master alive" in rows[0]
    assert all("online, daemon alive" in row for row in rows[1:]), done.stdout


def test_collect_writes_every_host_files_and_no_private_key(experiment: Experiment) -> None:
    target = experiment.hosts.directory / "notebook"
    experiment.slapos("collect", str(target))
    files = [path.relative_to(target) for path in target.rglob("*") if path.is_file()]
    names = {str(path) for path in files}
    assert "README" in names and "catalog/computers.json" in names
    assert {"h2/node/slapos.cfg", "h2/node/node-run.log", "h3/node/slapos.cfg", "h1/master/master.cfg"} <= names
    assert not [name for name in names if name.endswith(".key") or "/ssl/" in name or "/pki/" in name]
    for path in files:
        assert b"PRIVATE KEY" not in (target / path).read_bytes(), path


def test_down_leaves_the_hosts_as_found(experiment: Experiment) -> None:
    hosts = experiment.hosts
    experiment.slapos("down")
    sshd = hosts.sshd_pids()
    for namespace in hosts.network.namespaces:
        left = [pid for pid in netns.namespace_pids(namespace.name) if pid not in sshd]
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left if Path(f"/proc/{pid}").exists()]
        for family, own in (("-4", namespace.ipv4), ("-6", namespace.ipv6)):
            addresses = netns.ip("-n", namespace.name, family, "-o", "addr", "show", "scope", "global")
            assert [line for line in addresses.splitlines() if f" {own}/" not in line] == []
    assert users_of(hosts.run_id) == []
    assert not (hosts.directory / "remote").exists() or not any((hosts.directory / "remote").iterdir())
    assert experiment.state["running"] is False
    assert "down" in experiment.slapos("status", check=False).stdout
