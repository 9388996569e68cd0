"""The getFullComputerInformation cache (master/api/slap_xml/computer_cache.py): re-encodes only what
changed, never stale.

Through the app on SQLite and PostgreSQL (the `db` fixture): after each change the served answer,
assembled from the partition fragments kept since the previous answer, has the bytes of a
from-scratch encoding of `computer_view`, and only the partitions that changed were encoded again.
Then the cache alone, on hand-made sources: its bounds and concurrent assemblies.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from partita.master.api.slap_xml import computer_cache, encode, routes
from partita.master.api.slap_xml.computer_cache import ComputerCache
from partita.master.api.slap_xml.marshal import Fragment, dumps
from partita.master.db.database import Database
from partita.master.services import computer_views, computers
from partita.master.services.computer_views import ComputerSource, InstanceRow, PartitionSource, SharedRow, SupplyRow
from tests.master.test_slap_xml_routes import COMPUTER, OTHER_SR, SR, format_computer, post, request, supply


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The partitions the cache encodes (anew), in order, since the last `clear()`."""
    seen: list[str] = []
    real = computer_cache.encode_fragment

    def counting(value: Any) -> Fragment:
        seen.append(value.initargs[1])
        return real(value)
    monkeypatch.setattr(computer_cache, "encode_fragment", counting)
    yield seen


def served(client: FlaskClient, computer: str = COMPUTER) -> bytes:
    answer = client.get("/getFullComputerInformation", query_string={"computer_id": computer})
    assert answer.status_code == 200, answer.text
    return answer.data


def from_scratch(db: Database, computer: str = COMPUTER) -> bytes:
    with db.read() as session:
        return dumps(encode.computer(computer_views.computer_view(session, computers.get_computer(session, computer))))


