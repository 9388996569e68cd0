"""A real node for end-to-end tests: a proxy, a node configuration, and the real `slapos` command.

`NodeEnv` makes a short directory under /tmp (supervisord's socket path must stay short), starts
`slapos proxy start`, writes one configuration file for the proxy, the node and the client, and runs
`slapos node …` as a subprocess:

- root mode (the default when the tests run as root): partition users ``<prefix>N`` made by
  `slapos node format` for this test only (removed at the end), builds as the shared ``slapsoft``;
- single-user mode (``as_user=single_user()``): as root, every command runs through ``runuser`` with the
  ``slapos`` of a Partita environment that user can run (`tests.support.toolchain.node_slapos`:
  the project's own environment may not be reachable by that user); as another user, the
  commands run as that user directly.

Every test gets its own 127.0.K.0/24 network, so partitions of concurrent environments never share
an address. `close()` stops the daemon, supervisord, the proxy and the partitions' processes, and
removes the users and the directory.
"""
from __future__ import annotations

import configparser
import contextlib
import hashlib
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from partita.slap.client import MasterClient
from tests.support import server
from tests.support.toolchain import TOOLCHAIN_ROOT, node_slapos, test_toolchain

SLAPOS = str(Path(sys.executable).parent / "slapos")
NODE_USER = "slapnode"  # made by scripts/peer-setup, like the compatibility tests' node user
REPO = Path(__file__).resolve().parents[2]
HELLO_WEB = REPO / "software-releases" / "hello-web" / "software.cfg"
CACHE_ROOT = TOOLCHAIN_ROOT.parent
COMPUTER = "local_computer"


