"""A root node is safe against its own partitions (issue 9): one node, two deployed partitions.

One root node (real unix users, a proxy) deploys hello-web in partitions A and B, and every test
plays A's user (a forked child that drops to it):

1. A can neither list, read nor write B's tree;
2. A can signal neither B's service nor supervisord;
3. A can read neither the proxy's catalog, nor the node's key (``<config dir>/ssl/computer.key``, as ``slapos node register``
   writes it), nor reach the supervisord socket, nor read the node's state (supervisord's
   configuration, logs and pid file, the node's locks, the software locks);
4. a socket A's user binds on B's address stops A's services (the node checks listeners);
5. links (and FIFOs) A plants in its own partition, where root reads or writes during a pass,
   never make root read or write outside it: the targets keep their content and mode, and nothing
   of them reaches the master.
"""
from __future__ import annotations

import datetime
import errno
import json
import os
import pickle
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from partita.node.config import node_config
from partita.node.supervisor import Supervisor
from partita.slap.config import read_config
from tests.support.node import HELLO_WEB, NodeEnv, free_port

pytestmark = pytest.mark.root

SECRET = "VICTIM-" + secrets.token_hex(8)


# -- playing a partition's user ----------------------------------------------------------------

def as_user(user: str, action: Callable[[], Any]) -> Any:
    """Run `action` in a forked child that became `user` (its groups too); its result, or the
    exception it raised, raised here."""
    entry = pwd.getpwnam(user)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.close(reader)
        try:
            os.setgroups(os.getgrouplist(user, entry.pw_gid))
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.chdir("/")
            outcome = ("ok", action())
        except BaseException as error:  # noqa: BLE001 - handed to the parent
            outcome = ("error", error)
        with os.fdopen(writer, "wb") as stream:
            try:
                stream.write(pickle.dumps(outcome))
            except Exception as error:  # noqa: BLE001
                stream.write(pickle.dumps(("error", RuntimeError(repr(error)))))
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        data = stream.read()
    os.waitpid(child, 0)
    kind, value = pickle.loads(data)
    if kind == "error":
        raise value
    return value


def denied(user: str, action: Callable[[], Any]) -> int:
    """The errno with which `action`, done as `user`, fails (an AssertionError if it succeeds)."""
    try:
        as_user(user, action)
    except OSError as error:
        return error.errno
    raise AssertionError(f"{user} was allowed to do it")


# -- the node ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    title: str
    pid: str
    path: Path
    user: str


@dataclass
class Node:
    env: NodeEnv
    a: Partition
    b: Partition
    key_file: Path

    @property
    def instance_root(self) -> Path:
        return self.env.root / "srv"

    @property
    def software_root(self) -> Path:
        return self.env.root / "soft"

    def supervisor(self) -> Supervisor:
        return Supervisor(node_config(read_config(str(self.env.config_path))))

    def reason(self, partition: Partition) -> str:
        return str(self.env.info(partition.title)["status_reason"])

    def reported(self, partition: Partition) -> str:
        """Everything the master knows of the instance (what must never hold a victim's content)."""
        return json.dumps(self.env.info(partition.title), sort_keys=True)

    def repair(self) -> None:
        """A pass that redeploys A from scratch (after a test planted things there)."""
        as_user(self.a.user, lambda: _remove(self.a.path / ".timestamp"))
        self.env.instance(check=False)


