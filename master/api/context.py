"""What every adapter needs per request: the database, the settings and the caller's identity.

On an authenticated master the identity comes from the client certificate or API token
(`master.api.authentication`); a partition named by the ``Authorization: X-SlapPartition
computer_id=C, computer_partition_id=P`` header or by the ``computer_id``/``computer_partition_id``
form fields only narrows it (a computer acting for one of its partitions). The proxy believes the
names (as slapproxy does): there, they are the identity.
"""
from __future__ import annotations

import re
import time

from flask import current_app, request

from partita.master.api import authentication
from partita.master.db.database import Database
from partita.master.services import contact
from partita.master.services.contact import ContactThrottle
from partita.master.services.identity import Caller
from partita.master.services.quotas import Quota
from partita.master.settings import AppSettings
from partita.slap.errors import BadAuthorization

_HEADER = re.compile(
    r"^\s*X-SlapPartition\s+computer_id=(?P<computer>[^,\s]+)\s*,\s*computer_partition_id=(?P<partition>[^,\s]+)\s*$"
)


def database() -> Database:
    return current_app.extensions["partita.db"]


def settings() -> AppSettings:
    return current_app.extensions["partita.settings"]


def heard_from(reference: str) -> None:
    """Record the contact of computer `reference`'s node (its calls are its heartbeat), at most
    every few seconds per process (`master.services.contact`). Called once the call was allowed
    to read the computer: the caller is its node (or, in the proxy, the node)."""
    now = time.time()
    throttle = current_app.extensions.setdefault("partita.contacts", ContactThrottle())
    if throttle.due(reference, now):
        database().run_write(lambda session: contact.record(session, reference, now))


def quota() -> Quota:
    """The quota of every owner, from the settings."""
    current = settings()
    return Quota(max_instances=current.max_instances_per_owner,
                 max_parameter_bytes=current.max_parameter_bytes_per_owner)


def partition_from_header() -> tuple[str, str] | None:
    """The (computer, partition) named by the Authorization header, if any; malformed -> 400."""
    header = request.headers.get("Authorization")
    if header is None or not header.strip().startswith("X-SlapPartition"):
        return None
    match = _HEADER.match(header)
    if match is None:
        raise BadAuthorization(f"malformed X-SlapPartition Authorization header: {header[:200]!r}")
    if "None" in (match.group("computer"), match.group("partition")):
        return None  # what the real client sends from an object it built out of a 408 answer
    return match.group("computer"), match.group("partition")


def caller(computer: str | None = None, partition: str | None = None) -> Caller:
    """The caller: a partition if the header (or the given fields) name one, else the user."""
    named = partition_from_header()
    if settings().authentication:
        identity = authentication.identify()
        if named is not None:
            identity = identity.acting_as(*named)
        return identity.acting_as(computer, partition)
    base = Caller(owner=settings().default_owner, address=authentication.address())
    if named is not None:
        return base.acting_as(*named)
    return base.acting_as(computer, partition)
