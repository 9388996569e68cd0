"""Partita's JSON API extensions for nodes: the desired state in one call, and a long-poll for changes.

`compute_node_change` never polls the database. Its ordering loses no change:

1. make sure this process hears about changes (on PostgreSQL, ``Database.wait_for_change`` starts
   the LISTEN thread and waits until it listens; on SQLite every writer is in this process);
2. take the change counter of the computer (``db.bus.counter``), *then* read its generation in a
   read transaction: a change committed after that read bumps the counter after step 2;
3. if the generation differs from the node's, answer at once; else sleep on the bus until the
   counter moves past the value of step 2 or the time is up, and go back to step 2 (a wake-up for
   a change the node already saw is not reported as a change).

The node's arrival is its contact (`master.services.contact`), not the end of its wait: the
event-driven front (`master.front`) asks again on the node's behalf while it waits, marking those
asks with the environ key `REASK` (a key no HTTP header can produce), and they record no contact.
A node cut while its poll waits is therefore unreachable `unreachable_after` seconds after it
last called, not a poll timeout later.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import request

from partita.master.api import context
from partita.master.api import json_rpc_documents as documents
from partita.master.db.database import Database
from partita.master.services import access, computer_views, computers
from partita.master.services.identity import Caller

DEFAULT_WAIT_SECONDS = 30.0
REASK = "partita.long_poll_reask"  # environ key: the front asks again for a waiting node


def compute_node_state(body: dict[str, Any]) -> dict[str, Any]:
    """Everything the node must converge to: software, partitions, instances, shared instances."""
    caller = context.caller()
    with context.database().read() as session:
        computer = computers.get_computer(session, body["computer_guid"])
        access.check_computer(session, caller, computer)
        view = computer_views.computer_view(session, computer)
    context.heard_from(computer.reference)
    return documents.compute_node_state(view)



def _generation(db: Database, caller: Caller, reference: str) -> int:
    with db.read() as session:
        computer = computers.get_computer(session, reference)
        access.check_computer(session, caller, computer)
        return computer.generation


def compute_node_change(body: dict[str, Any]) -> dict[str, Any]:
    """Wait until the computer's generation differs from the node's, or the timeout passes."""
    reference, known = body["computer_guid"], int(body["generation"])
    timeout = min(float(body.get("timeout", DEFAULT_WAIT_SECONDS)), context.settings().max_wait_seconds)
    deadline = time.monotonic() + max(timeout, 0.0)
    db, caller = context.database(), context.caller()
    db.wait_for_change(reference, db.bus.counter(reference), 0)  # step 1: start listening first
    heard = bool(request.environ.get(REASK))  # a re-ask is not the node talking
    while True:
        seen = db.bus.counter(reference)
        generation = _generation(db, caller, reference)
        if not heard:  # allowed (404 or 403 otherwise): the node's heartbeat
            context.heard_from(reference)
            heard = True
        remaining = deadline - time.monotonic()
        if generation != known or remaining <= 0 or db.bus.closing:
            return {"computer_guid": reference, "generation": generation, "changed": generation != known}
        db.wait_for_change(reference, seen, remaining)


METHODS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "slapos.get.v0.compute_node_state": compute_node_state,
    "slapos.wait.v0.compute_node_change": compute_node_change,
}