def _remove(path: Path) -> None:
    if not path.is_symlink() and path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _node_key(directory: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate in ``directory/ssl`` (0700), the key 0600, as
    ``slapos node register`` leaves them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ssl = directory / "ssl"
    ssl.mkdir(mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "COMP-isolation")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_file, cert_file = ssl / "computer.key", ssl / "computer.crt"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    env = NodeEnv(partitions=2)
    try:
        key_file, cert_file = _node_key(env.root)
        text = env.config_path.read_text().replace(
            "[slapos]\n", f"[slapos]\nkey_file = {key_file}\ncert_file = {cert_file}\n", 1)
        env.config_path.write_text(text)
        env.format()
        env.supply_and_request("a", greeting="from-a", port=str(free_port()))
        env.client.request_instance("b", str(HELLO_WEB), parameters={"greeting": "from-b", "port": str(free_port())})
        env.software()
        env.instance()
        partitions = []
        for title in ("a", "b"):
            doc = env.info(title)
            assert doc["status_reason"] == "started", doc
            path = env.partition_path(doc["compute_partition_id"])
            partitions.append(Partition(title, doc["compute_partition_id"], path, path.owner()))
        assert partitions[0].user != partitions[1].user
        yield Node(env, partitions[0], partitions[1], key_file)
    finally:
        env.close()


@pytest.fixture
def victim() -> Iterator[Path]:
    """A root-owned directory outside every partition (0700), holding files with known content."""
    directory = Path(tempfile.mkdtemp(prefix="ptvictim", dir="/tmp"))
    try:
        (directory / "secret").write_text(SECRET + "\n")
        (directory / "secret").chmod(0o600)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def snapshot(*roots: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every entry under `roots` (not following links): its mode, owner and a regular file's
    content: what a test compares before and after a pass."""
    seen: dict[str, tuple[int, int, bytes | None]] = {}
    for root in roots:
        for directory, dirs, files, _fd in os.fwalk(root):
            for name in [".", *dirs, *files]:
                path = os.path.normpath(os.path.join(directory, name))
                info = os.lstat(path)
                content = Path(path).read_bytes() if stat.S_ISREG(info.st_mode) else None
                seen[path] = (info.st_mode, info.st_uid, content)
    return seen


# -- 1. A cannot reach B's tree ------------------------------------------------------------------

def test_a_can_neither_list_read_nor_write_b(node: Node) -> None:
    a, b = node.a.user, node.b.path
    assert denied(a, lambda: os.listdir(b)) == errno.EACCES
    for name in ("buildout.cfg", ".timestamp", ".slapos-resource", ".slapgrid/instance.json",
                 f".{node.b.pid}_hello-web.log", "etc/service/hello-web", "etc/greeting.txt"):
        assert (b / name).exists(), name
        assert denied(a, lambda name=name: (b / name).read_bytes()) == errno.EACCES, name
    assert denied(a, lambda: (b / "planted").write_text("x")) == errno.EACCES
    assert denied(a, lambda: os.mkdir(b / "etc" / "planted")) == errno.EACCES
    assert denied(a, lambda: (b / "etc" / "service" / "hello-web").write_text("x")) == errno.EACCES
    assert denied(a, lambda: os.rename(b, node.a.path / "stolen")) in (errno.EACCES, errno.EPERM)
    assert not (b / "planted").exists()
    # and B's service still answers as B: nothing was changed by the attempts
    assert "from-b" in as_user(node.b.user, lambda: (b / "etc" / "greeting.txt").read_text())


# -- 2. A cannot signal B's processes nor supervisord --------------------------------------------

def test_a_cannot_signal_b_nor_supervisord(node: Node) -> None:
    [service] = [p for p in node.supervisor().processes(node.b.pid) if p.name == "hello-web"]
    assert service.state == "RUNNING" and service.pid > 0
    assert Path(f"/proc/{service.pid}").stat().st_uid == pwd.getpwnam(node.b.user).pw_uid
    supervisord = int((node.instance_root / "var/run/supervisord.pid").read_text())
    for pid in (service.pid, supervisord):
        assert denied(node.a.user, lambda pid=pid: os.kill(pid, 0)) == errno.EPERM
        assert denied(node.a.user, lambda pid=pid: os.kill(pid, signal.SIGTERM)) == errno.EPERM
    [again] = [p for p in node.supervisor().processes(node.b.pid) if p.name == "hello-web"]
    assert again.state == "RUNNING" and again.pid == service.pid


# -- 3. the node's key, socket and state ---------------------------------------------------------

def test_a_cannot_read_the_nodes_key(node: Node) -> None:
    info = node.key_file.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)  # the node left it as it was
    assert denied(node.a.user, lambda: node.key_file.read_bytes()) == errno.EACCES
    assert denied(node.a.user, lambda: os.listdir(node.key_file.parent)) == errno.EACCES
    # what supervisord's watchdog is told is the key's path, never its content
    config = (node.instance_root / "etc" / "supervisord.conf").read_text()
    assert str(node.key_file) in config and "PRIVATE KEY" not in config


def test_a_cannot_reach_the_supervisord_socket(node: Node) -> None:
    path = node.instance_root / "sv.sock"
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode) and info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o700
    assert node.supervisor().running()  # root reaches it

    def connect() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(path))

    assert denied(node.a.user, connect) == errno.EACCES


def test_a_cannot_read_the_nodes_state(node: Node) -> None:
    root, soft = node.instance_root, node.software_root
    state = [root / "etc" / "supervisord.conf",
             root / "etc" / "supervisord.conf.d" / f"{node.a.pid}.conf",
             root / "etc" / "supervisord.conf.d" / f"{node.b.pid}.conf",
             root / "var" / "log" / "supervisord.log", root / "var" / "log" / "watchdog.log",
             root / "var" / "run" / "supervisord.pid", root / "var" / "run" / "node-instance.lock"]
    locks = soft / ".locks"
    state += [path for path in locks.iterdir()]
    for path in state:
        assert path.exists(), path
        assert denied(node.a.user, lambda path=path: path.read_bytes()) == errno.EACCES, path
    for directory in (root / "etc", root / "etc" / "supervisord.conf.d", root / "var" / "log",
                      root / "var" / "run", locks):
        assert denied(node.a.user, lambda directory=directory: os.listdir(directory)) == errno.EACCES, directory
    # what A needs stays reachable: its own partition, the software it runs
    assert as_user(node.a.user, lambda: (node.a.path / ".slapgrid" / "instance.json").read_text())
    assert as_user(node.a.user, lambda: os.listdir(soft))


def test_a_cannot_read_the_proxys_catalog(node: Node) -> None:
    """Issue 10: the catalog holds every instance's parameters (B's greeting among them); the
    proxy made it 0600, and SQLite gave its -wal and -shm the same mode."""
    catalog = [node.env.root / name for name in ("proxy.db", "proxy.db-wal", "proxy.db-shm")]
    assert catalog[0].exists() and catalog[1].exists()
    for path in filter(Path.exists, catalog):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert denied(node.a.user, lambda path=path: path.read_bytes()) == errno.EACCES, path


# -- 4. A on B's address ----------------------------------------------------------------------

def test_a_socket_of_a_on_bs_address_stops_as_services(node: Node) -> None:
    """Issue 10: A's user binds B's address from a process outside supervisord (as a service that
    forked away would): the node's next pass sees it (`node.listeners`), stops A's services, kills
    the process holding the socket and says why as A's status; B goes on."""
    b_address = f"127.0.{node.env.network}.{int(node.b.pid[len('slappart'):]) + 1}"
    entry = pwd.getpwnam(node.a.user)
    squatter = subprocess.Popen(
        ["/usr/bin/python3.11", "-c", "import socket, sys, time\n"
         "s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(); print(s.getsockname()[1], flush=True)\n"
         "time.sleep(300)\n", b_address],
        user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], stdout=subprocess.PIPE, cwd="/")
    try:
        assert squatter.stdout is not None
        port = int(squatter.stdout.readline())
        node.env.instance(check=False)
        reason = node.reason(node.a)
        assert f"listens on tcp {b_address}:{port}" in reason and "another partition" in reason, reason
        assert not [p for p in node.supervisor().processes(node.a.pid) if p.state in ("RUNNING", "STARTING")]
        assert squatter.wait(timeout=10) == -signal.SIGKILL  # killed by the node, not by this test
        assert node.reason(node.b) == "started"
    finally:
        squatter.kill()
        squatter.wait()
        node.repair()
    assert node.reason(node.a) == "started"


