"""The real slapos.core 1.26.1 (client library, CLI, node) against an AUTHENTICATED master over HTTPS.

The master runs with ``[slapmaster] authentication = certificates`` (on PostgreSQL with two workers;
the client tests also on SQLite): every caller presents a client certificate its CA issued, and the
certificate alone says who calls (user, computer or partition). The peer presents it the SlapOS
way (``key_file``/``cert_file``; 1.26.1 never verifies the master). The tests assert what the real
software does with it: a user requests and supplies with the CLI, a partition certificate fetched by
the computer through ``getComputerPartitionCertificate`` works inside its own tree only, and the
real node deploys over HTTPS and stores partition certificates in ``certificate_repository_path``;
calls without a certificate, with a self-signed one, or with another computer's are refused.
"""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import (
    _failed,
    format_step,
    is_free,
    partition_of,
    partitions_by_id,
)
from tests.compat.secure import (
    SecurePeer,
    SecureSetup,
    issuer_and_subject,
    partition_identity,
    self_signed,
)
from tests.compat.test_real_cli import state_line, succeeded
from tests.support.server import SLAPOS as PARTITA_SLAPOS
from tests.compat.test_real_node import (  # noqa: F401  (hello_recipes is a fixture)
    Node,
    _write_node_config,
    _write_software_release,
    free_port_on_partitions,
    hello_recipes,
    http_get,
)
from tests.support.peer import NODE_USER, Peer
from tests.support.secure_master import Enrolled, call, enrol, start_secure_master

pytestmark = pytest.mark.peer

SR = "/opt/partita-compat/hello/software.cfg"
CONNECTION = {"url": "http://127.0.1.1:8080/", "password": "s3cret"}
EVIL = {"url": "http://attacker.invalid/"}


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------

def _start(request: pytest.FixtureRequest, directory: Path, backend: str) -> Iterator[SecureSetup]:
    directory.mkdir(parents=True, exist_ok=True)
    if backend == "postgresql":
        master = start_secure_master(directory, database_url=request.getfixturevalue("postgres_url"), workers=2)
    else:
        master = start_secure_master(directory)
    try:
        admin = enrol(master, master.admin_token, directory / "admin", "admin")
        yield SecureSetup(master, directory, admin, backend)
    finally:
        master.stop()
        if _failed(request):
            tail = "\n".join(master.log().splitlines()[-200:])
            print(f"===== authenticated master ({backend}) log (tail) =====\n{tail}")


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgresql), "sqlite"])
def secure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecureSetup]:
    """An authenticated master (PostgreSQL with 2 workers, or SQLite) and its enrolled admin."""
    yield from _start(request, tmp_path / f"master-{request.param}", request.param)


@pytest.fixture
def secure_pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecureSetup]:
    """An authenticated master on PostgreSQL with 2 workers, and its enrolled admin."""
    yield from _start(request, tmp_path / "master-postgresql", "postgresql")


@pytest.fixture
def secure_peer(peer: Peer, request: pytest.FixtureRequest) -> SecurePeer:
    name = "secure_pg" if "secure_pg" in request.fixturenames else "secure"
    return SecurePeer(peer, request.getfixturevalue(name))


def computer_step(computer_guid: str) -> dict[str, Any]:
    return {"op": "computer", "computer_id": computer_guid}


def request_step(title: str, **fields: Any) -> dict[str, Any]:
    return {"op": "request", "url": fields.pop("url", SR), "title": title, **fields}


