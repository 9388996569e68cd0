"""The fuzzing part's common ground: a seeded catalog on each backend, restored before every example.

A `World` is the master app (proxy mode) over a catalog seeded through the JSON API with two
formatted computers, supplies and a few instance trees (allocated, child, shared, stopped,
waiting, asked destroyed, on the other computer), so that generated calls reach real code paths.
Every table's rows are kept after seeding; `World.restore` puts them back (and drops the SLAP XML
answer cache) before each example, so every example starts from the same catalog and a failure
shrinks and replays. After a rejected call, `World.assert_unchanged` compares the catalog with the
seed row by row, and as the call's protocol shows it: through the JSON API
(``slapos.get.v0.compute_node_state`` of both computers, ``slapos.allDocs.v0.instance_tree_list``)
or through SLAP XML (the served getFullComputerInformation bytes, which the server caches per
computer generation, a fresh `computer_view` encoding, the computers' generations). After an
accepted call, `World.assert_readable` checks that the catalog still reads back in both protocols
(what a node and a client read next: compute_node_state, getFullComputerInformation,
getComputerPartitionStatus of every partition, instance_tree_list).

Budgets: `World.examples(sqlite, postgresql)` gives a test's ``max_examples`` on the current
backend, times ``$PARTITA_FUZZ_SCALE`` (default 1; e.g. 20 for a long local run); shrinking a
failure stops after ``$PARTITA_FUZZ_SHRINK_SECONDS`` (default 10) per test. Hypothesis explores at
random on every run (a failure prints the failing request, the seed and a ``@reproduce_failure``
blob) and keeps no example database; its own caches go to ``$HYPOTHESIS_STORAGE_DIRECTORY`` or a
directory under the system's temporary directory, never into the repository.
"""
from __future__ import annotations

import contextlib

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.internal.conjecture import engine as hypothesis_engine
from sqlalchemy import select

from partita.master.api import openapi
from partita.master.api.slap_xml import encode, routes
from partita.master.api.slap_xml.marshal import dumps, loads
from partita.master.app import create_app
from partita.master.db import migrate
from partita.master.db.database import Database
from partita.master.db.models import Base, Computer
from partita.master.services import computer_views, computers
from partita.master.settings import AppSettings

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "partita-hypothesis")

# Hypothesis shrinks a failure for up to 5 minutes per test; a found bug must not blow the part's
# budget, and the failing request is printed whole anyway. Raise it for a long local run.
SHRINK_SECONDS = int(os.environ.get("PARTITA_FUZZ_SHRINK_SECONDS", "10") or "10")
if hasattr(hypothesis_engine, "MAX_SHRINKING_SECONDS"):
    hypothesis_engine.MAX_SHRINKING_SECONDS = SHRINK_SECONDS

COMPUTER = "local_computer"
OTHER_COMPUTER = "COMP-FUZZ-1"
NO_COMPUTER = "COMP-NOWHERE"
SR = "/srv/software/fuzz/software.cfg"
OTHER_SR = "https://example.invalid/other/software.cfg"
MAX_BODY_BYTES = 256 * 1024
SCALE = float(os.environ.get("PARTITA_FUZZ_SCALE", "1") or "1")

#: The hypothesis settings every fuzz test shares (``max_examples`` is given per test).
COMMON = dict(
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],  # no "explain" rerun
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)


def fuzz_settings(max_examples: int) -> settings:
    return settings(max_examples=max(1, max_examples), **COMMON)