# -- 5. what A plants in its partition -----------------------------------------------------------

def _plant(link: Path, target: Path) -> None:
    """As A: replace `link` (a file or a directory of A's) by a symbolic link to `target`."""
    _remove(link)
    link.symlink_to(target)


def test_links_planted_where_a_pass_reads_and_writes_stay_unfollowed(node: Node, victim: Path) -> None:
    """One pass over A with links at every file the pass reads or writes outside ``.slapgrid``
    (which `test_a_swapped_slapgrid_is_not_followed` covers): ``.timestamp`` (read then written),
    ``buildout.cfg`` (written), ``etc/run`` and ``etc/promise`` (listed and digested), a service's
    log (written by supervisord, its tail read for the status reason)."""
    a = node.a
    (victim / "run").mkdir(mode=0o700)
    (victim / "run" / "evil").write_text(f"#!/bin/sh\necho {SECRET}\n")
    (victim / "run" / "evil").chmod(0o755)
    (victim / "promise").mkdir(mode=0o700)
    (victim / "promise" / "evil-promise").write_text(f"#!/bin/sh\necho {SECRET}; exit 1\n")
    (victim / "promise" / "evil-promise").chmod(0o755)
    b_instance = node.b.path / ".slapgrid" / "instance.json"
    before = snapshot(victim, node.b.path)
    leak_log = a.path / f".{a.pid}_leak.log"

    def plant() -> None:
        _plant(a.path / ".timestamp", b_instance)
        _plant(a.path / "buildout.cfg", victim / "secret")
        _plant(a.path / "etc" / "run", victim / "run")
        _plant(a.path / "etc" / "promise", victim / "promise")
        service = a.path / "etc" / "service" / "leak"  # a service of A's that says a word and exits
        service.write_text("#!/bin/sh\necho leaked-into-the-victim\nexit 3\n")
        service.chmod(0o755)
        _plant(leak_log, victim / "secret")

    as_user(a.user, plant)
    try:
        node.env.instance(check=False)
        assert snapshot(victim, node.b.path) == before  # not a byte, mode or owner changed outside
        reason, reported = node.reason(a), node.reported(a)
        assert reason.startswith("service leak exited with status"), reason
        assert SECRET not in reported and "evil" not in reported and "from-b" not in reported
        group = (node.instance_root / "etc" / "supervisord.conf.d" / f"{a.pid}.conf").read_text()
        assert "evil" not in group  # root did not list the victim's directory as A's etc/run
        for name in (".timestamp", "buildout.cfg"):  # replaced, not written through
            assert not (a.path / name).is_symlink(), name
        assert leak_log.is_symlink()  # supervisord refused it: it did not replace or follow it
    finally:
        as_user(a.user, lambda: [_remove(a.path / "etc" / "service" / "leak"), _remove(leak_log),
                                 _remove(a.path / "etc" / "run"), _remove(a.path / "etc" / "promise")])
        node.repair()
    assert node.reason(a) == "started"


