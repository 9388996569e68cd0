"""The master's package index: a directory of wheels served as a PEP 503 "simple" index (issue 13).

Nodes that reach only their master build their toolchain and the ``partita:pip`` parts of their
releases from it (``[slapos] package_index``). The directory (``[slapmaster] packages_directory``)
is flat, filled by ``slapos master packages fetch``::

    packages/
        zc.buildout-6.1-py3-none-any.whl      GET /packages/files/zc.buildout-6.1-py3-none-any.whl
        jinja2-3.1.6-py3-none-any.whl          listed by GET /packages/simple/jinja2/
        .tmp-…/                                 a fetch under way: hidden, never served

What is served, and what is not:

- only regular files of the directory itself whose plain name ends in `SUFFIXES` and passes
  `file_name` (no separator, no leading dot, no control character); a link, a sub-directory, a
  FIFO or a file with several names is neither listed nor served: the directory is opened
  without following a link and each file relative to it with ``O_NOFOLLOW`` (`slap.fileio`);
- a file's project is read from its name (`project_of`: a wheel's first field, an sdist's name
  before its last dash), normalised as PEP 503 says (`normalize`); a project with no file is
  unknown (404);
- each link carries ``#sha256=<digest>``, and ``data-requires-python`` when a wheel's metadata
  says so. Both are computed once per (name, size, mtime) and kept (`_Cache`), so a listing
  reads a file again only when it changed.

The rules (`file_name`, `project_of`, `normalize`, `render_*`) are pure; `Wheelhouse` reads the
directory. Errors are `PackageNotFound` (404) and `BadPackageName` (400), with their message.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import stat
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from partita.slap.errors import BadRequest, NotFound
from partita.slap.fileio import open_directory, open_regular
from partita.slap.pins import normalise as normalize  # PEP 503: one rule for the index and the pins

SUFFIXES = (".whl", ".tar.gz", ".zip")
MAX_NAME = 255
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]*\Z")
_PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_REQUIRES_PYTHON = re.compile(rb"^Requires-Python:[ \t]*(.+?)\r?$", re.MULTILINE)
_MAX_METADATA = 1024 * 1024
_CACHE_LIMIT = 10_000


class BadPackageName(BadRequest):
    """A file or project name the index never serves (a path, a dot-file, an odd character)."""


class PackageNotFound(NotFound):
    """No such file or project in the packages directory."""


# -- rules ---------------------------------------------------------------------------------------

def file_name(name: str) -> str:
    """`name` if the index may serve a file so named; a `BadPackageName` saying why otherwise."""
    if not name or len(name) > MAX_NAME:
        raise BadPackageName("a package file name has 1 to 255 characters")
    if "/" in name or "\\" in name or "\0" in name:
        raise BadPackageName("a package file name is a plain name, not a path")
    if not _NAME.match(name):
        raise BadPackageName(f"{name[:80]!r} is not a package file name (letters, digits and ._+!~-, "
                             "not starting with a dot)")
    if not name.endswith(SUFFIXES):
        raise BadPackageName(f"{name[:80]!r} is not a package file ({', '.join(SUFFIXES)})")
    return name


def project_of(name: str) -> str | None:
    """The normalised project of the package file `name` (None if its name does not say)."""
    if name.endswith(".whl"):
        project = name.split("-", 1)[0] if name.count("-") >= 4 else ""
    else:
        stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else name[: -len(".zip")]
        project = stem.rpartition("-")[0]
    return normalize(project) if _PROJECT.match(project) else None


def version_of(name: str) -> str:
    """The version part of a package file name (a wheel's second field, an sdist's last one)."""
    if name.endswith(".whl"):
        fields = name.split("-")
        return fields[1] if len(fields) >= 5 else ""
    stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else name.rsplit(".", 1)[0]
    return stem.rpartition("-")[2]


def check_project(project: str) -> str:
    """The normalised form of a project name from a URL; a `BadPackageName` if it cannot be one."""
    if not project or len(project) > MAX_NAME or not _PROJECT.match(project):
        raise BadPackageName(f"{project[:80]!r} is not a project name")
    return normalize(project)


@dataclass(frozen=True)
class PackageFile:
    name: str
    project: str
    size: int
    sha256: str
    requires_python: str | None = None


def render_projects(projects: Iterable[str]) -> str:
    """The PEP 503 root page: one link per project."""
    links = "".join(f'<a href="{quote(name)}/">{html.escape(name)}</a><br>\n' for name in sorted(projects))
    return f"<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n{links}</body></html>\n"


def render_project(project: str, files: Iterable[PackageFile], files_url: str) -> str:
    """The PEP 503 page of one project: a link per file, with its digest (and Python range)."""
    links = []
    for item in sorted(files, key=lambda f: f.name):
        attributes = f'href="{files_url}{quote(item.name)}#sha256={item.sha256}"'
        if item.requires_python:
            attributes += f' data-requires-python="{html.escape(item.requires_python, quote=True)}"'
        links.append(f"<a {attributes}>{html.escape(item.name)}</a><br>\n")
    title = html.escape(f"Links for {project}")
    return f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n{''.join(links)}</body></html>\n"


# -- the directory -------------------------------------------------------------------------------

class _Cache:
    """Digests and Python ranges by (directory, name, size, mtime): a file is read once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str, int, int], tuple[str, str | None]] = {}

    def get(self, key: tuple[str, str, int, int]) -> tuple[str, str | None] | None:
        with self.lock:
            return self.entries.get(key)

    def put(self, key: tuple[str, str, int, int], value: tuple[str, str | None]) -> None:
        with self.lock:
            if len(self.entries) >= _CACHE_LIMIT:
                self.entries.clear()
            self.entries[key] = value


