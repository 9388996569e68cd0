"""The master's package index (`master.services.packages`, `master.api.packages`, issue 13)."""
from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.pki import certificates as certs
from partita.master.services.certificates import Authority
from partita.master.services.packages import (BadPackageName, PackageNotFound, Wheelhouse, file_name, normalize,
                                               project_of)
from partita.master.settings import AppSettings


def wheel(name: str, requires_python: str | None = None) -> bytes:
    """A wheel's bytes: enough of one for its METADATA to be read."""
    data = io.BytesIO()
    project, version = name.split("-")[:2]
    metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr(f"{project}-{version}.dist-info/METADATA", metadata)
        archive.writestr(f"{project}/__init__.py", "")
    return data.getvalue()


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    directory = tmp_path / "packages"
    directory.mkdir()
    (directory / "Jinja2-3.1.6-py3-none-any.whl").write_bytes(wheel("Jinja2-3.1.6", ">=3.7"))
    (directory / "zc.buildout-6.1-py3-none-any.whl").write_bytes(wheel("zc.buildout-6.1"))
    (directory / "zc_buildout-6.0.tar.gz").write_bytes(b"sdist")
    return directory


@pytest.fixture
def index(db: Database, packages: Path) -> FlaskClient:
    app: Flask = create_app(db, AppSettings(packages_directory=str(packages)))
    return app.test_client()


def test_names_are_normalised_as_pep_503_says() -> None:
    assert normalize("Foo.Bar__baz-") == "foo-bar-baz-"
    assert project_of("zc.buildout-6.1-py3-none-any.whl") == "zc-buildout"
    assert project_of("psycopg_binary-3.2.1-cp311-cp311-manylinux_2_17_x86_64.whl") == "psycopg-binary"
    assert project_of("zc_buildout-6.0.tar.gz") == "zc-buildout"
    assert project_of("python-dateutil-2.9.0.zip") == "python-dateutil"
    assert project_of("short-1.0.whl") is None  # not a wheel's five fields


@pytest.mark.parametrize("name", ["", ".hidden.whl", "../x.whl", "a/b.whl", "x.whl\0", "x.exe", "x.whl ",
                                  "-x.whl", "x" * 300 + ".whl", "é.whl"])
def test_odd_file_names_are_refused(name: str) -> None:
    with pytest.raises(BadPackageName):
        file_name(name)


def test_the_root_lists_each_project_once(index: FlaskClient) -> None:
    answer = index.get("/packages/simple/")
    assert answer.status_code == 200 and answer.content_type.startswith("text/html")
    assert re.findall(r'href="([^"]+)"', answer.get_data(as_text=True)) == ["jinja2/", "zc-buildout/"]


def test_a_project_page_links_each_file_with_its_digest(index: FlaskClient, packages: Path) -> None:
    page = index.get("/packages/simple/zc.Buildout/").get_data(as_text=True)  # any spelling
    links = dict(re.findall(r'href="/packages/files/([^"#]+)#sha256=([0-9a-f]{64})"', page))
    assert links == {name: hashlib.sha256((packages / name).read_bytes()).hexdigest()
                     for name in ("zc.buildout-6.1-py3-none-any.whl", "zc_buildout-6.0.tar.gz")}
    assert 'data-requires-python="&gt;=3.7"' in index.get("/packages/simple/jinja2/").get_data(as_text=True)


def test_a_file_is_served_whole_with_its_length(index: FlaskClient, packages: Path) -> None:
    answer = index.get("/packages/files/zc_buildout-6.0.tar.gz")
    assert answer.status_code == 200
    assert answer.get_data() == b"sdist" and answer.headers["Content-Length"] == "5"