def single_user() -> str:
    """Who single-user tests run the node as: ``slapnode`` (through ``runuser``) when the tests
    run as root, else the unprivileged user running them."""
    return NODE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def as_single_user(*args: str) -> list[str]:
    """``slapos ARGS`` run as `single_user()`: through ``runuser`` with a Partita that user can
    run when the tests run as root, else directly with the project's own."""
    if os.geteuid() != 0:
        return [SLAPOS, *args]
    return ["runuser", "-u", NODE_USER, "--", node_slapos(), *args]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class NodeEnv:
    def __init__(self, *, partitions: int = 3, as_user: str | None = None,
                 extra: dict[str, dict[str, str]] | None = None, slapos: str = SLAPOS) -> None:
        self.as_user = as_user
        self.slapos_command = slapos
        self.root = Path(tempfile.mkdtemp(prefix="pt", dir="/tmp"))
        self.root.chmod(0o755)
        self.prefix = "pt" + secrets.token_hex(2) + "u"
        self.network = random.randint(100, 250)
        self.daemon: subprocess.Popen | None = None
        self.toolchain = test_toolchain()
        self.proxy = server.start(self.root, ("proxy", "start"), slapos=slapos)
        try:
            cache = CACHE_ROOT / ("cache" if as_user is None else f"cache-{as_user}")
            cache.mkdir(parents=True, exist_ok=True)
            if as_user is not None and os.geteuid() == 0:
                entry = pwd.getpwnam(as_user)
                for path in (self.root, cache):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
                for path in self.root.iterdir():
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            self.config_path = self.root / "slapos.cfg"
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(self.proxy.config_path.read_text())
            parser["slapos"].update({
                "instance_root": str(self.root / "srv"), "software_root": str(self.root / "soft"),
                "toolchain_directory": str(TOOLCHAIN_ROOT), "cache_directory": str(cache),
                "promise_timeout": "10", "buildout_timeout": "120", "software_timeout": "300",
            })
            parser["slapformat"] = {
                "partition_amount": str(partitions), "user_base_name": self.prefix, "software_user": "slapsoft",
                "ipv4_local_network": f"127.0.{self.network}.0/24", "alter_network": "false",
            }
            for section, values in (extra or {}).items():
                parser[section].update(values)
            with open(self.config_path, "w") as handle:
                parser.write(handle)
            if as_user is not None and os.geteuid() == 0:
                os.chown(self.config_path, pwd.getpwnam(as_user).pw_uid, -1)
        except BaseException:  # a half-made environment leaves no proxy running
            self.proxy.stop()
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.client = MasterClient(self.proxy.url)

    # -- commands ------------------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        if self.as_user is None or os.geteuid() != 0:
            return [self.slapos_command, *args]
        return ["runuser", "-u", self.as_user, "--", node_slapos(), *args]

    def slapos(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self.command(*args, "--cfg", str(self.config_path)), capture_output=True,
                                text=True, timeout=timeout, env=self._env(), cwd=self.root)
        if check and result.returncode != 0:
            raise AssertionError(f"slapos {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def _env(self) -> dict[str, str]:
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                "HOME": str(self.root)}

    def format(self) -> None:
        self.slapos("node", "format")

    def software(self, check: bool = True) -> subprocess.CompletedProcess:
        return self.slapos("node", "software", check=check)

    def instance(self, check: bool = True) -> subprocess.CompletedProcess:
        return self.slapos("node", "instance", check=check)

    def report(self, check: bool = True) -> subprocess.CompletedProcess:
        return self.slapos("node", "report", check=check)

    def start_daemon(self) -> subprocess.Popen:
        log = open(self.root / "node-run.log", "ab")
        self.daemon = subprocess.Popen(self.command("-v", "node", "run", "--cfg", str(self.config_path)),
                                       stdout=log, stderr=subprocess.STDOUT, env=self._env())
        log.close()
        return self.daemon

    def stop_daemon(self, sig: int = signal.SIGTERM) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=10)
        self.daemon = None

    def daemon_log(self) -> str:
        path = self.root / "node-run.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the master ------------------------------------------------------------------------------

    def supply_and_request(self, title: str, url: Path | str = HELLO_WEB, **parameters: Any) -> dict:
        self.client.supply(COMPUTER, str(url))
        return self.client.request_instance(title, str(url), parameters=parameters)

    def info(self, title: str) -> dict:
        return self.client.get_instance_tree(title)

    def wait_for(self, title: str, predicate: Any, timeout: float = 60.0, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        doc: dict = {}
        while time.monotonic() < deadline:
            doc = self.info(title)
            if predicate(doc):
                return doc
            time.sleep(0.2)
        raise AssertionError(f"{title}: {what or 'condition'} not reached in {timeout:g}s; last: "
                             f"{doc.get('status_reason')!r}, {doc.get('connection_parameters')!r}\n"
                             f"{self.daemon_log()[-3000:]}")

    def partition_path(self, partition_id: str) -> Path:
        return self.root / "srv" / partition_id

    def software_directory(self, url: str | Path) -> Path:
        """Where the node builds the release `url` (``software_root/<md5(url)>``)."""
        return self.root / "soft" / hashlib.md5(str(url).encode()).hexdigest()

    # -- cleanup ---------------------------------------------------------------------------------

    def close(self) -> None:
        self.stop_daemon(signal.SIGKILL)
        self._shutdown_supervisor()
        self.proxy.stop()
        if self.as_user is None:
            self._remove_users()
        shutil.rmtree(self.root, ignore_errors=True)

    def _shutdown_supervisor(self) -> None:
        from partita.node.config import node_config
        from partita.node.supervisor import Supervisor
        from partita.slap.config import read_config

        try:
            Supervisor(node_config(read_config(str(self.config_path)))).shutdown()
        except Exception as error:  # cleanup goes on: report but do not mask the test's outcome
            print(f"cleanup: supervisord shutdown: {error}", file=sys.stderr)

    def _remove_users(self) -> None:
        for entry in pwd.getpwall():
            if entry.pw_name.startswith(self.prefix):
                subprocess.run(["pkill", "-KILL", "-u", entry.pw_name], capture_output=True, timeout=30)
                subprocess.run(["userdel", entry.pw_name], capture_output=True, timeout=30)
                subprocess.run(["groupdel", entry.pw_name], capture_output=True, timeout=30)


@contextlib.contextmanager
def node_with_software(url: str | Path, *, partitions: int) -> Iterator[NodeEnv]:
    """A formatted node with the release `url` supplied and built (a module's fixture), closed after."""
    node = NodeEnv(partitions=partitions)
    try:
        node.format()
        node.client.supply(COMPUTER, str(url))
        node.software()
        yield node
    finally:
        node.close()
