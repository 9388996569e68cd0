"""Issue 13: `slapos node unformat` for real, as root, each test in a network namespace of its own
(the fixtures of test_format_addresses.py): format then unformat finds the machine as before
(users, groups, addresses, routes, claims), keeping a software user that existed before; it is
idempotent; ``--all`` removes software_root (not what a link in it points to); a software user two
nodes share goes with the last one. The abusing partition user: a link it planted to a
root-owned file outside, and a process it left running, neither make unformat delete the outside
file nor leave the process behind silently; the node's supervisord running makes it refuse too
(``--stop`` stops both). A format that fails half-way records the users it created."""
from __future__ import annotations

import grp
import os
import pwd
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from partita.node import made, users
from partita.node.claims import CLAIMS_DIRECTORY
from partita.node.config import NodeConfig, node_config
from partita.node.errors import SetupError
from partita.node.format import format_node
from partita.node.supervisor import Supervisor
from partita.slap.client import MasterClient
from partita.slap.config import read_config
from tests.node.test_format_addresses import (Node, addresses, formatted_locally, ip, local_routes,  # noqa: F401
                                              namespace, nodes)
from tests.slap.live_master import closed_port
from tests.support.node import as_single_user
from tests.support.server import SLAPOS

pytestmark = pytest.mark.root


def unformat(node: Node, namespace: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", namespace, SLAPOS, "node", "unformat", "--cfg",
                           str(node.root / "slapos.cfg"), *options], capture_output=True, text=True, timeout=120)


def machine(namespace: str, node: Node) -> dict[str, object]:
    """What format may change: the node's users and groups, the namespace's addresses and local
    routes, and the claims naming the node's instance root."""
    instance_root = str(node.root / "srv")
    return {"users": sorted(e.pw_name for e in pwd.getpwall() if e.pw_name.startswith(node.users)),
            "groups": sorted(g.gr_name for g in grp.getgrall() if g.gr_name.startswith(node.users)),
            "pt0": addresses(namespace, "pt0"), "lo": addresses(namespace, "lo"),
            "routes": local_routes(namespace),
            "claims": sorted(p.name for p in CLAIMS_DIRECTORY.glob("*") if instance_root in p.read_text())}


def test_unformat_finds_the_machine_as_before(namespace: str, nodes: list[Node]) -> None:
    node = Node("ptu" + secrets.token_hex(2), interface_name="pt0", ipv4_local_network="192.0.2.64/26",
                partition_amount="2", partition_has_ipv6_range="true")
    nodes.append(node)
    subprocess.run(["useradd", "--no-create-home", node.users + "s"], check=True, timeout=30)  # another node's
    before = machine(namespace, node)
    formatted_locally(node.format(namespace))
    formatted = machine(namespace, node)
    assert formatted["users"] == sorted([node.users + "s", node.users + "u0", node.users + "u1"])
    assert len(formatted["routes"]) == 2 and len(formatted["claims"]) == 4  # type: ignore[arg-type]

    other = subprocess.run(as_single_user("node", "unformat", "--cfg", str(node.root / "slapos.cfg")),
                           capture_output=True, text=True, timeout=120)  # not root: refused
    assert (other.returncode, other.stderr.strip()) == (
        1, f"slapos: error: nothing removed: {node.root / 'srv'} is uid 0's: run slapos node unformat as root "
           "(or as that user)")
    dry = unformat(node, namespace, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove partition slappart0" in dry.stdout and machine(namespace, node) == formatted

    done = unformat(node, namespace)
    assert done.returncode == 0, done.stderr
    assert machine(namespace, node) == before  # the software user that was there stays
    lines = done.stdout.splitlines()
    assert {"removed partition slappart0", "removed address 192.0.2.65/26 from pt0",
            f"removed user {node.users}u0", f"removed group {node.users}u1",
            f"removed instance_root {node.root / 'srv'}"} <= set(lines), done.stdout
    assert f"removed user {node.users}s" not in lines
    assert "2001:db8:13::1/64" in machine(namespace, node)["pt0"]  # type: ignore[operator]  # the interface's own
    assert not (node.root / "srv").exists() and (node.root / "opt").is_dir()  # software_root kept

    again = unformat(node, namespace)
    assert (again.returncode, again.stderr) == (0, "")
    assert "nothing to remove" in again.stdout and "removed" not in again.stdout.replace("--all removes", "")
    (node.root / "opt" / "0123").mkdir()
    everything = unformat(node, namespace, "--all")
    assert everything.returncode == 0 and f"removed software_root {node.root / 'opt'}" in everything.stdout
    assert list((node.root / "opt").iterdir()) == []  # its record gone with the first run: emptied, kept


def test_a_partition_users_link_and_process_do_not_fool_unformat(namespace: str, nodes: list[Node],
                                                                 tmp_path: Path) -> None:
    node = Node("ptv" + secrets.token_hex(2), ipv4_local_network="127.0.94.0/24",
                ipv6_local_network="fd70:6172:7469:94::/64", partition_amount="1")
    nodes.append(node)
    formatted_locally(node.format(namespace))
    tmp_path.chmod(0o755)
    secret = tmp_path / "secret"
    secret.write_text("root's\n")
    user = pwd.getpwnam(node.users + "u0")
    partition = node.root / "srv" / "slappart0"
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": partition}
    subprocess.run(["ln", "-s", str(secret), "secret-link"], check=True, timeout=30, **as_user)
    subprocess.run(["ln", "-s", str(tmp_path), "outside"], check=True, timeout=30, **as_user)
    soft = pwd.getpwnam(node.users + "s")  # a build's tree, with a link out
    built = node.root / "opt" / "0123456789abcdef0123456789abcdef"
    built.mkdir()
    os.chown(built, soft.pw_uid, soft.pw_gid)
    subprocess.run(["ln", "-s", str(tmp_path), str(built / "outside")], check=True, timeout=30,
                   user=soft.pw_uid, group=soft.pw_gid, extra_groups=[])
    stays = subprocess.Popen(["sleep", "600"], start_new_session=True, **as_user)  # type: ignore[call-overload]
    config = node_config(read_config(str(node.root / "slapos.cfg")))
    Supervisor(config).ensure_running()  # the node's supervisord, as `slapos node run` starts it
    try:
        refused = unformat(node, namespace)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            f"slapos: error: nothing removed: the node's supervisord is running (socket {config.supervisor_socket}); "
            f"processes of the node's users run: {stays.pid} ({node.users}u0): "
            "stop them first, or run slapos node unformat --stop"]
        assert partition.is_dir() and pwd.getpwnam(node.users + "u0")

        done = unformat(node, namespace, "--stop", "--all")
        assert done.returncode == 0, done.stderr
        assert {"stopped the node's supervisord", f"killed process {stays.pid} of {node.users}u0"} <= set(
            done.stdout.splitlines())
        assert not Supervisor(config).running()
        assert stays.wait(timeout=10) == -9
    finally:
        stays.kill()
        if (node.root / "srv").exists():
            Supervisor(config).shutdown()
    assert secret.read_text() == "root's\n" and sorted(os.listdir(tmp_path)) == ["secret"]
    assert not partition.exists() and not (node.root / "opt").exists()
    assert not any(e.pw_name.startswith(node.users) for e in pwd.getpwall())