def test_a_swapped_slapgrid_is_not_followed(node: Node, victim: Path) -> None:
    """``.slapgrid`` (the node's directory in A, root-owned) swapped for a link to a directory
    shaped like it (``log/``, ``promise/``, ``instance.json``, ``verdict.json``), then for a
    directory of A's own holding links: the pass neither reads nor writes through them."""
    a = node.a
    for name in ("log", "promise"):
        (victim / name).mkdir()
    for name in ("instance.json", "verdict.json", "log/buildout.log", "promise/hello-web-answers.json",
                 "buildout.pid"):
        (victim / name).write_text(json.dumps({"ok": True, "message": SECRET}))
    before = snapshot(victim, node.b.path)
    slapgrid = a.path / ".slapgrid"

    def aside() -> None:  # A owns the partition: it may rename the node's directory away
        if slapgrid.is_dir() and not slapgrid.is_symlink():
            os.rename(slapgrid, a.path / f"old-slapgrid-{secrets.token_hex(4)}")
        else:
            _remove(slapgrid)

    def link_it() -> None:
        aside()
        slapgrid.symlink_to(victim)

    def own_it() -> None:
        aside()
        slapgrid.mkdir()
        for name in ("instance.json", "verdict.json", "buildout.pid"):
            (slapgrid / name).symlink_to(victim / name)
        (slapgrid / "log").symlink_to(victim / "log")
        (slapgrid / "promise").symlink_to(victim / "promise")

    def race() -> None:  # swap it for the link again whenever the node has made it, all pass long
        link_it()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (a.path / "stop-racing").exists():
            if not slapgrid.is_symlink():
                try:
                    link_it()
                except OSError:
                    pass
            time.sleep(0.001)

    try:
        for swap in (link_it, own_it, race):
            as_user(a.user, lambda: _remove(a.path / ".timestamp"))
            racer = None
            if swap is race:
                racer = os.fork()
                if racer == 0:  # pragma: no cover - the racing child
                    try:
                        as_user(a.user, race)
                    finally:
                        os._exit(0)
                time.sleep(0.5)
            else:
                as_user(a.user, swap)
            try:
                node.env.instance(check=False)
            finally:
                if racer is not None:
                    as_user(a.user, lambda: (a.path / "stop-racing").write_text(""))
                    os.waitpid(racer, 0)
                    as_user(a.user, lambda: [_remove(a.path / "stop-racing"), _remove(slapgrid)])
            assert snapshot(victim, node.b.path) == before, swap.__name__
            assert SECRET not in node.reported(a), swap.__name__
    finally:
        for old in a.path.glob("old-slapgrid-*"):
            shutil.rmtree(old)
        node.repair()
    assert node.reason(a) == "started"
    info = slapgrid.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0  # the node's again


