"""The errors of `partita.experiment`, each ending a command with one line (`slap.cli.main`).

The tree::

    PartitaError (slap.errors)
    └── ExperimentError          an experiment command cannot go on
        ├── HostsFileError       the hosts file is missing, empty or names a bad host
        ├── SshError             a command on a host failed (the message names the host)
        ├── StateError           the local state is missing, unreadable or of another experiment
        └── WheelhouseError      the wheels for the hosts could not be made
"""
from __future__ import annotations

from partita.slap.errors import PartitaError


class ExperimentError(PartitaError):
    code = "EXPERIMENT"


class HostsFileError(ExperimentError):
    pass


class SshError(ExperimentError):
    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class StateError(ExperimentError):
    pass


class WheelhouseError(ExperimentError):
    pass
