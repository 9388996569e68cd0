"""A node's contact is its arrival, not the end of a long poll the front finished for it (issue 13).

The real app behind the in-process `Front`: a node starts a long poll and stops talking (it never
calls again, as a node whose link is cut). The front asks the app once more when the wait ends;
that re-ask must not count as the node's contact, or the node shows unreachable a poll timeout late.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.front import WAIT_PATH, Front
from partita.master.services import contact
from partita.master.settings import AppSettings
from tests.master.conftest import PROXY_COMPUTER, catalog
from tests.master.test_front import run, scope
from tests.master.test_json_rpc import Api

POLL = 3.0               # the node's long poll (and the master's cap on it)
UNREACHABLE_AFTER = 4.0  # longer than the poll, as the settings require
WRITE_EVERY = 0.5        # the contact write interval, small for the test


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with catalog(f"sqlite:///{tmp_path / 'catalog.db'}") as database:
        yield database


@pytest.fixture
def app(db: Database, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(contact, "WRITE_EVERY", WRITE_EVERY)
    return create_app(db, AppSettings(mode="proxy", computer_id=PROXY_COMPUTER, max_wait_seconds=POLL,
                                      unreachable_after_seconds=UNREACHABLE_AFTER))


def long_poll_then_silence(front: Front, generation: int) -> dict[str, Any]:
    """One long poll through the front by a client that never disconnects nor calls again."""
    body = json.dumps({"computer_guid": PROXY_COMPUTER, "generation": generation, "timeout": POLL}).encode()
    sent = run(front, scope(WAIT_PATH), body)
    assert sent[0]["status"] == 200
    return json.loads(sent[1]["body"])


def contact_of(api: Api) -> dict[str, Any]:
    listed = api.call("slapos.allDocs.v0.compute_node_list")["result_list"]
    return next(entry for entry in listed if entry["computer_guid"] == PROXY_COMPUTER)


def test_a_node_silent_after_its_poll_arrived_is_unreachable_without_the_poll_timeout(app: Flask, db: Database) -> None:
    api = Api(app.test_client())
    api.format("slappart0")
    generation = api.state()["generation"]
    time.sleep(WRITE_EVERY + 0.1)  # the format's contact is not the one that counts
    front = Front(app, db.bus, threads=2, max_body=None, max_wait_seconds=POLL)
    arrived = time.monotonic()
    answer = long_poll_then_silence(front, generation)
    assert answer["changed"] is False and time.monotonic() - arrived >= POLL - 0.1
    assert contact_of(api)["contact_state"] == "online"
    # Unreachable at arrival + UNREACHABLE_AFTER (+ WRITE_EVERY), with a margin that is still below
    # the behaviour of a re-ask counted as contact: arrival + POLL + UNREACHABLE_AFTER.
    time.sleep(max(0.0, arrived + UNREACHABLE_AFTER + WRITE_EVERY + 0.5 - time.monotonic()))
    assert time.monotonic() - arrived < POLL + UNREACHABLE_AFTER - 1.0
    assert contact_of(api)["contact_state"] == "unreachable"


def test_no_header_marks_a_request_as_the_fronts_re_ask() -> None:
    from partita.master.api.json_rpc_node import REASK
    from partita.master.front import _environ
    scope = {"type": "http", "method": "POST", "path": WAIT_PATH, "query_string": b"",
             "headers": [(REASK.encode(), b"1"), (b"partita-long-poll-reask", b"1")]}
    environ = _environ(scope, b"{}", multiprocess=False)
    assert REASK not in environ
    assert {key for key in environ if "REASK" in key.upper()} == {
        "HTTP_PARTITA.LONG_POLL_REASK", "HTTP_PARTITA_LONG_POLL_REASK"}