def test_fifos_planted_where_root_reads_never_block_a_pass(node: Node, victim: Path) -> None:
    """A FIFO has no writer: a root that opened it to read would wait for ever."""
    a = node.a
    os.mkfifo(victim / "fifo", 0o600)

    [service] = [p for p in node.supervisor().processes(a.pid) if p.name == "hello-web"]

    def plant() -> None:
        _remove(a.path / ".timestamp")
        os.mkfifo(a.path / ".timestamp")
        _plant(a.path / f".{a.pid}_hello-web.log", victim / "fifo")  # supervisord opens it on a start
        os.kill(service.pid, signal.SIGTERM)  # A may stop its own service: the pass starts it again

    as_user(a.user, plant)
    try:
        node.env.slapos("node", "instance", timeout=120, check=False)  # TimeoutExpired: blocked
        assert stat.S_ISFIFO((victim / "fifo").lstat().st_mode)
        assert node.supervisor().running()
        assert node.reason(a).startswith("service hello-web exited"), node.reason(a)
    finally:
        as_user(a.user, lambda: [_remove(a.path / ".timestamp"), _remove(a.path / f".{a.pid}_hello-web.log")])
        node.repair()
    assert node.reason(a) == "started"


def test_format_does_not_follow_a_planted_resource_file(node: Node, victim: Path) -> None:
    """``.slapos-resource`` (written by ``slapos node format``, kept across destruction): a link to
    the victim is replaced, not written through; a FIFO does not block the command."""
    a = node.a
    before = snapshot(victim)
    as_user(a.user, lambda: _plant(a.path / ".slapos-resource", victim / "secret"))
    node.env.format()
    assert snapshot(victim) == before
    resource = a.path / ".slapos-resource"
    assert not resource.is_symlink() and json.loads(resource.read_text())["partition_id"] == a.pid
    as_user(a.user, lambda: [_remove(resource), os.mkfifo(resource)])
    node.env.slapos("node", "format", timeout=60)
    assert stat.S_ISREG(resource.lstat().st_mode)
