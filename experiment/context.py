"""What every command works with: the local directory, its state, the SSH client and the master's
client (the admin's configuration ``up`` wrote under ``--dir``)."""
from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

from partita.experiment.ssh import Ssh
from partita.experiment.state import HostState, State
from partita.slap.cli.common import open_client
from partita.slap.client import MasterClient

NODE_CONFIG = "node/slapos.cfg"
NODE_PIDFILE = "node/node-run.pid"
NODE_LOG = "node/node-run.log"
MASTER_CONFIG = "master/master.cfg"
MASTER_PIDFILE = "master/master.pid"
MASTER_LOG = "master/master.log"


@dataclass
class Context:
    directory: Path
    state: State

    @property
    def ssh(self) -> Ssh:
        return Ssh(self.state.ssh_user, self.state.ssh_config)

    @property
    def client_config(self) -> Path:
        return self.directory / "client" / "slapos-client.cfg"

    def client(self) -> MasterClient:
        return open_client(str(self.client_config))


def path(host: HostState, relative: str) -> str:
    return f"{host.remote_dir}/{relative}"


def computer_id_of(text: str | None) -> str:
    """The ``[slapos] computer_id`` of a node configuration's text ("" if none)."""
    if not text:
        return ""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return ""
    return parser.get("slapos", "computer_id", fallback="")
