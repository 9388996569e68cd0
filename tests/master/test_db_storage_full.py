"""Issue 10: a full disk under the catalog (master/db/database.py). The proxy's SQLite file (or a
PostgreSQL database's tablespace) lives on a tiny tmpfs mounted by the test; an attacker (or plain growth) fills it: every write answers 507
STORAGE_FULL on both protocols with a readable message, nothing is half-written, and once space is
freed the same requests succeed."""
from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from psycopg import sql
from sqlalchemy import func, select

from partita.master.api.slap_xml.marshal import dumps
from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.settings import AppSettings
from tests.master.conftest import open_catalog
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.root

SR = "/opt/software/demo/software.cfg"
COMPUTER = "local_computer"
PARAMETERS = {"p": "x" * 400_000}  # more than the WAL already holds: new pages are needed


@contextlib.contextmanager
def mounted(directory: Path, size: str, owner: int = 0) -> Iterator[Path]:
    directory.mkdir(exist_ok=True)
    options = f"size={size},mode=0700,uid={owner}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with mounted(tmp_path / "disk", "4m") as disk:
        yield disk


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; the file to delete to free it."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as error:
                    assert error.errno in (errno.ENOSPC, errno.EDQUOT)
                    break
    finally:
        os.close(descriptor)
    return filler


def instances(db: Database) -> list[tuple[str, Any]]:
    with db.read() as session:
        return [(i.title, i.parameters) for i in session.scalars(select(SoftwareInstance).order_by(SoftwareInstance.id))]


def json_request(client: FlaskClient, title: str) -> Any:
    return client.post("/slapos.post.v0.software_instance", json={
        "title": title, "software_release_uri": SR, "software_type": "default", "parameters": PARAMETERS})


def xml_request(client: FlaskClient, title: str) -> Any:
    return client.post("/requestComputerPartition", data={
        "software_release": SR, "partition_reference": title, "partition_parameter_xml": dumps(PARAMETERS),
        "filter_xml": dumps({}), "software_type": "default", "state": dumps(None), "shared_xml": dumps(False)})


def test_a_full_disk_is_a_507_and_changes_nothing(tiny_disk: Path) -> None:
    db = open_catalog(f"sqlite:///{tiny_disk / 'catalog.db'}")
    try:
        client = create_app(db, AppSettings(mode="proxy", computer_id=COMPUTER)).test_client()
        assert json_request(client, "before").status_code == 200
        before = instances(db)
        filler = fill(tiny_disk)

        answer = json_request(client, "json-title")
        assert answer.status_code == 507, answer.text
        error = answer.get_json()
        assert error["code"] == "STORAGE_FULL" and "disk is full" in error["title"]
        answer = xml_request(client, "xml-title")
        assert answer.status_code == 507 and "disk is full" in answer.text, answer.text
        assert instances(db) == before  # nothing half-written

        filler.unlink()
        assert json_request(client, "json-title").status_code == 200
        assert xml_request(client, "xml-title").status_code == 408  # stored, waiting for a partition
        assert [title for title, _ in instances(db)] == ["before", "json-title", "xml-title"]
        with db.read() as session:
            assert session.scalar(select(func.count(SoftwareInstance.id))) == 3
    finally:
        db.dispose()


@pytest.mark.postgresql
def test_a_full_tablespace_is_a_507_and_changes_nothing(postgres_server: PostgresServer) -> None:
    """The catalog's database lives in a tablespace on a tiny tmpfs: PostgreSQL's "could not extend
    file" (SQLSTATE 53100) is a 507 too, and the transaction is rolled back."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    base = Path(tempfile.mkdtemp(prefix="partita-tablespace-"))
    base.chmod(0o755)  # the server's user must reach the mount point
    name = f"t_full_{uuid.uuid4().hex[:8]}"
    uid = pwd.getpwnam(postgres_server.user).pw_uid
    try:
        with mounted(base / "disk", "48m", uid) as disk:
            space = disk / "space"
            space.mkdir()
            os.chown(space, uid, -1)
            postgres_server._execute(psycopg_sql(f'CREATE TABLESPACE "{name}" LOCATION \'{space}\''))
            postgres_server._execute(psycopg_sql(f'CREATE DATABASE "{name}" TABLESPACE "{name}"'))
            db = open_catalog(postgres_server.url(name))
            try:
                client = create_app(db, AppSettings(mode="proxy", computer_id=COMPUTER)).test_client()
                assert json_request(client, "before").status_code == 200
                before = instances(db)
                filler = fill(disk)
                answer = json_request(client, "json-title")
                assert answer.status_code == 507, answer.text
                assert answer.get_json()["code"] == "STORAGE_FULL"
                answer = xml_request(client, "xml-title")
                assert answer.status_code == 507 and "disk is full" in answer.text, answer.text
                assert instances(db) == before
                filler.unlink()
                assert json_request(client, "json-title").status_code == 200
            finally:
                db.dispose()
                postgres_server.drop_database(name)
                postgres_server._execute(psycopg_sql(f'DROP TABLESPACE IF EXISTS "{name}"'))
    finally:
        shutil.rmtree(base, ignore_errors=True)  # the mount point, once unmounted


def psycopg_sql(text: str) -> sql.SQL:
    return sql.SQL(text)  # type: ignore[arg-type]  # names made here, not by a caller
