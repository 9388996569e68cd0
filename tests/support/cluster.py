"""Several real nodes, each in its own network namespace, on one real master (issue 13).

`start_cluster(postgres_server, count)` (a context manager) runs, as root:

- the network of `tests.support.netns` (a bridge, `count` namespaces with no default route);
- the master: `slapos master init` + `slapos master start` on a PostgreSQL database of the tests'
  cluster, serving HTTPS with certificates on the bridge's address (a master without
  authentication refuses any address but loopback);
- the admin's client: `slapos configure client` with the token `init` printed, then one
  `slapos computer token create` per node;
- each node, inside its namespace: `slapos node register` (its own configuration directory,
  instance and software roots, partitions in 10.X.K.0/24 and a /96 of the cluster's IPv6 /64, on
  its veth), its configuration completed (a partition user prefix of its own, machine-wide users
  being shared by every namespace; the tests' prebuilt toolchain and cache, so that a build needs
  nothing from outside), `slapos node format`, then `slapos node run` in the background.

Names carry the test process's pid in hex (``<run>``): the directory ``/tmp/pt-<run>-c``, users
``pt<run>k<K>u<N>``. On exit everything is removed even after a failure or a KeyboardInterrupt:
the processes in the namespaces, the master, the users, the database, the directory and the
network; `remove_stale` removes what a killed run left (its process is gone).
"""
from __future__ import annotations

import configparser
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from partita.node.listeners import read_processes
from partita.slap.client import MasterClient
from tests.support import netns
from tests.support.netns import ClusterNetwork, Namespace
from tests.support.postgres import PostgresServer
from tests.support.processes import kill_processes_under
from tests.support.server import ServerProcess
from tests.support.toolchain import TOOLCHAIN_ROOT, test_toolchain

SLAPOS = str(Path(sys.executable).parent / "slapos")
CACHE = TOOLCHAIN_ROOT.parent / "cache"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_TOKEN = re.compile(r"enrolment token \(single use, valid 24 hours\): (\S+)")
_REGISTERED = re.compile(r"registered as computer (\S+?);")
_DIRECTORY = re.compile(r"^pt-([0-9a-f]+)-c$")
_USER = re.compile(r"^pt([0-9a-f]+)k\d+u\d+$")
START_DEADLINE = 60.0


