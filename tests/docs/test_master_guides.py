"""The master's guides run as root (issue 11): docs/master.md's two nodes on one machine, and
docs/operations.md's master, admin, user, node, rotation, revocations and audit.

The guide runs whole, in order, as root (`tests.docs.runner`): its PostgreSQL role and database
are made in the tests' throwaway cluster (``PGHOST``/``PGPORT``/``PGUSER`` in the environment, its
``sudo -u postgres`` dropped: the cluster trusts loopback), and its fixed names are replaced with
the test's own: a free port for the master, two address ranges and partition user prefixes of its
own, and ``$HOME`` under the reader's paths (``/etc/opt/slapos``, ``/srv``, ``/opt``). What the
guide's format adds (unix users, addresses on ``lo``) is removed afterwards.
"""
from __future__ import annotations

import ipaddress
import json
import os
import pwd
import random
import re
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from tests.docs.runner import REPO, GuideRunner
from tests.support.node import single_user
from tests.support.postgres import PostgresServer
from tests.support.server import free_port

DOCS = REPO / "docs"
pytestmark = pytest.mark.root


def master_substitutions(postgres_server: PostgresServer, port: int) -> list[tuple[str, str]]:
    """The master's fixed port and address, its database on the tests' cluster, and ``$HOME``
    under the reader's ``/etc/opt/slapos``."""
    return [
        ("127.0.0.1:5432", f"127.0.0.1:{postgres_server.port}"),
        ("host = 0.0.0.0", "host = 127.0.0.1"),
        ("port = 8443", f"port = {port}"),
        ("https://master.example.org:8443", f"https://127.0.0.1:{port}"),
        ("tls_addresses = 192.0.2.10", "tls_addresses = 127.0.0.1"),
        ("workers = 4", "workers = 2"),
        ("/etc/opt/slapos", "$HOME/etc/opt/slapos"),
    ]


def postgres_environment(postgres_server: PostgresServer) -> dict[str, str]:
    return {"PGHOST": "127.0.0.1", "PGPORT": str(postgres_server.port), "PGUSER": postgres_server.user}


# docs/master.md, step 1: what docs/operations.md starts from
DATABASE = ("```sh\npsql -c \"CREATE ROLE partita LOGIN PASSWORD 'secret'\"\n"
            "createdb --owner=partita partita\n```\n")


def test_master_two_nodes_on_one_machine(postgres_server: PostgresServer) -> None:
    port = free_port()
    network_a, network_b = random.sample(range(20, 100), 2)
    users = "pd" + secrets.token_hex(2)
    ipv6 = secrets.token_hex(2)
    ranges = [f"127.0.{network_a}.0/24", f"127.0.{network_b}.0/24",
              f"fd70:{ipv6}:7469:7461::/64", f"fd70:{ipv6}:7469:7462::/64"]
    runner = GuideRunner(DOCS / "master.md", timeout=900, substitutions=[
        ("sudo -u postgres ", ""),
        *master_substitutions(postgres_server, port),
        ("/srv/slapos-", "$HOME/srv/slapos-"),
        ("/opt/slapos-", "$HOME/opt/slapos-"),
        ("/opt/partita/", "$HOME/partita/"),
        ("127.0.1.", f"127.0.{network_a}."),
        ("127.0.2.", f"127.0.{network_b}."),
        ("slapauser", f"{users}a"),
        ("slapbuser", f"{users}b"),
        ("fd70:6172:7469:7461::/64", ranges[2]),
        ("fd70:6172:7469:7462::/64", ranges[3]),
    ], env=postgres_environment(postgres_server))
    try:
        runner.run()
    finally:
        _clean_up(postgres_server, users, ranges)

    init = output_of(runner, "INIT=$(slapos master init")
    fingerprint = re.search(r"CA fingerprint: sha256:([0-9a-f]{64})", init)
    assert fingerprint and "enrolment token" in init, init
    assert output_of(runner, "openssl x509").split()[0] == fingerprint[1]  # the guide's check of the CA
    listed = output_of(runner, "slapos node format")  # and slapos computer list
    assert "COMP-1" in listed and "COMP-2" in listed, listed
    answers = output_of(runner, "curl -sS").splitlines()
    assert answers[:2] == ["A", "B"], answers  # each instance answers, in its own node's range
    hello = {line.split()[0]: line for line in answers[2:] if line.strip().startswith("hello-")}
    assert "slappart0 on COMP-1" in hello["hello-a"] and "slappart0 on COMP-2" in hello["hello-b"], answers
    placed = output_of(runner, "slapos computer tag set")  # issue 13: tags, networks, scope, contact
    for shown in ("COMP-1: gpu=a100 region=rennes", "COMP-1: region=rennes", "COMP-1: network rack-1",
                  "COMP-2: closed", "COMP-2: open", "online"):
        assert shown in placed, placed