def test_a_software_user_two_nodes_share_goes_with_the_last(namespace: str, nodes: list[Node]) -> None:
    shared = "ptw" + secrets.token_hex(2) + "s"
    first = Node("ptw" + secrets.token_hex(2), ipv4_local_network="127.0.95.0/24", partition_amount="1",
                 ipv6_local_network="fd70:6172:7469:95::/64", software_user=shared)
    second = Node("ptx" + secrets.token_hex(2), ipv4_local_network="127.0.96.0/24", partition_amount="1",
                  ipv6_local_network="fd70:6172:7469:96::/64", software_user=shared)
    nodes += [first, second]
    try:
        formatted_locally(first.format(namespace))  # creates the software user
        formatted_locally(second.format(namespace))  # finds it
        gone = unformat(first, namespace)
        assert gone.returncode == 0, gone.stderr
        assert f"kept user {shared} (another node uses it)" in gone.stdout.splitlines()
        assert pwd.getpwnam(shared)
        last = unformat(second, namespace)
        assert last.returncode == 0, last.stderr
        assert {f"removed user {shared}", f"removed group {shared}"} <= set(last.stdout.splitlines())
        assert shared not in {e.pw_name for e in pwd.getpwall()} | {g.gr_name for g in grp.getgrall()}
    finally:
        subprocess.run(["userdel", shared], capture_output=True, timeout=30)
        subprocess.run(["groupdel", shared], capture_output=True, timeout=30)


def test_users_created_before_a_failing_format_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = "pty" + secrets.token_hex(2)
    tmp_path.chmod(0o755)
    config = NodeConfig(computer_id="COMP-1", master_url=f"http://127.0.0.1:{closed_port()}",
                        instance_root=tmp_path / "srv", software_root=tmp_path / "opt", partition_amount=2,
                        user_base_name=base + "u", software_user=base + "s", alter_user=True,
                        ipv4_local_network="127.0.97.0/24", ipv6_local_network="fd70:6172:7469:97::/64")
    real = users.ensure_user

    def second_fails(name: str, *args: Any, **kwargs: Any) -> users.PartitionUser:
        if name == base + "u1":
            raise SetupError(f"cannot create the user {name}: useradd: failure")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(users, "ensure_user", second_fails)
    try:
        with MasterClient(config.master_url, timeout=2) as client, pytest.raises(SetupError):
            format_node(config, client)
        record = made.read(config.instance_root)
        assert record is not None and record.created_users == (base + "s", base + "u0")
    finally:
        for name in (base + "u0", base + "s"):
            users.remove_user(name)
