"""Single-user mode: the whole node run by an unprivileged user (``runuser``), every partition as
that user; and root mode's isolation between partitions."""
from __future__ import annotations

import pwd
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.support.node import HELLO_WEB, NodeEnv, free_port, single_user

USER = single_user()


def process_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("Uid:")).split()[1])


@pytest.fixture
def single() -> Iterator[NodeEnv]:
    node = NodeEnv(partitions=2, as_user=USER)
    try:
        node.format()
        yield node
    finally:
        node.close()


def test_single_user_node_deploys_hello_web(single: NodeEnv):
    port = str(free_port())
    single.supply_and_request("hello", greeting="Hallo", port=port)
    single.software()
    single.instance()
    doc = single.info("hello")
    assert doc["status_reason"] == "started"
    assert requests.get(doc["connection_parameters"]["url"], timeout=5).text == "Hallo\n"
    partition = single.partition_path(doc["compute_partition_id"])
    uid = pwd.getpwnam(USER).pw_uid
    assert partition.stat().st_uid == uid and (partition / "etc" / "greeting.txt").stat().st_uid == uid
    supervisord = int((single.root / "srv" / "var" / "run" / "supervisord.pid").read_text())
    assert process_uid(supervisord) == uid  # the node's supervisord runs as the user too
    single.client.request_instance("hello", str(HELLO_WEB), state="destroyed")
    single.report()
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]


@pytest.mark.root
def test_root_mode_partitions_cannot_read_each_other():
    env = NodeEnv(partitions=2)
    try:
        env.format()
        env.supply_and_request("a", port=str(free_port()))
        env.supply_and_request("b", port=str(free_port()))
        env.software()
        env.instance()
        a, b = (env.partition_path(env.info(t)["compute_partition_id"]) for t in ("a", "b"))
        user_a, user_b = a.owner(), b.owner()
        assert user_a != user_b and user_a.startswith(env.prefix)
        own = subprocess.run(["runuser", "-u", user_a, "--", "cat", str(a / "etc" / "greeting.txt")],
                             capture_output=True, text=True, timeout=30)
        assert own.returncode == 0 and own.stdout == "Hello"
        other = subprocess.run(["runuser", "-u", user_a, "--", "cat", str(b / "etc" / "greeting.txt")],
                               capture_output=True, text=True, timeout=30)
        assert other.returncode != 0 and "Permission denied" in other.stderr
        # the services run as their partition's user
        status = env.slapos("node", "status").stdout
        for partition, user in ((a, user_a), (b, user_b)):
            line = next(l for l in status.splitlines() if l.startswith(f"{partition.name}:hello-web"))
            pid = int(line.split("pid ")[1].split(",")[0])
            assert process_uid(pid) == pwd.getpwnam(user).pw_uid
    finally:
        env.close()
