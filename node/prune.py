"""`slapos node prune`: remove the store entries no software release of the node uses any more.

``partita:pip`` and ``partita:cmmi`` install into stores every release of the node shares,
``<cache_directory>/pip`` and ``<cache_directory>/cmmi``: one directory per key (32 hex digits).
Buildout never removes an entry (other releases may use it), so they stay after the release that
made them is removed. Each recipe adds the entries it uses to ``<software directory>/.partita-stores``
(one path a line) before it looks at the entry, under the entry's lock.

The decision (`unused`, plain data)::

    some release's use is unknown        -> remove nothing (warn: it names the releases)
      (built before the record existed: its .installed.cfg names partita:pip or partita:cmmi
       and it has no .partita-stores; or the record cannot be read safely)
    entry name is not a key (32 hex)     -> leave it alone (temporary directories, lock files)
    entry key named by some record       -> keep
    otherwise                            -> remove

Every software directory counts, complete or not (a build in progress, a failed one). Removal,
per entry: take the recipes' lock of that key without waiting (busy: skipped, a build uses it),
read the records again, rename the entry to ``.trash-<key>-<random>`` in its store (a reader
never sees half an entry), measure it, delete it. The node runs as root over stores the build
user writes: every step works through descriptors (``O_NOFOLLOW``), a store that is a link is
skipped, and deletion never follows a link (`shutil.rmtree` with ``dir_fd``). A ``.trash-*``
directory an interrupted prune left is deleted too.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from partita.node.config import NodeConfig
from partita.node.errors import NodeError
from partita.slap.fileio import open_beneath, open_directory, open_regular

log = logging.getLogger(__name__)

STORES = ("pip", "cmmi")
RECORD = ".partita-stores"
INSTALLED = ".installed.cfg"
TRASH = ".trash-"
STORE_RECIPES = ("partita:pip", "partita:cmmi")
MAX_RECORD = 4 * 1024 * 1024
_KEY = re.compile(r"[0-9a-f]{32}\Z")
_RELEASE = re.compile(r"[0-9a-f]{32}\Z")  # software_root/<md5(url)>


class PruneError(NodeError):
    code = "NODE_PRUNE"


# -- the decision ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    store: str   # "pip" or "cmmi"
    name: str

    def __str__(self) -> str:
        return f"{self.store}/{self.name}"


@dataclass(frozen=True)
class Release:
    name: str                           # the software directory's name
    references: frozenset[str] | None   # the entry names it uses; None: unknown


def is_key(name: str) -> bool:
    return bool(_KEY.match(name))


def unknown(releases: Iterable[Release]) -> list[str]:
    """The releases whose use of the stores is unknown (while there is one, nothing is removed)."""
    return sorted(release.name for release in releases if release.references is None)


def unused(entries: Iterable[Entry], releases: Iterable[Release]) -> list[Entry]:
    """The entries to remove: key-shaped, named by no release; none while a release is unknown."""
    releases = list(releases)
    if unknown(releases):
        return []
    used = set().union(*(release.references or () for release in releases))
    return sorted((entry for entry in entries if is_key(entry.name) and entry.name not in used),
                  key=lambda entry: (entry.store, entry.name))


def references_of(record: str) -> frozenset[str]:
    """The entry names a ``.partita-stores`` record lists (the last part of each path)."""
    return frozenset(line.strip().rstrip("/").rpartition("/")[2] for line in record.splitlines() if line.strip())


def uses_stores(installed: str) -> bool:
    """Whether an ``.installed.cfg`` has a part of a store recipe (a release built before records)."""
    return any(re.search(rf"^recipe\s*=\s*{re.escape(recipe)}\s*$", installed, re.MULTILINE)
               for recipe in STORE_RECIPES)


def human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


# -- reading the node ------------------------------------------------------------------------------

def _read(name: str, dir_fd: int) -> str | None:
    """A regular file of the directory `dir_fd`, never through a link (None: there is none)."""
    try:
        fd = open_regular(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_RECORD + 1)
    if len(data) > MAX_RECORD:
        raise OSError(errno.EFBIG, "larger than the prune reads", name)
    return data.decode("utf-8", errors="replace")


def read_release(root_fd: int, name: str) -> Release:
    """What the software directory `name` of ``software_root`` uses (unknown if it cannot say safely)."""
    try:
        directory = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    except OSError as error:
        log.warning("software %s: cannot open it (%s): keeping every store entry", name, error.strerror or error)
        return Release(name, None)
    try:
        record = _read(RECORD, directory)
        if record is not None:
            return Release(name, references_of(record))
        installed = _read(INSTALLED, directory)
        if installed is not None and uses_stores(installed):
            return Release(name, None)
        return Release(name, frozenset())
    except OSError as error:
        log.warning("software %s: cannot read what it uses (%s): keeping every store entry", name,
                    error.strerror or error)
        return Release(name, None)
    finally:
        os.close(directory)


def read_releases(software_root: Path) -> list[Release]:
    try:
        with open_directory(software_root) as root_fd:
            names = [entry.name for entry in os.scandir(root_fd)
                     if _RELEASE.match(entry.name) and entry.is_dir(follow_symlinks=False)]
            return [read_release(root_fd, name) for name in sorted(names)]
    except FileNotFoundError:
        return []
    except OSError as error:
        raise PruneError(f"cannot read software_root {software_root}: {error.strerror or error}") from None


@contextmanager
def open_store(path: Path) -> Iterator[int | None]:
    """A descriptor of the store `path` (None: there is none, or it is a link: skipped)."""
    store = _open_store(path)
    try:
        yield store
    finally:
        if store is not None:
            os.close(store)


def _open_store(path: Path) -> int | None:
    try:
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PruneError(f"cannot open {path.parent}: {error.strerror or error}") from None
    try:
        return open_beneath(path.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise PruneError(f"cannot open the store {path}: {error.strerror or error}") from None
        log.warning("the store %s is not a directory (a link?): skipped", path)
        return None
    finally:
        os.close(parent)


def list_entries(store_fd: int) -> list[str]:
    """The names of the real directories of a store."""
    return sorted(entry.name for entry in os.scandir(store_fd) if entry.is_dir(follow_symlinks=False))


def tree_size(name: str, dir_fd: int) -> int:
    """The disk space of a directory tree (``du``: blocks, each inode once), never following a link."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, directories, files, fd in os.fwalk(name, dir_fd=dir_fd, follow_symlinks=False):
        for child in [".", *directories, *files]:
            try:
                info = os.stat(child, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


@contextmanager
def try_entry_lock(store_fd: int, key: str) -> Iterator[bool]:
    """The recipes' lock of `key` (``.<key>.lock``), if free; made the store owner's when missing."""
    try:
        fd = os.open(f".{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644,
                     dir_fd=store_fd)
    except OSError:  # a link or something else planted there: leave the entry alone
        yield False
        return
    try:
        info, store = os.fstat(fd), os.fstat(store_fd)
        if not stat.S_ISREG(info.st_mode):
            yield False
            return
        if os.geteuid() == 0 and info.st_uid != store.st_uid:
            os.fchown(fd, store.st_uid, store.st_gid)  # the recipes run as the store's owner
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def discard(store_fd: int, name: str) -> int:
    """Rename the entry out of the way, then delete it; its size."""
    trash = f"{TRASH}{name}-{secrets.token_hex(4)}"
    os.rename(name, trash, src_dir_fd=store_fd, dst_dir_fd=store_fd)
    size = tree_size(trash, store_fd)
    shutil.rmtree(trash, dir_fd=store_fd)
    return size


# -- the command ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Removed:
    entry: Entry
    size: int


@dataclass
class Outcome:
    removed: list[Removed]
    busy: list[Entry]
    unknown: list[str]

    @property
    def total(self) -> int:
        return sum(item.size for item in self.removed)


def prune(config: NodeConfig, *, dry_run: bool = False) -> Outcome:
    """Remove (or, `dry_run`, list) the unused entries of the node's stores."""
    outcome = Outcome([], [], [])
    for store in STORES:
        with open_store(config.cache_root / store) as store_fd:
            if store_fd is not None:
                _prune_store(config, store, store_fd, outcome, dry_run)
    return outcome


def _prune_store(config: NodeConfig, store: str, store_fd: int, outcome: Outcome, dry_run: bool) -> None:
    names = list_entries(store_fd)
    releases = read_releases(config.software_root)
    outcome.unknown = unknown(releases)
    candidates = unused([Entry(store, name) for name in names], releases)
    if not dry_run:
        for name in names:
            if name.startswith(TRASH):  # an interrupted prune's
                shutil.rmtree(name, dir_fd=store_fd, ignore_errors=True)
    for entry in candidates:
        if dry_run:
            outcome.removed.append(Removed(entry, tree_size(entry.name, store_fd)))
            continue
        with try_entry_lock(store_fd, entry.name) as held:
            if not held:
                outcome.busy.append(entry)
                continue
            if entry not in unused([entry], read_releases(config.software_root)):
                continue  # a build recorded it while we looked
            try:
                outcome.removed.append(Removed(entry, discard(store_fd, entry.name)))
            except OSError as error:
                raise PruneError(f"cannot remove {config.cache_root / store / entry.name}: "
                                 f"{error.strerror or error}") from None