def configure_client(secure: SecureSetup, name: str) -> Path:
    """A new user enrolled by Partita's own `slapos configure client` in a home of their own;
    the path of the configuration it wrote."""
    token = secure.json(secure.admin, "slapos.post.v0.user", {"name": name})["token"]
    home = secure.directory / f"home-{name}"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("SLAPOS_CLIENT_CONFIGURATION", None)
    done = subprocess.run([PARTITA_SLAPOS, "configure", "client", "--master-url", secure.url, "--token", token],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return home / ".slapos" / "slapos-client.cfg"


def titles(listed: dict[str, Any]) -> set[str]:
    return {(p.get("_parameter_dict") or {}).get("instance_title") for p in listed["partitions"] if not is_free(p)}


# ------------------------------------------------------------------------------------------------
# 1. The CLI with a user's certificate
# ------------------------------------------------------------------------------------------------

def test_cli_request_and_supply_with_a_user_certificate(secure: SecureSetup, secure_peer: SecurePeer) -> None:
    alice = secure.user("alice")
    assert secure.whoami(alice)["kind"] == "user"
    computer = secure.computer(secure.directory / "computer", "cli-node")
    guid = computer.name
    secure_peer.ok(computer, format_step(3, guid))
    alice_config = secure_peer.client_config(alice, "alice")

    supplied = succeeded(secure_peer.cli(alice_config, "supply", SR, guid))
    assert "Done" in supplied.output
    first = succeeded(secure_peer.cli(alice_config, "request", "inst1", SR, "--parameters", "foo=bar"))
    assert state_line(first) == "started"

    # what the node (the computer's certificate) now sees: the supply, and the instance on a partition
    listed = secure_peer.one(computer, computer_step(guid))
    assert listed["software_releases"] == [{"url": SR, "state": "available", "computer": guid}]
    inst1 = partition_of(listed, "inst1")
    assert inst1["_parameter_dict"]["foo"] == "bar"
    pid = inst1["_partition_id"]

    # the computer publishes for its partition; alice's next request prints the parameters
    secure_peer.ok(computer, {"op": "publish", "as": [guid, pid], "parameters": CONNECTION})
    published = succeeded(secure_peer.cli(alice_config, "request", "inst1", SR, "--parameters", "foo=bar"))
    assert state_line(published) == "started"
    assert CONNECTION["url"] in published.output and CONNECTION["password"] in published.output

    # no client certificate (a key alone: 1.26.1 then calls without one): the master answers 401
    bare = secure_peer.cli(secure_peer.client_config(alice, "no-certificate", key_only=True),
                           "request", "ghost", SR)
    assert bare.returncode != 0, str(bare)
    assert "401 Client Error" in bare.output and "requestComputerPartition" in bare.output, str(bare)
    # a self-signed certificate: refused at the TLS handshake (1.26.1 reports requests' SSLError,
    # a ConnectionError, as "Couldn't connect to the server" with the alert the master sent)
    stranger = self_signed(secure.directory / "stranger")
    stranger_config = secure_peer.client_config(stranger, "stranger")
    for refused in (secure_peer.cli(stranger_config, "request", "ghost", SR),
                    secure_peer.cli(stranger_config, "supply", "/opt/partita-compat/ghost/software.cfg", guid)):
        assert refused.returncode != 0, str(refused)
        assert "tlsv1 alert unknown ca" in refused.output, str(refused)

    # neither refused call stored anything
    listed = secure_peer.one(computer, computer_step(guid))
    assert titles(listed) == {"inst1"}
    assert [r["url"] for r in listed["software_releases"]] == [SR]
    assert partitions_by_id(listed)[pid]["_connection_dict"] == CONNECTION

    # the configuration Partita's `slapos configure client` writes is one the real CLI takes as is
    carol_config = configure_client(secure, "carol")
    carols = succeeded(secure_peer.cli(carol_config, "request", "carols", SR))
    assert state_line(carols) == "started"
    listed = secure_peer.one(computer, computer_step(guid))
    assert titles(listed) == {"inst1", "carols"}


# ------------------------------------------------------------------------------------------------
# 2. The library with a partition certificate
# ------------------------------------------------------------------------------------------------

def test_partition_certificate_acts_in_its_own_tree_only(secure: SecureSetup, secure_peer: SecurePeer) -> None:
    alice, bob = secure.user("alice"), secure.user("bob")
    computer = secure.computer(secure.directory / "computer", "library-node")
    guid = computer.name
    secure_peer.ok(computer, format_step(4, guid))
    secure_peer.ok(alice, {"op": "supply", "url": SR, "computer_id": guid})  # a master places where supplied
    (root,) = secure_peer.ok(alice, request_step("root", parameters={"foo": "bar"}))
    (bobs,) = secure_peer.ok(bob, request_step("bobs", parameters={"owner": "bob"}))
    root_pid, bob_pid = root["answer"]["slap_computer_partition_id"], bobs["answer"]["slap_computer_partition_id"]
    assert root_pid != bob_pid

    # the computer gets the partition's key and certificate through the real library (SLAP XML)
    pem = secure_peer.one(computer, {"op": "certificate", "as": [guid, root_pid]})
    assert "BEGIN CERTIFICATE" in pem["certificate"] and "PRIVATE KEY" in pem["key"], pem
    partition = partition_identity(secure, guid, root_pid, pem, secure.directory / "partition")
    ca_issuer, _ = issuer_and_subject(secure.master.ca_file)
    assert issuer_and_subject(partition.cert_file)[0] == ca_issuer
    whoami = secure.whoami(partition)
    assert (whoami["kind"], whoami["computer_guid"], whoami["compute_partition_id"]) == ("partition", guid, root_pid)
    # a user may not fetch it
    stolen = secure_peer.refused(bob, {"op": "certificate", "as": [guid, root_pid]})
    assert stolen["status"] == 403, stolen

    # as the partition: read itself, request a child in its tree, publish its parameters
    mine, child, published = secure_peer.ok(
        partition,
        {"op": "partition", "as": [guid, root_pid]},
        request_step("child0", parameters={"foo": "from-parent"}, **{"as": [guid, root_pid]}),
        {"op": "publish", "as": [guid, root_pid], "parameters": CONNECTION},
    )
    assert mine["getInstanceParameterDict"]["ok"]["foo"] == "bar", mine
    assert published is None
    child_pid = child["answer"]["slap_computer_partition_id"]
    assert child_pid not in (root_pid, bob_pid) and child["getState"] == {"ok": "started"}, child
    (again,) = secure_peer.ok(alice, request_step("root", parameters={"foo": "bar"}))
    assert again["answer"]["_connection_dict"] == CONNECTION
    listed = secure_peer.one(computer, computer_step(guid))
    assert partition_of(listed, "child0")["_partition_id"] == child_pid
    assert partition_of(listed, "child0")["_parameter_dict"]["root_instance_title"] == "root"

    # ... but nothing for another user's instance: publish, request as, read (403)
    for step in ({"op": "publish", "as": [guid, bob_pid], "parameters": EVIL},
                 request_step("intruder", **{"as": [guid, bob_pid]}),
                 {"op": "partition", "as": [guid, bob_pid]}):
        answer = secure_peer.steps(partition, step)[0]
        refusal = answer.get("error") and answer or answer["ok"]["getInstanceParameterDict"]
        assert refusal.get("status") == 403, f"{step['op']} as {root_pid} on {bob_pid}: {answer}"
    # nor may it publish for a member of its own tree that it does not host
    sibling = secure_peer.refused(partition, {"op": "publish", "as": [guid, child_pid], "parameters": EVIL})
    assert sibling["status"] == 403, sibling

    # the X-SlapPartition header alone is no identity: 401, through the library and raw
    (connection_xml,) = secure_peer.ok(None, {"op": "marshal", "value": EVIL})
    bare = secure_peer.refused(None, {"op": "publish", "as": [guid, root_pid], "parameters": EVIL})
    assert bare["status"] == 401, bare
    header = f"X-SlapPartition computer_id={guid}, computer_partition_id={root_pid}"
    raw = secure_peer.one(None, {
        "op": "raw", "method": "POST", "path": "setComputerPartitionConnectionXml",
        "headers": {"Authorization": header},
        "data": {"computer_id": guid, "computer_partition_id": root_pid, "connection_xml": connection_xml,
                 "slave_reference": "None"}})
    assert raw["status"] == 401 and "X-SlapPartition" in raw["text"], raw

    # none of the refused calls changed anything
    (bobs_again,) = secure_peer.ok(bob, request_step("bobs", parameters={"owner": "bob"}))
    assert bobs_again["answer"]["_connection_dict"] == {}
    listed = secure_peer.one(computer, computer_step(guid))
    assert titles(listed) == {"root", "bobs", "child0"}
    assert partitions_by_id(listed)[root_pid]["_connection_dict"] == CONNECTION
    assert partitions_by_id(listed)[child_pid]["_connection_dict"] == {}


# ------------------------------------------------------------------------------------------------
# 3. The real node over HTTPS
# ------------------------------------------------------------------------------------------------

@dataclass
class SecureNode:
    node: Node
    computer: Enrolled
    certificate_repository: Path


@pytest.fixture
def secure_node(peer: Peer, secure_pg: SecureSetup, request: pytest.FixtureRequest) -> Iterator[SecureNode]:
    """A node tree owned by slapnode whose slapos.cfg names the computer's key and certificate and a
    certificate_repository_path, for the real node against the authenticated master."""
    request.getfixturevalue("hello_recipes")
    # Under /tmp (pytest's tmp_path is below a 0700 directory slapnode cannot traverse).
    base = Path(tempfile.mkdtemp(prefix="partita-compat-secure-node-", dir="/tmp"))
    os.chmod(base, 0o755)
    node_dir = base / "node"
    for sub in ("srv/slapgrid", "opt/slapgrid", "var", "log", "etc/partition-pki"):
        (node_dir / sub).mkdir(parents=True)
    computer = secure_pg.computer(node_dir / "etc", "secure-node")
    repository = node_dir / "etc" / "partition-pki"
    config = _write_node_config(node_dir, secure_pg.url)
    text = config.read_text()
    assert "computer_id = local_computer\n" in text
    config.write_text(text.replace("computer_id = local_computer\n", (
        f"computer_id = {computer.name}\nkey_file = {computer.key_file}\ncert_file = {computer.cert_file}\n"
        f"certificate_repository_path = {repository}\n")))
    software_url = _write_software_release(base / "sr")
    user = pwd.getpwnam(NODE_USER)
    for path in [node_dir, *node_dir.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(repository, 0o700)
    the_node = Node(peer, base, config, software_url)
    try:
        yield SecureNode(the_node, computer, repository)
    finally:
        the_node.stop_supervisord()
        print("node command durations:\n" + "\n".join(f"  {s:6.2f} s  {c}" for c, s in the_node.durations))
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgresql
@pytest.mark.root
def test_real_node_deploys_over_https(secure_node: SecureNode, secure_pg: SecureSetup,
                                      secure_peer: SecurePeer) -> None:
    node, computer, guid = secure_node.node, secure_node.computer, secure_node.computer.name
    sr = node.software_url
    alice = secure_pg.user("alice")
    port = free_port_on_partitions()
    parameters = {"port": str(port), "foo": "bar"}

    node.format()
    listed = secure_peer.one(computer, computer_step(guid))
    assert sorted(partitions_by_id(listed)) == ["slappart0", "slappart1", "slappart2"]
    assert all(is_free(p) for p in listed["partitions"])
    secure_peer.ok(alice, {"op": "supply", "url": sr, "computer_id": guid},
                   request_step("hello", url=sr, parameters=parameters))
    node.software()
    assert (node.software_path / ".completed").is_file()
    listed = secure_peer.one(computer, computer_step(guid))
    assert listed["software_releases"] == [{"url": sr, "state": "available", "computer": guid}]
    pid = partition_of(listed, "hello")["_partition_id"]

    # deploy: the instance's recipes publish with the partition certificate the node fetched
    node.instance()
    url = f"http://127.0.1.{int(pid[len('slappart'):]) + 1}:{port}/"
    (answer,) = secure_peer.ok(alice, request_step("hello", url=sr, parameters=parameters))
    assert answer["answer"]["_connection_dict"] == {"url": url, "partition": pid, "echo-foo": "bar"}
    assert f"hello from {pid}" in http_get(url)

    # the partition's key and certificate, in certificate_repository_path, owned by its user
    repository = secure_node.certificate_repository
    assert sorted(p.name for p in repository.iterdir()) == [f"{pid}.crt", f"{pid}.key"]
    for path in (repository / f"{pid}.crt", repository / f"{pid}.key"):
        info = path.stat()
        assert (pwd.getpwuid(info.st_uid).pw_name, stat.S_IMODE(info.st_mode)) == (NODE_USER, 0o400), path
    written = Enrolled(repository / f"{pid}.key", repository / f"{pid}.crt", secure_pg.master.ca_file,
                       f"{guid}/{pid}", "partition")
    whoami = secure_pg.whoami(written)
    assert (whoami["kind"], whoami["computer_guid"], whoami["compute_partition_id"]) == ("partition", guid, pid)

    # a pass with nothing to do still asks for the certificate: the answer is the same, so the
    # node's files stay as they are and the service keeps answering
    before = {p.name: p.read_bytes() for p in repository.iterdir()}
    node.instance()
    assert {p.name: p.read_bytes() for p in repository.iterdir()} == before
    assert f"hello from {pid}" in http_get(url)

    # another computer's certificate cannot read this computer's information
    other = secure_pg.computer(secure_pg.directory / "computer-b", "other-node")
    refused = secure_peer.refused(other, computer_step(guid))
    assert refused["status"] == 403, refused
    assert secure_peer.one(other, computer_step(other.name))["partitions"] == []

    # destroy: alice asks, the node stops the instance, then its report (the computer's
    # certificate acting for the partition over SLAP XML) frees the partition; the freed
    # partition's certificate, as its instance could have copied it away, is refused from then on
    kept = secure_pg.directory / "kept"
    kept.mkdir()
    shutil.copy(written.key_file, kept / "partition.key")
    shutil.copy(written.cert_file, kept / "partition.crt")
    copied = Enrolled(kept / "partition.key", kept / "partition.crt", written.ca_file, written.name, written.kind)
    secure_peer.ok(alice, request_step("hello", url=sr, parameters=parameters, state="destroyed"))
    node.instance()
    node.report()
    assert is_free(partitions_by_id(secure_peer.one(computer, computer_step(guid)))[pid])
    assert call(secure_pg.master, copied, "slapos.get.v0.whoami").status_code == 401

    for command, output in node.outputs:
        bad = [line for line in output.splitlines() if " ERROR " in line or "Traceback" in line]
        assert not bad, f"`slapos {command}` logged errors:\n" + "\n".join(bad)
