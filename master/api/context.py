"""What every adapter needs per request: the database, the settings and the caller's identity.

The identity of a partition comes from the ``Authorization: X-SlapPartition computer_id=C,
computer_partition_id=P`` header (sent by the real slapos.core 1.26 client) or, for the SLAP XML
calls that carry them, from the ``computer_id``/``computer_partition_id`` form fields.
"""
from __future__ import annotations

import re

from flask import current_app, request

from partita.master.db.database import Database
from partita.master.services.identity import Caller
from partita.master.settings import AppSettings
from partita.slap.errors import BadAuthorization

_HEADER = re.compile(
    r"^\s*X-SlapPartition\s+computer_id=(?P<computer>[^,\s]+)\s*,\s*computer_partition_id=(?P<partition>[^,\s]+)\s*$"
)


def database() -> Database:
    return current_app.extensions["partita.db"]


def settings() -> AppSettings:
    return current_app.extensions["partita.settings"]


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
    owner = settings().default_owner
    named = partition_from_header()
    if named is not None:
        return Caller(owner=owner, computer=named[0], partition=named[1])
    if computer and partition:
        return Caller(owner=owner, computer=computer, partition=partition)
    return Caller(owner=owner)
