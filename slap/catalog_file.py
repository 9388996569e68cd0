"""A catalog file is owner-only (issue 10): every instance's parameters and secrets live there.

The proxy's and the master's SQLite catalogs go through `secure_catalog` before the database is
opened (``slapos proxy start|show``, ``slapos master init|start``). For a SQLite file it

- makes a missing directory ``0700`` (its parents as ``mkdir -p`` would);
- refuses a directory another user may write (not sticky), since whoever can write it can swap the
  file for their own: one line naming the directory and the ``chmod`` to run;
- creates the file ``0600`` if it is missing, and opens it and its ``-wal``, ``-shm`` and
  ``-journal`` companions without following a link: a link, or a file of another user, is refused;
  a file readable or writable by others is made ``0600`` and said (its content may have been read).

A PostgreSQL catalog is the database server's to protect: nothing is checked for it here.
SQLite gives the ``-wal`` and ``-shm`` files it creates the mode of the database file, and the
commands run with umask ``077`` (`private_umask`) so nothing else they create is readable by others.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from partita.slap.errors import ConfigurationError
from partita.slap.fileio import open_beneath, open_directory

COMPANIONS = ("", "-wal", "-shm", "-journal")
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def sqlite_path(database_uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for another database or an in-memory one)."""
    if not database_uri.startswith("sqlite:///"):
        return None
    path = database_uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path if path.startswith("/") else os.path.abspath(path))


def private_umask() -> None:
    """What this process creates from now on is its user's only."""
    os.umask(0o077)


def secure_catalog(database_uri: str, say: Callable[[str], None]) -> None:
    """Make the catalog of `database_uri` owner-only, or refuse (`ConfigurationError`) what cannot be
    made so; `say` receives one line per file whose mode was fixed."""
    path = sqlite_path(database_uri)
    if path is None:
        return
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=DIRECTORY_MODE, parents=True)
    try:
        with open_directory(directory) as dir_fd:
            _check_directory(dir_fd, directory)
            for suffix in COMPANIONS:
                _check_file(dir_fd, path.name + suffix, directory / (path.name + suffix),
                            create=suffix == "", say=say)
    except OSError as error:
        raise ConfigurationError(f"cannot check the catalog {path}: {error.strerror or error}") from None


def _check_directory(dir_fd: int, directory: Path) -> None:
    info = os.fstat(dir_fd)
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigurationError(f"the catalog's directory {directory} belongs to another user (uid "
                                 f"{info.st_uid}): put the database in a directory of this user")
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise ConfigurationError(f"the catalog's directory {directory} is writable by other users: "
                                 f"chmod 700 {directory}")


def _check_file(dir_fd: int, name: str, shown: Path, *, create: bool, say: Callable[[str], None]) -> None:
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_CREAT if create else 0)
    try:
        fd = open_beneath(name, flags, FILE_MODE, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigurationError(f"the catalog file {shown} is a link: remove it or point "
                                     "database_uri at the real file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"the catalog file {shown} is not a regular file")
        if info.st_uid != os.geteuid():
            raise ConfigurationError(f"the catalog file {shown} belongs to another user (uid {info.st_uid}): "
                                     f"chown {os.geteuid()} {shown}; chmod 600 {shown}")
        if info.st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
            say(f"the catalog file {shown} was mode {stat.S_IMODE(info.st_mode):o} (others could read "
                "its secrets): it is now 600")
    finally:
        os.close(fd)
