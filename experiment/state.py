"""The local state of an experiment, ``<dir>/experiment.json``: the hosts, their roles and remote
directories, the master's URL and what ``up`` made. Written atomically (a temporary file renamed
over it) and owner-only: it names the client configuration whose key reaches the master as admin.

``running`` is true from the first ``up`` to a ``down``; ``down`` keeps the file (the wheelhouse
beside it is reused) with ``running`` false and the hosts' runtime fields emptied.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from partita.experiment.errors import StateError

VERSION = 1
FILE_NAME = "experiment.json"


@dataclass
class HostState:
    name: str
    index: int
    role: str
    remote_dir: str
    address: str = ""
    interface: str = ""
    computer_id: str = ""
    partitions: int = 0


@dataclass
class State:
    hosts: list[HostState] = field(default_factory=list)
    ssh_user: str = "root"
    ssh_config: str | None = None
    master_url: str = ""
    client_config: str = ""
    postgres_user: str = ""
    postgres_user_created: bool = False
    software: list[str] = field(default_factory=list)
    running: bool = False

    @property
    def master(self) -> HostState:
        return self.hosts[0]

    @property
    def nodes(self) -> list[HostState]:
        return self.hosts[1:]


def state_path(directory: str | Path) -> Path:
    return Path(directory) / FILE_NAME


def load(directory: str | Path) -> State | None:
    """The state under `directory`, None if there is none."""
    path = state_path(directory)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise StateError(f"cannot read the experiment state {path}: {error}")
    try:
        if data.pop("version") != VERSION:
            raise ValueError("another version")
        hosts = [HostState(**host) for host in data.pop("hosts")]
        return State(hosts=hosts, **data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise StateError(f"{path} is not an experiment state ({error})")


def require(directory: str | Path) -> State:
    state = load(directory)
    if state is None:
        raise StateError(f"no experiment under {directory} (run 'slapos experiment up' first, or give --dir)")
    return state


def save(directory: str | Path, state: State) -> Path:
    """Write `state` atomically, owner-only."""
    path = state_path(directory)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps({"version": VERSION, **asdict(state)}, indent=2, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".experiment-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:  # mkstemp makes it 0600
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