def test_an_unknown_project_or_file_is_a_404_with_a_message(index: FlaskClient) -> None:
    for path in ("/packages/simple/nope/", "/packages/files/nope-1.0.tar.gz"):
        answer = index.get(path)
        assert answer.status_code == 404 and "nope" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/packages/files/..%2F..%2Fetc%2Fpasswd", "/packages/files/.secret.whl",
                                  "/packages/files/%2e%2e", "/packages/files/x.whl%00", "/packages/simple/%00/",
                                  "/packages/simple/a%2Fb/", "/packages/files/" + "x" * 400 + ".whl",
                                  "/packages/simple/" + "%ff" * 3 + "/", "/packages/files/ok.txt"])
def test_path_tricks_get_a_4xx_never_a_500(index: FlaskClient, path: str) -> None:
    answer = index.get(path)
    assert answer.status_code in (400, 404), (path, answer.status_code)
    assert answer.get_data(as_text=True).strip()


def test_links_and_other_entries_are_neither_listed_nor_served(index: FlaskClient, packages: Path,
                                                              tmp_path: Path) -> None:
    secret = tmp_path / "secret-1.0-py3-none-any.whl"
    secret.write_bytes(b"private")
    (packages / "secret-1.0-py3-none-any.whl").symlink_to(secret)
    (packages / "other-1.0.tar.gz").mkdir()
    os.mkfifo(packages / "fifo-1.0.tar.gz")
    os.link(secret, packages / "hard-1.0.tar.gz")  # a second name of a file from elsewhere
    (packages / ".partial-1.0.tar.gz").write_bytes(b"half")
    listed = index.get("/packages/simple/").get_data(as_text=True)
    for project in ("secret", "other", "fifo", "hard", "partial"):
        assert project not in listed
    for name in ("secret-1.0-py3-none-any.whl", "other-1.0.tar.gz", "fifo-1.0.tar.gz", "hard-1.0.tar.gz"):
        assert index.get(f"/packages/files/{name}").status_code == 404, name


def test_a_directory_swapped_for_a_link_is_not_followed(tmp_path: Path, packages: Path, db: Database) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "leak-1.0.tar.gz").write_bytes(b"private")
    link = tmp_path / "linked"
    link.symlink_to(elsewhere)
    os.chmod(tmp_path, 0o777)  # a link someone else could have planted
    try:
        client = create_app(db, AppSettings(packages_directory=str(link / "."))).test_client()
        assert client.get("/packages/files/leak-1.0.tar.gz").status_code == 404
    finally:
        os.chmod(tmp_path, 0o755)


def test_digests_are_computed_once_per_version_of_a_file(packages: Path) -> None:
    house = Wheelhouse(packages)
    target = packages / "zc_buildout-6.0.tar.gz"
    first = {item.name: item.sha256 for item in house.files()}
    os.chmod(target, 0)  # unreadable now: a cached digest does not read it again
    try:
        if os.geteuid() != 0:
            assert {item.name: item.sha256 for item in house.files()} == first
    finally:
        os.chmod(target, 0o644)
    target.write_bytes(b"changed, longer")
    again = {item.name: item.sha256 for item in house.files()}
    assert again[target.name] == hashlib.sha256(b"changed, longer").hexdigest() != first[target.name]


def test_the_index_needs_no_identity_on_an_authenticated_master(db: Database, packages: Path) -> None:
    app = create_app(db, AppSettings(mode="master", authentication=True, packages_directory=str(packages)),
                     Authority(certs.new_ca()))
    client = app.test_client()
    assert client.get("/packages/simple/jinja2/").status_code == 200
    assert client.get("/packages/files/zc_buildout-6.0.tar.gz").get_data() == b"sdist"
    assert client.get("/packages/simple/nope/").status_code == 404  # not 401: the index is public
    assert client.post("/slapos.get.v0.whoami", json={}).status_code == 401  # the rest is not


def test_a_server_without_a_directory_serves_no_index(db: Database) -> None:
    client = create_app(db, AppSettings()).test_client()
    answer = client.get("/packages/simple/")
    assert answer.status_code == 404 and "package index" in answer.get_data(as_text=True)
    with pytest.raises(PackageNotFound):
        Wheelhouse("/nonexistent").files_of("x")