def test_operations_master_users_nodes_rotation_revocation_audit(postgres_server: PostgresServer) -> None:
    """The master and the node as root, the admin and alice as an ordinary user (alice with a home
    of her own: on her machine)."""
    port, network = free_port(), random.randint(20, 99)
    users = "po" + secrets.token_hex(2)
    ranges = [f"127.0.{network}.0/24", f"fd70:{secrets.token_hex(2)}:7469:746f::/64"]
    alice = 'slapos configure client --token "$ALICE_TOKEN" --master-url https://master.example.org:8443\nslapos list\n'
    register = "--master-url https://master.example.org:8443 --cfg /etc/opt/slapos/slapos.cfg\nslapos node format"
    node = (f"--master-url https://master.example.org:8443 --cfg /etc/opt/slapos/slapos.cfg"
            f" --ipv4-local-network {ranges[0]} --partition-number 2"
            " --instance-root $HOME/node/srv --software-root $HOME/node/opt\n"
            f"sed -i -e 's/^user_base_name = .*/user_base_name = {users}/'"
            f" -e '/^\\[slapformat\\]/a ipv6_local_network = {ranges[1]}' /etc/opt/slapos/slapos.cfg\n"
            "slapos node format")
    runner = GuideRunner(DOCS / "operations.md", user=single_user(), timeout=300, setup=DATABASE, substitutions=[
        (alice, f"(export HOME=$HOME/alice && mkdir -p $HOME && {alice.replace(chr(10), ' && ', 1)})\n"),
        (register, node),
        *master_substitutions(postgres_server, port),
    ], env=postgres_environment(postgres_server))
    try:
        runner.run()
    finally:
        _clean_up(postgres_server, users, ranges)

    assert "enrolled as user alice" in output_of(runner, "(export HOME=$HOME/alice")
    assert "No instances." in output_of(runner, "CI_TOKEN=")  # the API token is an identity
    assert "registered as computer COMP-1" in output_of(runner, "slapos node register")
    listed = output_of(runner, "slapos computer list")
    assert "COMP-1" in listed and "rack 3 node 1" in listed and "valid" in listed, listed
    assert "registered again as computer COMP-1" in output_of(runner, "slapos node register --token \"$RENEW_TOKEN\"")
    revoked = output_of(runner, "slapos token revoke")
    assert "revoked" in revoked and "alice" in revoked and "revoked" in revoked.splitlines()[-1], revoked
    audit = output_of(runner, "slapos audit list")
    for action in ("user.create", "computer.register", "computer.revoke", "user.revoke", "token.revoke"):
        assert action in audit, audit


def _clean_up(postgres_server: PostgresServer, users: str, ranges: list[str]) -> None:
    """What the guide made outside its directory: partition users, addresses, the database."""
    _remove_users(users)
    _remove_addresses(ranges)
    postgres_server.drop_database("partita")
    subprocess.run(["dropuser", "--if-exists", "partita"], capture_output=True, timeout=60,
                   env={**os.environ, **postgres_environment(postgres_server)})


def output_of(runner: GuideRunner, start: str) -> str:
    """The output of the first block that starts with `start`."""
    return runner.outputs[next(block.line for block in runner.blocks() if block.text.startswith(start))]


def _remove_users(prefix: str) -> None:
    """The partition users the guide's format made (their processes are gone with the nodes')."""
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix):
            for pid in _processes_of(entry.pw_uid):
                os.kill(pid, signal.SIGKILL)
            subprocess.run(["userdel", entry.pw_name], capture_output=True, timeout=30)
            subprocess.run(["groupdel", entry.pw_name], capture_output=True, timeout=30)


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def _remove_addresses(ranges: list[str]) -> None:
    """The partitions' addresses the guide's format put on ``lo``."""
    networks = [ipaddress.ip_network(text) for text in ranges]
    shown = subprocess.run(["ip", "-j", "addr", "show", "dev", "lo"], capture_output=True, text=True,
                           timeout=30, check=True).stdout
    for interface in json.loads(shown):
        for address in interface.get("addr_info", []):
            ip = ipaddress.ip_address(address["local"])
            if any(ip.version == network.version and ip in network for network in networks):
                subprocess.run(["ip", "addr", "del", f"{ip}/{address['prefixlen']}", "dev", "lo"],
                               capture_output=True, timeout=30)