_cache = _Cache()


class Wheelhouse:
    """The packages directory, read without following links."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def files(self) -> list[PackageFile]:
        """Every file the index serves (an absent directory serves none)."""
        try:
            with open_directory(self.directory) as dir_fd:
                return [found for found in (self._describe(dir_fd, entry.name)
                                            for entry in os.scandir(dir_fd)) if found is not None]
        except FileNotFoundError:
            return []

    def projects(self) -> list[str]:
        return sorted({item.project for item in self.files()})

    def files_of(self, project: str) -> list[PackageFile]:
        """The files of `project` (any spelling); `PackageNotFound` if it has none."""
        wanted = check_project(project)
        found = [item for item in self.files() if item.project == wanted]
        if not found:
            raise PackageNotFound(f"no project {wanted!r} in this index")
        return found

    def open(self, name: str) -> tuple[BinaryIO, int]:
        """The file `name` open for reading and its size; `BadPackageName` or `PackageNotFound`."""
        file_name(name)
        try:
            with open_directory(self.directory) as dir_fd:
                fd = open_regular(name, dir_fd=dir_fd)
        except OSError:  # missing, a link, not a regular file, no directory
            raise PackageNotFound(f"no package file {name!r} in this index") from None
        return os.fdopen(fd, "rb"), os.fstat(fd).st_size

    def _describe(self, dir_fd: int, name: str) -> PackageFile | None:
        try:
            file_name(name)
        except BadPackageName:
            return None
        project = project_of(name)
        if project is None:
            return None
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            return None
        key = (str(self.directory), name, info.st_size, info.st_mtime_ns)
        known = _cache.get(key)
        if known is None:
            try:
                known = _read_facts(dir_fd, name)
            except OSError:
                return None
            _cache.put(key, known)
        return PackageFile(name, project, info.st_size, *known)


def _read_facts(dir_fd: int, name: str) -> tuple[str, str | None]:
    """The sha256 of the file `name` and, for a wheel, its Requires-Python."""
    fd = open_regular(name, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as stream:
        digest = hashlib.sha256()
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
        requires = _requires_python(stream) if name.endswith(".whl") else None
    return digest.hexdigest(), requires


def _requires_python(stream: BinaryIO) -> str | None:
    """``Requires-Python`` of a wheel's METADATA; None if absent or the wheel is unreadable."""
    try:
        with zipfile.ZipFile(stream) as archive:
            for entry in archive.infolist():
                parts = entry.filename.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    if entry.file_size > _MAX_METADATA:
                        return None
                    match = _REQUIRES_PYTHON.search(archive.read(entry))
                    return match.group(1).decode("utf-8", "replace").strip() if match else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    return None