def json_rpc(client: FlaskClient, method: str, body: dict[str, Any]) -> Any:
    """A JSON API call: it stores parameter values of any JSON type."""
    answer = client.post(f"/{method}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.get_json()


def json_request(client: FlaskClient, title: str, parameters: dict[str, Any], **fields: Any) -> Any:
    return json_rpc(client, "slapos.post.v0.software_instance", {
        "title": title, "software_release_uri": SR, "software_type": "default", "parameters": parameters,
        **fields})


# --------------------------------------------------------------------------------------------
# Through the app: byte-identical to a fresh encoding after every kind of change
# --------------------------------------------------------------------------------------------

def test_assembled_answer_is_a_fresh_encoding_after_every_change(
        db: Database, client: FlaskClient, encoded: list[str]) -> None:
    format_computer(client, 7)
    supply(client)
    supply(client, OTHER_SR)
    request(client, "root", parameters={"a": "1", "b": "<&>"})  # slappart0, then typed in slappart1
    typed = json_request(client, "typed", {"n": 3, "f": 1.5, "b": True, "l": [1, "a"], "d": {"x": None}})
    request(client, "child", partition="slappart0", parameters={"c": "1"})  # slappart2
    shared = request(client, "front", shared=True, parameters={"host": "x"}).state["_instance_guid"]
    assert served(client) == from_scratch(db)

    def step(change: Callable[[], Any], reencoded: set[str] | None) -> None:
        encoded.clear()
        change()
        assert served(client) == from_scratch(db), f"after {change.__name__}"
        if reencoded is not None:
            assert set(encoded) == reencoded, change.__name__
        encoded.clear()
        assert served(client) == from_scratch(db) and encoded == []  # the whole answer, kept

    def parameter_change() -> None:
        request(client, "root", parameters={"a": "2", "b": "<&>"})

    def typed_parameter_change() -> None:
        json_request(client, "typed", {"n": 4, "f": 1.5, "b": False, "l": [], "d": {}})

    def connection_publication() -> None:
        post(client, "setComputerPartitionConnectionXml", "slappart0", connection_xml=dumps({"url": "http://[::1]/"}))

    def typed_connection_publication() -> None:
        json_rpc(client, "slapos.put.v0.software_instance_connection_parameter",
                 {"instance_guid": typed["instance_guid"], "connection_parameter_dict": {"port": 8080, "ok": True}})

    def shared_attached() -> None:  # an early partition takes more ids: the later ones shift
        request(client, "front2", shared=True, parameters={"host": "y"})

    def shared_parameter_change() -> None:
        request(client, "front", shared=True, parameters={"host": "z"})

    def shared_connection_publication() -> None:
        answer = post(client, "setComputerPartitionConnectionXml", "slappart0", connection_xml=dumps({"s": "1"}),
                      slave_reference=shared)
        assert answer.status_code == 200, answer.text

    def root_renamed() -> None:  # the child shows its root's title
        post(client, "softwareInstanceRename", "slappart0", new_name="root2")

    def child_freed() -> None:
        request(client, "child", partition="slappart0", state="destroyed")
        post(client, "stoppedComputerPartition", "slappart2")
        assert post(client, "destroyedComputerPartition", "slappart2").status_code == 200

    def new_allocation() -> None:
        request(client, "late", parameters={"z": "1"})

    def supply_state_change() -> None:
        supply(client, OTHER_SR, state="destroyed")

    def build_report() -> None:  # the status of the instances of SR (not on the wire) changes
        client.post("/availableSoftwareRelease", data={"url": SR, "computer_id": COMPUTER})

    def reformat() -> None:
        format_computer(client, 9)

    step(parameter_change, {"slappart0"})
    step(typed_parameter_change, {"slappart1"})
    step(connection_publication, {"slappart0"})
    step(typed_connection_publication, {"slappart1"})
    step(shared_attached, None)
    step(shared_parameter_change, None)
    step(shared_connection_publication, None)
    step(root_renamed, {"slappart0", "slappart2"})
    step(child_freed, None)
    step(new_allocation, None)
    step(supply_state_change, set())
    step(build_report, None)
    step(reformat, None)


def test_fragments_are_reused_when_their_ids_move(db: Database, client: FlaskClient, encoded: list[str]) -> None:
    """A partition taking more ids moves every later fragment: none of them is encoded again."""
    format_computer(client, 4)
    supply(client)
    for title in ("a", "b", "c"):
        request(client, title, parameters={"t": title})
    served(client)
    encoded.clear()
    request(client, "front", shared=True)  # hosted by slappart0: a slave entry dictionary more
    answer = served(client)
    assert answer == from_scratch(db)
    assert encoded == ["slappart0"]
    assert b'<dictionary id="i' in answer


def test_a_computer_served_from_a_cold_cache_is_the_same(app: Flask, db: Database, client: FlaskClient) -> None:
    format_computer(client, 3)
    supply(client)
    request(client, "root", parameters={"a": "1"})
    warm = served(client)
    app.extensions.pop(routes.CACHE_KEY)
    assert served(client) == warm == from_scratch(db)


# --------------------------------------------------------------------------------------------
# The cache alone
# --------------------------------------------------------------------------------------------

def partition(pid: int, parameters: str | None = None, hosted: int = 0, computer: str = "COMP-1") -> PartitionSource:
    """A free partition, or (with `parameters`, raw JSON text) a busy one hosting `hosted` shared."""
    addresses = (("lo", f"10.0.0.{pid}", "255.0.0.0"),)
    if parameters is None:
        return PartitionSource(computer, pid, f"slappart{pid}", "free", addresses, None, None, None, (), None)
    row = InstanceRow(pid, f"SOFTINST-{pid}", f"title{pid}", pid, None, SR, "default", parameters, "{}", None,
                      "started", None, 1795304581.25, "", pid)
    shared = tuple(SharedRow(f"SHARED-{pid}-{n}", f"s{n}", "default", '{"n": 1}', None, "started")
                   for n in range(hosted))
    return PartitionSource(computer, pid, f"slappart{pid}", "busy", addresses, row, None, None, shared,
                           SupplyRow(SR, "available", "available", ""))


def source(*partitions: PartitionSource, computer: str = "COMP-1") -> ComputerSource:
    return ComputerSource(computer, 1, partitions, (SupplyRow(SR, "available", None, ""),))


def fresh(computer_source: ComputerSource) -> bytes:
    return dumps(encode.computer(computer_views.source_view(computer_source)))


def test_answer_is_only_given_for_its_key() -> None:
    cache = ComputerCache(4)
    computer = source(partition(1, '{"a": "1"}'), partition(2))
    body = cache.assemble(("id", 1), computer)
    assert body == fresh(computer)
    assert cache.answer("COMP-1", ("id", 1)) is body
    assert cache.answer("COMP-1", ("id", 2)) is None
    assert cache.answer("COMP-2", ("id", 1)) is None


def test_only_changed_partitions_are_encoded_and_gone_ones_are_forgotten(encoded: list[str]) -> None:
    cache = ComputerCache(4)
    cache.assemble(1, source(partition(1, '{"a": "1"}'), partition(2), partition(3, "{}", hosted=2)))
    assert encoded == ["slappart1", "slappart2", "slappart3"]
    encoded.clear()
    changed = source(partition(1, '{"a": "2"}'), partition(2), partition(3, "{}", hosted=2))
    assert cache.assemble(2, changed) == fresh(changed)
    assert encoded == ["slappart1"]
    encoded.clear()
    fewer = source(partition(3, "{}", hosted=1))
    assert cache.assemble(3, fewer) == fresh(fewer)
    assert encoded == ["slappart3"]
    encoded.clear()
    again = source(partition(1, '{"a": "2"}'), partition(3, "{}", hosted=1))
    assert cache.assemble(4, again) == fresh(again)
    assert encoded == ["slappart1"]  # forgotten when it was not in the previous assembly


def test_every_stored_input_of_a_partition_is_compared(encoded: list[str]) -> None:
    """Changing any one stored value of a busy partition encodes it again (and only it), even
    where the service layer would also have bumped the instance's timestamp."""
    cache = ComputerCache(4)
    base = partition(2, '{"a": "1"}', hosted=1)
    row, shared = base.instance, base.hosted[0]
    assert row is not None
    changes = {
        "parameters": base._replace(instance=row._replace(parameters='{"a": 1}')),
        "connection": base._replace(instance=row._replace(connection_parameters='{"u": "x"}')),
        "sla": base._replace(instance=row._replace(sla='{"retention_delay": "2"}')),
        "title": base._replace(instance=row._replace(title="renamed")),
        "state": base._replace(instance=row._replace(requested_state="stopped")),
        "timestamp": base._replace(instance=row._replace(timestamp=1795304599.5)),
        "root": base._replace(instance=row._replace(root_id=1), root=("SOFTINST-1", "the root")),
        "requester": base._replace(requester=("SOFTINST-1", "the root")),
        "hosted": base._replace(hosted=(shared._replace(parameters='{"n": 2}'),)),
        "hosted title": base._replace(hosted=(shared._replace(title="s9"),)),
        "address": base._replace(addresses=(("lo", "10.0.0.99", "255.0.0.0"),)),
        "reference": base._replace(reference="slappart99"),
    }
    cache.assemble(0, source(partition(1), base))
    for name, changed in changes.items():
        for version in (changed, base):
            encoded.clear()
            computer = source(partition(1), version)
            assert cache.assemble(name, computer) == fresh(computer), name
            assert encoded == [version.reference], name


def test_at_most_size_computers_the_least_recently_assembled_go_first(encoded: list[str]) -> None:
    cache = ComputerCache(2)
    for name in ("A", "B", "A", "C"):
        cache.assemble(1, source(partition(1, "{}", computer=name), computer=name))
    assert cache.answer("A", 1) is not None and cache.answer("C", 1) is not None
    assert cache.answer("B", 1) is None
    encoded.clear()
    cache.assemble(2, source(partition(1, "{}", computer="B"), computer="B"))
    assert encoded == ["slappart1"]


def test_concurrent_assemblies_are_never_wrong() -> None:
    """Threads assembling two versions of the same computer (as gthread workers may) each get
    the bytes of their own version, and what is kept afterwards is right for its key."""
    cache = ComputerCache(4)
    versions = [source(*(partition(pid, f'{{"v": "{version}"}}' if (pid + version) % 3 else None,
                                   hosted=(pid + version) % 2) for pid in range(40)))
                for version in range(3)]
    expected = [fresh(version) for version in versions]
    errors: list[str] = []

    def worker(offset: int) -> None:
        for n in range(30):
            version = (n + offset) % 3
            if cache.assemble(version, versions[version]) != expected[version]:
                errors.append(f"wrong bytes for version {version}")
            kept = cache.answer("COMP-1", version)
            if kept is not None and kept != expected[version]:
                errors.append(f"wrong answer kept for version {version}")

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