def strict_json(raw: bytes | str) -> Any:
    """Parse JSON as RFC 8259 has it: ``NaN``/``Infinity`` are not JSON (Python's json takes them)."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON (RFC 8259)")
    return json.loads(raw, parse_constant=refuse)


def partition_header(computer: str, partition: str) -> dict[str, str]:
    return {"Authorization": f"X-SlapPartition computer_id={computer}, computer_partition_id={partition}"}


#: Strings the schemas allow but the catalog must refuse or survive: path tricks, controls, sizes.
TRICKY_STRINGS = [
    "", " ", "None", "..", "../../etc/passwd", "/srv/../etc/software.cfg", "file:///etc/passwd",
    "http://example.invalid/a b", "javascript:alert(1)", "http://", "slappart0/../slappart1",
    "a\nb", "tab\there", "\x7f", "é" * 300, "x" * 2100, "%2e%2e%2f", "\u202etxt.cfg", "🦊",
    "x\x0by", "\x1f", "\ufffe", "\x00",
    # issue 10: look-alikes (zero-width, bidirectional isolates, BOM, a decomposed accent)
    "ma\u200bin", "main\u200d", "\u2066main\u2069", "\ufeffmain", "cafe\u0301",
]


def authorization(world: World) -> st.SearchStrategy[dict[str, str] | None]:
    """No header mostly; else a real partition's, an unknown one's, or a malformed one."""
    # Latin-1 without controls and without leading blanks: what an HTTP client lets through.
    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80).map(str.lstrip)
    return st.one_of(
        st.none(), st.none(), st.none(), st.none(), st.none(), st.none(),
        st.sampled_from(world.known_partitions()).map(lambda p: partition_header(*p)),
        st.tuples(st.sampled_from([COMPUTER, NO_COMPUTER, "None", "a,b"]),
                  st.sampled_from(["slappart9", "None", "slappart0", "../x"])).map(lambda p: partition_header(*p)),
        header_text.map(lambda text: {"Authorization": "X-SlapPartition " + text}),
        header_text.map(lambda text: {"Authorization": text}),
    )


Rows = dict[str, list[dict[str, Any]]]


@dataclass
class World:
    """The app over a seeded catalog, and what the seed looked like."""

    backend: str
    db: Database
    app: Flask
    client: FlaskClient
    guids: dict[str, str] = field(default_factory=dict)  # title -> instance guid
    partitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # title -> (computer, partition)
    seed_rows: Rows = field(default_factory=dict)
    seed_state: dict[str, Any] = field(default_factory=dict)

    def examples(self, sqlite: int, postgresql: int) -> int:
        """A test's number of examples on this backend."""
        return max(1, int((sqlite if self.backend == "sqlite" else postgresql) * SCALE))

    # ------------------------------------------------------------------------ calls

    def call(self, method: str, body: Any, headers: dict[str, str] | None = None,
             validate: bool = True) -> dict[str, Any]:
        """A JSON API call that must succeed (seeding and read-backs), its answer checked."""
        response = self.client.post(f"/{method}", json=body, headers=headers)
        assert response.status_code == 200, (method, body, response.status_code, response.get_data(as_text=True))
        document = strict_json(response.data)
        if validate:
            openapi.validate_response(method, 200, document)
        return document

    # ------------------------------------------------------------------------ the catalog

    def rows(self) -> Rows:
        """Every row of every table, in primary-key order; without the nodes' last contact, which
        a node's read of its state records (a heartbeat, issue 13: not a change of the catalog)."""
        with self.db.read() as session:
            dump: Rows = {}
            for table in Base.metadata.sorted_tables:
                query = select(table).order_by(*table.primary_key.columns)
                dump[table.name] = [{k: v for k, v in row._mapping.items() if k != "last_contact"}
                                    for row in session.execute(query)]
            return dump

    def restore(self) -> None:
        """Put the seeded rows back and forget the cached SLAP XML answers."""
        with self.db.write() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
            for table in Base.metadata.sorted_tables:
                rows = self.seed_rows[table.name]
                if rows:
                    session.execute(table.insert(), rows)
        self.app.extensions.pop(routes.CACHE_KEY, None)

    def state(self, protocol: str) -> dict[str, Any]:
        """What a rejected call must leave as it was: the rows, and the catalog as `protocol` shows it.

        "json": ``compute_node_state`` of both computers and ``instance_tree_list``; "xml": the
        served getFullComputerInformation of both computers (through the server's cache), a fresh
        `computer_view` encoding of each (no cache) and the computers' generations.
        """
        state: dict[str, Any] = {"rows": self.rows()}
        if protocol == "json":
            for computer in (COMPUTER, OTHER_COMPUTER):
                state[f"compute_node_state {computer}"] = self.call(
                    "slapos.get.v0.compute_node_state", {"computer_guid": computer}, validate=False)
            state["instance_tree_list"] = self.call("slapos.allDocs.v0.instance_tree_list", {}, validate=False)
        else:
            for computer in (COMPUTER, OTHER_COMPUTER):
                served = self.client.get("/getFullComputerInformation", query_string={"computer_id": computer})
                state[f"served getFullComputerInformation {computer}"] = (served.status_code, served.data)
            with self.db.read() as session:
                state["generations"] = sorted(
                    tuple(row) for row in session.execute(select(Computer.reference, Computer.generation)))
                for computer in (COMPUTER, OTHER_COMPUTER):
                    view = computer_views.computer_view(session, computers.get_computer(session, computer))
                    state[f"fresh computer_view {computer}"] = dumps(encode.computer(view))
        return state

    def assert_unchanged(self, protocol: str, why: str) -> None:
        """The catalog is as seeded: a rejected call changed nothing."""
        now = self.state(protocol)
        seed = self.seed_state[protocol]
        changed = [key for key in now if now[key] != seed[key]]
        if not changed:
            return
        details = [f"changed: {', '.join(changed)}"]
        for table, rows in now["rows"].items():
            before = seed["rows"][table]
            if rows != before:
                gone = [row for row in before if row not in rows]
                new = [row for row in rows if row not in before]
                details.append(f"table {table}: rows before {gone!r}; rows after {new!r}")
        for key in changed:
            if key != "rows":
                details.append(f"{key}: before {seed[key]!r}\n  after {now[key]!r}")
        raise AssertionError(f"{why}, but it changed the catalog:\n" + "\n".join(d[:4000] for d in details))

    def assert_readable(self, why: str) -> None:
        """After an accepted call (`why`), the catalog still reads back in both protocols."""
        try:
            for computer in (COMPUTER, OTHER_COMPUTER):
                self.call("slapos.get.v0.compute_node_state", {"computer_guid": computer})
                self.xml_read("/getFullComputerInformation", computer_id=computer)
            for computer, partition in self.known_partitions():  # a format may have removed a free one
                self.xml_read("/getComputerPartitionStatus", 404, computer_id=computer,
                              computer_partition_id=partition)
            self.call("slapos.allDocs.v0.instance_tree_list", {})
        except Exception as error:
            raise AssertionError(f"{why} was accepted, and then the catalog no longer reads back: "
                                 f"{type(error).__name__}: {error}") from error

    def xml_read(self, path: str, *also: int, **query: str) -> Any:
        """A SLAP XML read that must succeed (or answer one of the statuses `also`), decoded."""
        answer = self.client.get(path, query_string=query)
        assert answer.status_code in (200, *also), (path, query, answer.status_code, answer.text)
        return loads(answer.data) if answer.status_code == 200 else None

    # ------------------------------------------------------------------------ seeding

    def seed(self) -> None:
        def addresses(i: int) -> list[dict[str, str]]:
            return [{"ip-address": f"10.0.0.{i + 1}", "network-interface": "lo", "netmask": "255.0.0.0"},
                    {"ip-address": f"fd00::{i + 1:x}", "network-interface": "lo"}]

        self.call("slapos.put.v0.compute_node_format", {
            "computer_guid": COMPUTER,
            "compute_partition_list": [{"partition_id": f"slappart{i}", "ip_list": addresses(i)} for i in range(5)]})
        self.call("slapos.put.v0.compute_node_format", {
            "computer_guid": OTHER_COMPUTER,
            "compute_partition_list": [{"partition_id": "slappart0", "ip_list": addresses(9)}]})
        self.call("slapos.post.v0.software_installation", {"computer_guid": COMPUTER, "software_release_uri": SR})
        self.call("slapos.put.v0.software_installation_reported_state",
                  {"computer_guid": COMPUTER, "software_release_uri": SR, "reported_state": "available"})
        self.call("slapos.post.v0.software_installation", {"computer_guid": COMPUTER, "software_release_uri": OTHER_SR})
        self.call("slapos.put.v0.software_installation_error",
                  {"computer_guid": COMPUTER, "software_release_uri": OTHER_SR, "message": "build <failed> & stopped"})

        def request(title: str, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
            body = {"title": title, "software_release_uri": SR, "software_type": "default", **fields}
            document = self.call("slapos.post.v0.software_instance", body, headers)
            if document["instance_guid"] is not None:
                self.guids[title] = document["instance_guid"]
            if document["compute_partition_id"] is not None:
                self.partitions[title] = (document["computer_guid"], document["compute_partition_id"])
            return document

        request("main", parameters={"foo": "bar", "json": '{"a": "<b>&"}', "n": 3, "nested": {"a": [1, None]}},
                sla_parameters={"computer_guid": COMPUTER})
        main_header = partition_header(*self.partitions["main"])
        # first: placement spreads over computers (issue 13), and OTHER_COMPUTER's one partition is
        # for "elsewhere"; the child is pinned beside its root
        request("elsewhere", sla_parameters={"computer_guid": OTHER_COMPUTER})
        request("child", headers=main_header, parameters={"k": "v"}, sla_parameters={"computer_guid": COMPUTER})
        request("route", shared=True, parameters={"path": "/x"}, sla_parameters={"instance_guid": self.guids["main"]})
        request("stopped-one", state="stopped", software_type="other")
        # a known computer without partitions: an unknown one is refused, not waited for (issue 11)
        self.call("slapos.put.v0.compute_node_format", {"computer_guid": NO_COMPUTER, "compute_partition_list": []})
        request("waiting", sla_parameters={"computer_guid": NO_COMPUTER})
        request("doomed")
        request("doomed", state="destroyed")
        self.call("slapos.put.v0.software_instance_connection_parameter", {
            "instance_guid": self.guids["main"],
            "connection_parameter_dict": {"url": "https://[fd00::1]:8443/", "password": "p<&>'\""}})
        self.call("slapos.put.v0.software_instance_connection_parameter", {
            "instance_guid": self.guids["main"], "shared_instance_guid": self.guids["route"],
            "connection_parameter_dict": {"route-url": "https://example.invalid/x"}})
        self.call("slapos.put.v0.software_instance_reported_state",
                  {"instance_guid": self.guids["main"], "reported_state": "started"})
        self.call("slapos.put.v0.software_instance_error",
                  {"instance_guid": self.guids["child"], "message": "buildout failed:\nline 2"})
        for title in ("main", "child", "stopped-one", "doomed", "elsewhere"):
            assert title in self.partitions, (title, self.partitions)
        assert "waiting" not in self.partitions
        self.seed_rows = self.rows()
        self.seed_state = {protocol: self.state(protocol) for protocol in ("json", "xml")}

    # ------------------------------------------------------------------------ known values

    def known_guids(self) -> list[str]:
        return sorted(self.guids.values())

    def known_titles(self) -> list[str]:
        return sorted(self.guids)

    def known_partitions(self) -> list[tuple[str, str]]:
        """Every formatted partition: busy ones, the free one and the other computer's."""
        return sorted({*self.partitions.values(), (COMPUTER, "slappart4")})


def make_world(backend: str, url: str) -> World:
    db = Database(url)
    migrate.upgrade(db.engine)
    settings_ = AppSettings(mode="proxy", computer_id=COMPUTER, max_body_bytes=MAX_BODY_BYTES,
                            max_wait_seconds=0.0)
    app = create_app(db, settings_)
    world = World(backend=backend, db=db, app=app, client=app.test_client())
    world.seed()
    return world


@contextlib.contextmanager
def throwaway_catalog_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                          prefix: str) -> Iterator[str]:
    """The URL of an empty catalog for the fixture's backend (``request.param``: a SQLite file,
    or a database of the throwaway PostgreSQL server, dropped at the end)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp(prefix) / 'catalog.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"t_{prefix.replace('-', '_')}_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A seeded catalog on SQLite, then on PostgreSQL, shared by a module's tests (restore it first)."""
    with throwaway_catalog_url(request, tmp_path_factory, "fuzz") as url:
        world = make_world(request.param, url)
        try:
            yield world
        finally:
            world.db.dispose()
