"""Hosts reached over SSH for the experiment tests: the network of `tests.support.netns` (a bridge
and N namespaces with no default route) with a real ``sshd`` (Debian's openssh-server) in each.

`ssh_hosts(count)` (a context manager, as root) makes, under ``/tmp/pt-<run>-x`` (0755):

- an ed25519 client key and one host key per host, ``authorized_keys`` with the client key;
- per namespace K an ``sshd`` started with a configuration of its own: ``ListenAddress`` on the
  namespace's address only, its host key, ``PermitRootLogin prohibit-password``, no password,
  ``PidFile`` in the directory; no system-wide sshd is started or touched;
- ``ssh_config`` for the client (``ssh -F``): ``Host hK`` -> the namespace's address, the client
  key, ``UserKnownHostsFile`` in the directory (filled with the host keys: strict checking on).

Commands run over SSH run as root inside the namespace: each host is a machine that reaches the
others and the bridge, nothing else; they share this machine's file system and users, so tests
give each host its own directories and user prefix. On exit, even after a failure: the
processes in the namespaces (sshd and whatever the test started there) and under the directory
killed, the users of the run (``pt<run>e…``) removed, the directory and the network removed.
`remove_stale` does the same for runs whose process is gone.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import netns
from tests.support.netns import ClusterNetwork, Namespace
from tests.support.processes import kill_processes_under

SSHD = "/usr/sbin/sshd"
_DIRECTORY = re.compile(r"^pt-([0-9a-f]+)-x$")
_USER = re.compile(r"^pt([0-9a-f]+)e(?:\d+u\d+|pg)$")
START_DEADLINE = 20.0


@dataclass
class SshHosts:
    network: ClusterNetwork
    directory: Path
    run_id: str
    names: list[str] = field(default_factory=list)

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def user_prefix(self) -> str:
        """The start of every unix user the run makes (``<prefix><K>u<N>``, ``<prefix>pg``)."""
        return f"pt{self.run_id}e"

    def namespace(self, name: str) -> Namespace:
        return self.network.namespaces[self.names.index(name)]

    def ssh(self, name: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(self.ssh_config), name, command], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def sshd_pids(self) -> set[int]:
        pids = set()
        for path in self.directory.glob("sshd-*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.add(int(path.read_text().split()[0]))
        return pids


@contextlib.contextmanager
def ssh_hosts(count: int) -> Iterator[SshHosts]:
    remove_stale()
    run_id = format(os.getpid(), "x")
    directory = Path(f"/tmp/pt-{run_id}-x")
    with netns.cluster_network(count, run_id=run_id) as network:
        hosts = SshHosts(network, directory, run_id, [f"h{namespace.index}" for namespace in network.namespaces])
        try:
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(mode=0o755)
            directory.chmod(0o755)
            _keys(hosts)
            for namespace in network.namespaces:
                _start_sshd(hosts, namespace)
            for name in hosts.names:
                _wait_ssh(hosts, name)
            yield hosts
        finally:
            _clean(hosts)


def _keys(hosts: SshHosts) -> None:
    directory = hosts.directory
    _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    known, config = [], []
    for namespace in hosts.network.namespaces:
        key = directory / f"host-{namespace.index}_key"
        _keygen(key)
        known.append(f"{namespace.ipv4} {' '.join(Path(f'{key}.pub').read_text().split()[:2])}\n")
        config.append(f"Host h{namespace.index}\n    HostName {namespace.ipv4}\n")
    (directory / "known_hosts").write_text("".join(known))
    config.append(f"Host *\n    User root\n    IdentityFile {directory / 'client_key'}\n    IdentitiesOnly yes\n"
                  f"    UserKnownHostsFile {directory / 'known_hosts'}\n    GlobalKnownHostsFile /dev/null\n"
                  "    StrictHostKeyChecking yes\n    BatchMode yes\n    LogLevel ERROR\n")
    hosts.ssh_config.write_text("".join(config))


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def _start_sshd(hosts: SshHosts, namespace: Namespace) -> None:
    directory, index = hosts.directory, namespace.index
    config = directory / f"sshd-{index}.conf"
    config.write_text(
        f"ListenAddress {namespace.ipv4}:22\nHostKey {directory / f'host-{index}_key'}\n"
        f"PidFile {directory / f'sshd-{index}.pid'}\nAuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nX11Forwarding no\nAllowTcpForwarding no\nPrintMotd no\n"
        "Subsystem sftp internal-sftp\nMaxStartups 100:30:200\nMaxSessions 50\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    done = hosts.network.run_in(namespace, [SSHD, "-f", str(config), "-E", str(directory / f"sshd-{index}.log")])
    if done.returncode != 0:
        raise RuntimeError(f"sshd in {namespace.name}: {done.stderr.strip() or done.returncode}")


def _wait_ssh(hosts: SshHosts, name: str) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while True:
        done = hosts.ssh(name, "true", timeout=15)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"ssh {name}: {done.stderr.strip()}")
        time.sleep(0.2)


def _clean(hosts: SshHosts) -> None:
    for namespace in hosts.network.namespaces:  # sshd and what was started over it
        for pid in netns.namespace_pids(namespace.name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
    kill_processes_under(hosts.directory)
    remove_users(hosts.run_id)
    shutil.rmtree(hosts.directory, ignore_errors=True)


def users_of(run_id: str) -> list[str]:
    return [entry.pw_name for entry in pwd.getpwall()
            if (match := _USER.match(entry.pw_name)) and match[1] == run_id]


def remove_users(run_id: str) -> None:
    for name in users_of(run_id):
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True, timeout=30)
        subprocess.run(["userdel", name], capture_output=True, timeout=30)
        subprocess.run(["groupdel", name], capture_output=True, timeout=30)


def remove_stale() -> None:
    """What runs whose process is gone left: processes, users, directories and networks."""
    netns.remove_stale()
    runs = {match[1] for match in map(_DIRECTORY.match, os.listdir("/tmp")) if match}
    runs |= {match[1] for match in (_USER.match(entry.pw_name) for entry in pwd.getpwall()) if match}
    for run in runs:
        if not Path(f"/proc/{int(run, 16)}").exists():
            kill_processes_under(Path(f"/tmp/pt-{run}-x"))
            remove_users(run)
            shutil.rmtree(f"/tmp/pt-{run}-x", ignore_errors=True)