@dataclass
class ClusterNode:
    """One node: its namespace, its files and its daemon (``slapos node run``)."""

    network: ClusterNetwork
    namespace: Namespace
    directory: Path
    computer_id: str
    ipv4_network: str
    ipv6_network: str
    user_prefix: str
    daemon: subprocess.Popen | None = None
    software_mount: Path | None = None  # with a shared software root: the node's own directory mounted there

    def _argv(self, argv: list[str]) -> list[str]:
        """`argv`, after bind-mounting the node's own software directory on the shared software root
        (``ip netns exec`` gives each command a mount namespace of its own)."""
        if self.software_mount is None:
            return argv
        shared = self.network_directory / "soft"
        return ["sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", str(self.software_mount),
                str(shared), *argv]

    @property
    def network_directory(self) -> Path:
        return self.directory.parent

    @property
    def config_path(self) -> Path:
        return self.directory / "slapos.cfg"

    @property
    def log_path(self) -> Path:
        return self.directory / "node-run.log"

    def env(self) -> dict[str, str]:
        env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": str(self.directory), "PYTHONUNBUFFERED": "1"}
        if os.environ.get("PYTHONPATH"):  # the tests' Partita is the nodes' (e.g. a snapshot of it)
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return env

    def slapos(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """``slapos ARGS --cfg <its configuration>`` run inside its namespace."""
        done = self.network.run_in(self.namespace, self._argv([SLAPOS, *args, "--cfg", str(self.config_path)]),
                                   timeout=timeout, env=self.env(), cwd=self.directory)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.namespace.name}: slapos {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def start(self) -> None:
        """``slapos node run`` in the background, inside its namespace."""
        with open(self.log_path, "ab") as log:
            self.daemon = self.network.popen_in(
                self.namespace, self._argv([SLAPOS, "-v", "node", "run", "--cfg", str(self.config_path)]),
                stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.directory)

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=10)

    def kill_hard(self) -> list[int]:
        """SIGKILL the daemon and the node's supervisord (not the services they started); their pids."""
        killed = [pid for pid in netns.namespace_pids(self.namespace.name)
                  if _is_daemon_or_supervisord(pid, self.config_path, self.directory)]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.daemon is not None:
            self.daemon.wait(timeout=10)
        return killed

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    network: ClusterNetwork
    directory: Path
    master_url: str
    master: ServerProcess
    client: MasterClient
    client_config: Path
    nodes: list[ClusterNode] = field(default_factory=list)

    def wait_for(self, title: str, predicate: Callable[[dict], bool], timeout: float = 120.0,
                 what: str = "", interval: float = 0.3) -> dict:
        """The instance tree `title`'s document once `predicate` holds (an AssertionError naming the
        last status and the nodes' log tails otherwise)."""
        deadline = time.monotonic() + timeout
        doc: dict = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                doc = self.client.get_instance_tree(title)
                if predicate(doc):
                    return doc
            time.sleep(interval)
        tails = "\n".join(f"--- {node.namespace.name}\n{node.log()[-2000:]}" for node in self.nodes)
        raise AssertionError(f"{title}: {what or 'condition'} not reached in {timeout:g}s; last: "
                             f"{doc.get('status_reason')!r}, {doc.get('connection_parameters')!r}\n{tails}")


def _is_daemon_or_supervisord(pid: int, config_path: Path, directory: Path) -> bool:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    line = b" ".join(words).decode(errors="replace")
    if "node run" in line and str(config_path) in line:
        return True
    return "supervisord" in line and str(directory) in line


@contextlib.contextmanager
def start_cluster(postgres_server: PostgresServer, count: int, *, partitions: int = 3,
                  database: str | None = None, unreachable_after: int | None = None,
                  shared_software_root: bool = False) -> Iterator[Cluster]:
    """`count` registered, formatted and running nodes on one master (see the module docstring);
    `unreachable_after`: the master's ``[slapmaster] unreachable_after`` if given.
    `shared_software_root`: every node's ``software_root`` is one path (``<directory>/soft``), on
    which each node's commands see its own ``n<K>/soft`` mounted, as on machines of their own (the
    binary cache's key names the software root)."""
    remove_stale()
    test_toolchain()  # built once, before any node needs it
    CACHE.mkdir(parents=True, exist_ok=True)
    run_id = format(os.getpid(), "x")
    directory = Path(f"/tmp/pt-{run_id}-c")
    database = database or f"cluster_{run_id}"
    cluster: Cluster | None = None
    with netns.cluster_network(count, run_id=run_id) as network:
        try:
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(mode=0o755)
            directory.chmod(0o755)
            cluster = _start_master(network, directory, postgres_server.create_database(database),
                                    unreachable_after)
            for namespace in network.namespaces:
                cluster.nodes.append(_register(cluster, namespace, partitions, shared_software_root))
            for node in cluster.nodes:
                node.slapos("node", "format")
                node.start()
            yield cluster
        finally:
            for node in cluster.nodes if cluster else []:
                node.stop()
            _kill_namespaces(network)
            if cluster is not None:
                cluster.client.close()
                cluster.master.stop()
            kill_processes_under(directory)
            _remove_users(run_id)
            postgres_server.drop_database(database)
            shutil.rmtree(directory, ignore_errors=True)


