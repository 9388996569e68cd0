"""``partita:request``: request a child instance (or a shared one) and read what it published.

::

    [database]
    recipe = partita:request
    name = database                       # title, unique within this instance tree
    software-url = ${slap-connection:software-release-url}
    software-type = postgres              # default: default
    config-user = app                     # parameters given to the child
    sla-computer_guid = COMP-2            # placement (an empty value: no constraint)
    return = url password                 # connection parameters to read back
    shared = false                        # true: a shared instance hosted by another instance
    optional = false                      # true: never fail, leave missing values empty

The request is sent when buildout initialises the section, so ``${database:connection-url}`` is
known to the sections that follow. A value in ``return`` that the child has not published yet
fails the part at install or update ("waiting for database: …"): the node runs the partition
again later, which is how an instance tree converges. The master's answer is read as the JSON
API's instance document (`slap.wire.instance`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from partita.recipes.common import (
    SlapConnection, as_option, fail, flag, master_client, required, slap_connection, words,
)
from partita.slap import request_transaction
from partita.slap.errors import ClientError, MalformedDocument
from partita.slap.wire.instance import InstanceDocument, parse_instance

log = logging.getLogger(__name__)

_STATES = ("started", "stopped")


def prefixed(options: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The options whose name starts with `prefix`, without it."""
    return {key[len(prefix):]: options[key] for key in options
            if key.startswith(prefix) and len(key) > len(prefix)}


def sla_options(options: Mapping[str, str]) -> dict[str, str]:
    """The ``sla-`` options that say something: an empty one is no constraint, so a profile can
    pass a parameter that is empty by default (``sla-computer_guid = ${…:leaf-computer}``)."""
    return {key: value for key, value in prefixed(options, "sla-").items() if value.strip()}


def requested_state(options: Mapping[str, str], requester_state: str, name: str) -> str:
    """The state asked for the child: ``state``, or stopped when the requester is stopped."""
    state = options.get("state", "").strip()
    if not state:
        return "stopped" if requester_state == "stopped" else "started"
    if state not in _STATES:
        raise fail(f"[{name}] option 'state' must be started or stopped, not {state!r}")
    return state


def missing_values(published: Mapping[str, Any], returned: list[str]) -> list[str]:
    """The `returned` names the child has not published."""
    return [key for key in returned if key not in published]


class Recipe:
    """Requests in ``__init__``; install and update fail while a returned value is missing."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        self.optional = flag(options, "optional", name)
        self.title = required(options, "name", name)
        self.returned = words(options.get("return", ""))
        self.failure = ""
        connection = slap_connection(buildout, name)
        document = self._request(connection, options)
        self._record(buildout, connection)
        if document is None:
            published: Mapping[str, Any] = {}
            self.status, guid, state = self.failure, "", ""
        else:
            published = document.connection_parameters
            self.status, guid, state = document.status_reason, document.instance_guid or "", document.state
        self.missing = missing_values(published, self.returned)
        for key in self.returned:
            options[f"connection-{key}"] = as_option(published.get(key, ""))
        options["instance-guid"] = guid
        options["instance-state"] = state
        options["instance-status"] = self.status

    def _request(self, connection: SlapConnection, options: Mapping[str, str]) -> InstanceDocument | None:
        """The child's document from the master (None for a failed optional request, with the
        reason in `failure`)."""
        software_url = required(options, "software-url", self.name)
        state = requested_state(options, connection.requested_state, self.name)
        try:
            with master_client(connection) as client:
                return parse_instance(client.request_instance(
                    self.title, software_url, options.get("software-type", "").strip() or "default",
                    parameters=prefixed(options, "config-"), shared=flag(options, "shared", self.name),
                    state=state, sla_parameters=sla_options(options),
                ))
        except (ClientError, MalformedDocument) as error:
            if not self.optional:
                raise fail(f"[{self.name}] cannot request {self.title!r}: {error}") from None
            log.warning("[%s] cannot request %r: %s", self.name, self.title, error)
            self.failure = f"request failed: {error}"
            return None

    def _record(self, buildout: Any, connection: SlapConnection) -> None:
        """Note the title in this pass's request transaction: what the node tells the master the
        partition still requests once the pass succeeds (the others are destroyed)."""
        try:
            request_transaction.record(Path(buildout["buildout"]["directory"]), connection.partition_id, self.title)
        except OSError as error:
            log.warning("[%s] cannot record the request of %r: %s", self.name, self.title, error)

    def install(self) -> list[str]:
        if self.missing:
            message = (f"waiting for {self.title}: connection parameter '{self.missing[0]}' not "
                       f"published yet ({self.status or 'no status'})")
            if not self.optional:
                raise fail(message)
            log.warning("[%s] %s", self.name, message)
        return []

    update = install
