"""Issue 11: a typo in a computer's name makes no phantom computer and no request waiting forever.

`slapos supply URL TYPO` used to exit 0 and create computer ``TYPO``; a request pinned to an unknown
computer (``--node computer_guid=TYPO``, the SLA's ``computer_guid``) was stored waiting for a
computer that would never format. Both are now a 404 ``NOT_FOUND`` naming the computer, on the JSON
API and on SLAP XML, and nothing is stored. Computers join by formatting (proxy, master without
authentication) or by registering (authenticated master); the proxy's own computer is known from its
start, so supplying to it before `node format` still works, as slapos.core's CLI does it.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from partita.master.api.slap_xml.marshal import dumps
from partita.master.db.database import Database
from partita.master.db.models import Computer, SoftwareInstance, Supply
from partita.master.services import instances, supplies
from partita.master.services.identity import Caller
from partita.master.services.instances import RequestSpec
from partita.slap.client import MasterClient
from partita.slap.errors import NotFound, RemoteError
from partita.slap.states import SupplyState
from tests.master.test_services import format_partitions
from tests.support.server import ServerProcess, start

SR = "https://example.invalid/hello/software.cfg"
TYPO = "local_computr"


def counts(db: Database) -> tuple[int, int, int]:
    """(computers, instances, supplies) in the catalog."""
    with db.read() as session:
        return tuple(int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[return-value]
                     for model in (Computer, SoftwareInstance, Supply))


# ---------------------------------------------------------------------------------- the services

def test_supplying_to_an_unknown_computer_is_refused_and_stores_nothing(db: Database) -> None:
    format_partitions(db, 1, computer="COMP-1")
    before = counts(db)
    with pytest.raises(NotFound, match="unknown computer 'COMP-TYPO'.*slapos node format"):
        db.run_write(lambda s: supplies.supply(s, Caller(), "COMP-TYPO", SR, SupplyState.AVAILABLE))
    assert counts(db) == before
    db.run_write(lambda s: supplies.supply(s, Caller(), "COMP-1", SR, SupplyState.AVAILABLE))
    assert counts(db) == (before[0], before[1], before[2] + 1)


def test_a_request_pinned_to_an_unknown_computer_is_refused_not_parked(db: Database) -> None:
    format_partitions(db, 1, computer="COMP-1")
    before = counts(db)
    for fields in ({"sla": {"computer_guid": "COMP-TYPO"}}, {"sla": {"computer_guid": "COMP-TYPO"}, "shared": True}):
        with pytest.raises(NotFound, match="unknown computer 'COMP-TYPO' \\(the SLA's computer_guid\\)"):
            db.run_write(lambda s, f=fields: instances.request_instance(s, Caller(), RequestSpec("web", SR, **f)))
    assert counts(db) == before
    gone = db.run_write(lambda s: instances.request_instance(
        s, Caller(), RequestSpec("web", SR, state="destroyed", sla={"computer_guid": "COMP-TYPO"})))
    assert gone is None  # destroying what was never stored still answers, whatever it names


def test_an_authenticated_caller_is_told_how_computers_join(db: Database) -> None:
    alice = Caller(owner="alice", role="user")
    with pytest.raises(NotFound, match="unknown computer 'COMP-TYPO'.*slapos node register"):
        db.run_write(lambda s: supplies.supply(s, alice, "COMP-TYPO", SR, SupplyState.AVAILABLE))


# ------------------------------------------------------------------ the real servers, both protocols

@pytest.fixture(params=["proxy", "master"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, Database]]:
    """`slapos proxy start`, or `slapos master start` without authentication, on a SQLite catalog."""
    database = tmp_path / "catalog.db"
    process = start(tmp_path, (request.param, "start"), database=str(database))
    db = Database(f"sqlite:///{database}")
    try:
        yield process, db
    finally:
        db.dispose()
        process.stop()


def test_typos_over_http_are_404s_naming_the_computer(server: tuple[ServerProcess, Database]) -> None:
    process, db = server
    with MasterClient(process.url) as client:
        client.format_compute_node("local_computer", [{"partition_id": "slappart0",
                                                       "ip_list": [{"ip-address": "127.0.1.1"}]}])
        before = counts(db)
        with pytest.raises(RemoteError) as refused:
            client.supply(TYPO, SR)
        assert (refused.value.status, refused.value.code) == (404, "NOT_FOUND")
        assert f"unknown computer {TYPO!r}" in refused.value.message
        with pytest.raises(RemoteError) as refused:
            client.request_instance("web", SR, sla_parameters={"computer_guid": TYPO})
        assert (refused.value.status, refused.value.code) == (404, "NOT_FOUND")
        assert f"unknown computer {TYPO!r}" in refused.value.message

    supplied = requests.post(process.url + "/supplySupply", timeout=10,
                             data={"url": SR, "computer_id": TYPO, "state": "available"})
    assert supplied.status_code == 404 and f"unknown computer {TYPO!r}" in supplied.text
    requested = requests.post(process.url + "/requestComputerPartition", timeout=10, data={
        "software_release": SR, "partition_reference": "web", "partition_parameter_xml": dumps({}),
        "filter_xml": dumps({"computer_guid": TYPO}), "software_type": "default", "state": dumps(None),
        "shared_xml": dumps(False)})
    assert requested.status_code == 404 and f"unknown computer {TYPO!r}" in requested.text
    assert counts(db) == before

    with MasterClient(process.url) as client:  # the right name still works, on both protocols
        client.supply("local_computer", SR)
        pinned = client.request_instance("web", SR, sla_parameters={"computer_guid": "local_computer"})
        assert pinned["compute_partition_id"] == "slappart0"
    assert requests.post(process.url + "/supplySupply", timeout=10, data={
        "url": SR + "?2", "computer_id": "local_computer", "state": "available"}).status_code == 200


def test_the_proxy_computer_takes_a_supply_before_it_is_formatted(tmp_path: Path) -> None:
    """What `scripts/demo` and slapos.core's users do: supply first, then `slapos node format`."""
    process = start(tmp_path, ("proxy", "start"))
    try:
        answer = requests.post(process.url + "/supplySupply", timeout=10,
                               data={"url": SR, "computer_id": "local_computer", "state": "available"})
        assert answer.status_code == 200, answer.text
    finally:
        process.stop()