def _start_master(network: ClusterNetwork, directory: Path, database_url: str,
                  unreachable_after: int | None = None) -> Cluster:
    host = network.bridge_ipv4
    port = _free_port(host)
    master_dir = directory / "master"
    master_dir.mkdir(mode=0o700)
    config = master_dir / "master.cfg"
    config.touch(mode=0o600)
    config.write_text(f"[slapmaster]\ndatabase_uri = {database_url}\nhost = {host}\nport = {port}\n"
                      f"workers = 2\nthreads = 16\ntls_addresses = {host}\n"
                      + (f"unreachable_after = {unreachable_after}\n" if unreachable_after else ""))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    init = subprocess.run([SLAPOS, "master", "init", "--cfg", str(config)], capture_output=True, text=True,
                          cwd=master_dir, env=env, timeout=120)
    token = _TOKEN.search(init.stdout)
    if init.returncode != 0 or not token:
        raise RuntimeError(f"slapos master init failed: {init.stderr}{init.stdout}")
    url = f"https://{host}:{port}"
    master = _launch_master(url, config)
    try:
        client_config = directory / "admin" / "slapos-client.cfg"
        _run([SLAPOS, "configure", "client", "--master-url", url, "--token", token[1], "--cfg", str(client_config)],
             directory)
        files = configparser.ConfigParser(interpolation=None)
        files.read(client_config)
        client = MasterClient(url, cert=(files["slapos"]["cert_file"], files["slapos"]["key_file"]),
                              ca_file=files["slapos"]["partita_ca_file"], timeout=30)
    except BaseException:
        master.stop()
        raise
    return Cluster(network, directory, url, master, client, client_config)


def _launch_master(url: str, config: Path) -> ServerProcess:
    """``slapos master start`` on `config` (its log appended to), once it answers at `url`."""
    master_dir = config.parent
    log_path = master_dir / "master-start.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([SLAPOS, "master", "start", "--cfg", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                   cwd=master_dir)
    master = ServerProcess(url, process, log_path, config)
    try:
        _wait_answers(master, master_dir / "pki" / "ca.crt")
    except BaseException:
        master.stop()
        raise
    return master


