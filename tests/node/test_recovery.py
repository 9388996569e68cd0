"""A node killed mid-build or mid-buildout recovers on its next start: no build that looks complete,
no second buildout running beside the first, services adopted rather than duplicated."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.blocking_http import BlockingServer
from tests.support.node import COMPUTER, NodeEnv

pytestmark = pytest.mark.root

INSTANCE = """[buildout]
parts = sleeper fetched

[slap-configuration]
recipe = partita:slapconfiguration

[sleeper]
recipe = partita:wrapper
command-line = /bin/sleep 3600
wrapper-path = $${buildout:directory}/etc/service/sleeper

[fetched]
recipe = partita:template
url = $${slap-configuration:configuration.fetch}
output = $${buildout:directory}/etc/fetched.txt
"""


@pytest.fixture
def env() -> Iterator[NodeEnv]:
    node = NodeEnv(partitions=1)
    try:
        node.format()
        yield node
    finally:
        node.close()


@pytest.fixture
def blocking() -> Iterator[BlockingServer]:
    server = BlockingServer({"/instance.cfg.in": INSTANCE, "/fetched.txt": "fetched\n"})
    try:
        yield server
    finally:
        server.close()


def write_release(directory: Path, instance_url: str) -> Path:
    directory.mkdir()
    (directory / "instance.cfg.in").write_text(INSTANCE)
    profile = directory / "software.cfg"
    profile.write_text("[buildout]\nparts = instance-profile\n\n[instance-profile]\nrecipe = partita:template\n"
                       f"url = {instance_url}\noutput = ${{buildout:directory}}/instance.cfg\n")
    return profile


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def start_and_kill(env: NodeEnv, blocking: BlockingServer, *command: str) -> None:
    """Run `slapos node COMMAND` until it fetches from the blocking server, then SIGKILL it."""
    node = subprocess.Popen(env.command("node", *command, "--cfg", str(env.config_path)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert blocking.asked.wait(120), "the node never reached the fetch"
    finally:
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=30)


def test_killed_mid_build_rebuilds_cleanly(env: NodeEnv, blocking: BlockingServer):
    release = write_release(env.root / "release", blocking.url + "/instance.cfg.in")
    env.client.supply(COMPUTER, str(release))
    start_and_kill(env, blocking, "software")
    software = env.root / "soft" / hashlib.md5(str(release).encode()).hexdigest()
    assert not (software / ".completed").exists()
    leftover = int((env.root / "soft" / ".locks" / f"{software.name}.pid").read_text())
    assert alive(leftover)  # the orphaned buildout still waits for its download
    assert env.client.list_software_installations(COMPUTER)[0]["reported_state"] == "building"
    blocking.release.set()
    env.software()
    assert not alive(leftover)
    assert (software / ".completed").exists() and (software / "instance.cfg").exists()
    assert env.client.list_software_installations(COMPUTER)[0]["reported_state"] == "available"


def test_killed_mid_buildout_recovers_and_adopts_services(env: NodeEnv, blocking: BlockingServer):
    release = write_release(env.root / "release", "${software-release:base}/instance.cfg.in").parent
    env.supply_and_request("slow", release / "software.cfg", fetch=blocking.url + "/fetched.txt")
    env.software()
    # a first deployment without the block, so that a service runs under supervisord
    blocking.release.set()
    env.instance()
    supervisord = int((env.root / "srv" / "var" / "run" / "supervisord.pid").read_text())
    status = env.slapos("node", "status").stdout
    sleeper_pid = int(status.split("pid ")[1].split(",")[0])
    # a change, and the node killed while the buildout downloads
    blocking.release.clear()
    blocking.asked.clear()
    env.client.request_instance("slow", str(release / "software.cfg"),
                                parameters={"fetch": blocking.url + "/fetched.txt?again"})
    start_and_kill(env, blocking, "instance")
    partition = env.root / "srv" / "slappart0"
    leftover = int((partition / ".slapgrid" / "buildout.pid").read_text())
    assert alive(leftover)
    assert not (partition / ".timestamp").exists()  # not marked processed
    blocking.release.set()
    env.instance()
    assert not alive(leftover)
    assert env.info("slow")["status_reason"] == "started"
    # the same supervisord, the same single service process: adopted, not duplicated
    assert int((env.root / "srv" / "var" / "run" / "supervisord.pid").read_text()) == supervisord
    status = env.slapos("node", "status").stdout
    assert status.count("sleeper-on-watch") == 1 and f"pid {sleeper_pid}," in status
    assert os.path.exists(f"/proc/{sleeper_pid}")


def test_a_destruction_cut_short_is_finished_by_the_next_report(env: NodeEnv):
    """The states a node killed mid-destroy leaves (services stopped, half the files gone, the
    master not told) are finished by the next `slapos node report`, never left half-destroyed."""
    release = write_release(env.root / "release", "${software-release:base}/instance.cfg.in").parent
    server = BlockingServer({"/fetched.txt": "fetched\n"})
    server.release.set()
    try:
        env.supply_and_request("doomed", release / "software.cfg", fetch=server.url + "/fetched.txt")
        env.software()
        env.instance()
    finally:
        server.close()
    partition = env.root / "srv" / "slappart0"
    env.client.request_instance("doomed", str(release / "software.cfg"), state="destroyed")
    # what a node killed half-way through a destruction leaves behind
    env.slapos("node", "supervisorctl", "stop", "slappart0:*")
    for leftover in ("etc", "buildout.cfg"):
        path = partition / leftover
        subprocess.run(["rm", "-rf", str(path)], check=True, timeout=30)
    assert env.client.get_compute_node_state(COMPUTER)["compute_partition_list"][0]["instance"] is not None
    env.report()
    assert env.client.get_compute_node_state(COMPUTER)["compute_partition_list"][0]["instance"] is None
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert "slappart0" not in env.slapos("node", "status", check=False).stdout
