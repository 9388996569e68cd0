"""Errors of the node agent. Each becomes one readable line for the user and, where it concerns a
software release or an instance, the status reason the master shows.

The tree::

    PartitaError (slap.errors)
    └── NodeError                      the node could not do something
        ├── SetupError                 this machine cannot host the node as configured
        │                              (users, addresses, directories, the toolchain)
        │   └── AddressInUse           an address format would take is another node's or
        │                              already on the interface (`node.claims`)
        ├── CommandFailed              a subprocess failed or ran past its deadline; carries the
        │                              log tail that the status reason shows
        ├── LockTimeout                another process holds a lock past the deadline
        ├── Interrupted                the node was told to stop (SIGINT, SIGTERM): the
        │                              subprocess it ran was killed; not a failure to report
        └── SupervisorError            the node's supervisord did not answer or refused
"""
from __future__ import annotations

from partita.slap.errors import PartitaError


class NodeError(PartitaError):
    code = "NODE"


class SetupError(NodeError):
    code = "NODE_SETUP"


class AddressInUse(SetupError):
    code = "ADDRESS_IN_USE"


class CommandFailed(NodeError):
    """A subprocess failed. `tail` is the end of its output, for the status reason."""

    code = "COMMAND_FAILED"

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


class LockTimeout(NodeError):
    code = "LOCK_TIMEOUT"


class Interrupted(NodeError):
    code = "INTERRUPTED"


class SupervisorError(NodeError):
    code = "SUPERVISOR"