def stop_master(cluster: Cluster) -> list[int]:
    """Stop the master (SIGTERM: gunicorn's arbiter stops its workers); the pids that were its
    processes, every one of them gone (an AssertionError otherwise)."""
    pids = [cluster.master.process.pid, *children(cluster.master.process.pid)]
    cluster.master.stop()
    deadline = time.monotonic() + 10  # an orphaned worker may still be finishing its exit
    while (left := [pid for pid in pids if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"master processes still there after its stop: {left}"
    return pids


def _running(pid: int) -> bool:
    """Whether process `pid` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_master(cluster: Cluster) -> None:
    """Start the master again on the same address, configuration and database."""
    cluster.master = _launch_master(cluster.master_url, cluster.master.config_path)


def _register(cluster: Cluster, namespace: Namespace, partitions: int,
              shared_software_root: bool = False) -> ClusterNode:
    """`slapos node register` inside the namespace with a token the admin made, then the
    configuration completed for a node sharing the machine with others."""
    network, index = cluster.network, namespace.index
    token = _run([SLAPOS, "computer", "token", "create", "--title", f"node-{index}",
                  "--cfg", str(cluster.client_config)], cluster.directory).stdout.strip()
    node_dir = cluster.directory / f"n{index}"
    node_dir.mkdir(mode=0o755)
    node = ClusterNode(network, namespace, node_dir, "", network.node_ipv4_network(index),
                       network.node_ipv6_network(index), f"pt{network.run_id}k{index}u")
    done = node.slapos("node", "register", "--token", token, "--master-url", cluster.master_url,
                       "--ipv4-local-network", node.ipv4_network, "--interface-name", namespace.interface,
                       "--partition-number", str(partitions),
                       "--instance-root", str(node_dir / "srv"), "--software-root", str(node_dir / "soft"))
    registered = _REGISTERED.search(done.stdout)
    assert registered, done.stdout
    node.computer_id = registered[1]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(node.config_path)
    parser["slapos"].update({
        "toolchain_directory": str(TOOLCHAIN_ROOT), "cache_directory": str(CACHE),
        "promise_timeout": "10", "buildout_timeout": "120", "software_timeout": "300",
    })
    parser["slapformat"].update({"user_base_name": node.user_prefix, "ipv6_local_network": node.ipv6_network})
    if shared_software_root:
        (cluster.directory / "soft").mkdir(mode=0o755, exist_ok=True)
        node.software_mount = node_dir / "soft"
        node.software_mount.mkdir(mode=0o755, exist_ok=True)
        parser["slapos"]["software_root"] = str(cluster.directory / "soft")
    with open(node.config_path, "w") as handle:
        parser.write(handle)
    return node


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv[1:4])} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def _wait_answers(master: ServerProcess, ca_file: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if master.process.poll() is not None:
            raise RuntimeError(f"master exited with {master.process.returncode}:\n{master.log()}")
        try:
            requests.get(master.url + "/partita/ca.crt", timeout=2, verify=str(ca_file))
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise RuntimeError(f"master did not answer within {START_DEADLINE:g} s:\n{master.log()}")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- clean-up ------------------------------------------------------------------------------------

def remove_stale() -> None:
    """What runs whose process is gone left: their processes, users, directories and networks."""
    netns.remove_stale()  # kills what ran in their namespaces
    runs = {match[1] for match in map(_DIRECTORY.match, os.listdir("/tmp")) if match}
    runs |= {match[1] for match in (_USER.match(entry.pw_name) for entry in pwd.getpwall()) if match}
    for run in runs:
        if not Path(f"/proc/{int(run, 16)}").exists():
            kill_processes_under(Path(f"/tmp/pt-{run}-c"))
            _remove_users(run)
            shutil.rmtree(f"/tmp/pt-{run}-c", ignore_errors=True)


def _kill_namespaces(network: ClusterNetwork) -> None:
    for namespace in network.namespaces:
        for pid in netns.namespace_pids(namespace.name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _remove_users(run_id: str) -> None:
    for entry in pwd.getpwall():
        match = _USER.match(entry.pw_name)
        if match and match[1] == run_id:
            subprocess.run(["pkill", "-KILL", "-u", entry.pw_name], capture_output=True, timeout=30)
            subprocess.run(["userdel", entry.pw_name], capture_output=True, timeout=30)
            subprocess.run(["groupdel", entry.pw_name], capture_output=True, timeout=30)


def listeners(network: ClusterNetwork, namespace: Namespace, address: str, port: int) -> list[str]:
    """The processes listening on address:port inside `namespace` (``ss -Hltnp``'s lines)."""
    done = network.run_in(namespace, ["ss", "-Hltnp", f"src {address}:{port}" if ":" not in address
                                      else f"src [{address}]:{port}"])
    return [line for line in done.stdout.splitlines() if line.strip()]


def http_get_in(network: ClusterNetwork, namespace: Namespace, url: str, *, source: str | None = None,
                timeout: float = 5) -> str:
    """GET `url` from inside `namespace` (curl; from address `source` if given): the body, or
    an AssertionError with curl's error."""
    argv = ["curl", "-sS", "--max-time", str(timeout), *(["--interface", source] if source else []), url]
    done = network.run_in(namespace, argv, timeout=timeout + 10)
    if done.returncode != 0:
        raise AssertionError(f"curl {url} from {namespace.name}: {done.stderr.strip()}")
    return done.stdout


def supply_and_request(cluster: Cluster, title: str, url: str, node: ClusterNode, **parameters: Any) -> dict:
    cluster.client.supply(node.computer_id, url)
    return cluster.client.request_instance(title, url, parameters=parameters,
                                           sla_parameters={"computer_guid": node.computer_id})


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the master's workers)."""
    return [process.pid for process in read_processes() if process.ppid == pid]
