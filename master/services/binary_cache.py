"""The binary cache: the built software of a release on a platform, kept by the master for every node.

A node that built a release (``software_root/<md5(url)>`` plus the shared store entries it uses)
may upload it; a node about to build the same release on the same platform downloads it instead.

**The key** is ``<md5 of the release URL>-<platform>``, both computed by the node
(`node.binary_cache`): the platform names what the built files depend on (OS, machine, the
toolchain, the absolute paths scripts embed), e.g. ``debian-12-x86_64-3f2a9c0d1e4b``. The master
checks the key's shape and that its digest is the md5 of the release URL given with it; it names
the files: ``<directory>/<key>.tar`` once complete, ``<directory>/.upload-<key>`` while uploading.
No other part of a path comes from the caller.

**Who may fill it.** What a builder uploads runs on every node that downloads it, as their
software user, and serves their partitions: a node's upload must never become code that other
nodes run unless an administrator chose to trust that node. So only a computer an admin marked as
a builder (``slapos computer builder set COMP``, `set_builder`) may upload, authenticated by its
own certificate (role ``computer``: neither a partition certificate nor a user token); anyone else
gets 403 ``NOT_A_BUILDER`` and nothing is stored. A partition user on a builder cannot reach the
node's certificate (root's). Every node (and admins) may read the cache.

Every release a node builds runs as its one software user, which owns the other releases' software
directories: a release someone else supplied could change them before they are uploaded. So a
builder uploads a release only while it is supplied to it, and only if every release ever
supplied to it (`Supply` rows) was supplied by its owner or an admin (`check_supplies`): a user who
may supply any computer cannot turn a builder's upload into code of theirs on the other nodes.

**Upload** (chunked: the front reads whole bodies, at most ``max_body_bytes``)::

    begin(key, url, platform, size, sha256)
        ├─ the key is complete ─────────────────────► 409 ALREADY_CACHED (the first complete upload wins)
        ├─ size over binary_cache_max_entry ────────► 413 TOO_LARGE
        ├─ another builder uploads it (< 1 hour) ───► 409 UPLOAD_IN_PROGRESS
        └─ row state uploading, empty .upload-<key>
    chunk(key, offset, data)   offset = what the master holds (a retried chunk rewrites from there);
                               past the declared size ► 400 INVALID; nothing held by this caller ► 409
    commit(key)  size and sha256 of what the master holds == declared?
        ├─ no ─► the upload and its row are removed ─► 400 DIGEST_MISMATCH
        └─ yes ► fsync, rename to <key>.tar, state complete, audited ``binary_cache.upload``

An upload abandoned for an hour is removed by the next begin (`is_stale`).

**Download**: `lookup` (sha256 and size; 404 ``NOT_CACHED`` unless complete), then `read_chunk`
by ranges. The node checks the sha256 of what it received.

**Listing and removal** are for admins only (`list_entries`, `remove`): an admin who no longer
trusts a builder unsets it and removes every entry it uploaded (complete or still uploading; both
files of a key, audited ``binary_cache.remove`` each). The rows go in the transaction that holds
their lock, so no upload of the same key interleaves. A node downloading a removed entry gets 404
``NOT_CACHED`` at its next chunk (its row or its file is gone), and a node that read chunks of an
entry replaced meanwhile fails its sha256 check: either way it builds the release itself.

Several master processes share the catalog but not this directory: run them over one shared
directory, or one master.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import BinaryCacheEntry, Computer, Owner, Supply
from partita.master.services import access, audit
from partita.master.services.computers import get_computer
from partita.master.services.identity import Caller
from partita.slap.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge, ValidationError

KEY = re.compile(r"(?P<digest>[0-9a-f]{32})-(?P<platform>[a-z0-9][a-z0-9._+-]{0,119})\Z")
SHA256 = re.compile(r"[0-9a-f]{64}\Z")
CHUNK_MAX = 4 * 1024 * 1024  # raw bytes per chunk: base64 of it stays well under a 10 MiB body
MAX_ENTRY = 2 * 1024 ** 3
STALE_AFTER = 3600.0
UPLOADING, COMPLETE = "uploading", "complete"


class NotABuilder(Forbidden):
    code = "NOT_A_BUILDER"


class NotCached(NotFound):
    code = "NOT_CACHED"


class AlreadyCached(Conflict):
    code = "ALREADY_CACHED"


class UploadInProgress(Conflict):
    code = "UPLOAD_IN_PROGRESS"


class DigestMismatch(BadRequest):
    code = "DIGEST_MISMATCH"


@dataclass(frozen=True)
class Store:
    """Where the cache's files live and how large one may be."""

    directory: Path
    max_entry: int = MAX_ENTRY

    def complete(self, key: str) -> Path:
        return self.directory / f"{key}.tar"

    def upload(self, key: str) -> Path:
        return self.directory / f".upload-{key}"


@dataclass(frozen=True)
class EntryView:
    key: str
    release_url: str
    platform: str
    sha256: str
    size: int
    uploader: str
    created_at: float
    state: str


# -- pure rules ----------------------------------------------------------------------------------

def check_key(key: str, release_url: str | None = None) -> None:
    """A key is ``<32 hex>-<platform>`` (lower case, no slash); with `release_url`, its digest is
    the URL's md5 (400 otherwise)."""
    match = KEY.match(key)
    if match is None:
        raise ValidationError(f"{key[:200]!r} is not a binary cache key (<md5 of the release URL>-<platform>)")
    if release_url is not None and hashlib.md5(release_url.encode()).hexdigest() != match["digest"]:
        raise ValidationError(f"the key {key!r} is not for the release {release_url[:300]!r}")


def check_upload(size: int, sha256: str, max_entry: int) -> None:
    if not SHA256.match(sha256):
        raise ValidationError("sha256 must be 64 lower-case hex digits")
    if size < 1:
        raise ValidationError("size must be a positive number of bytes")
    if size > max_entry:
        raise TooLarge(f"an entry of the binary cache is at most {max_entry} bytes, not {size}")


def check_chunk(declared: int, held: int, offset: int, length: int) -> None:
    """A chunk starts at or before what the master holds and ends within the declared size."""
    if length < 1 or length > CHUNK_MAX:
        raise ValidationError(f"a chunk holds 1 to {CHUNK_MAX} bytes, not {length}")
    if offset < 0 or offset > held:
        raise ValidationError(f"the chunk at offset {offset} leaves a gap: the master holds {held} bytes")
    if offset + length > declared:
        raise ValidationError(f"the chunk at offset {offset} ({length} bytes) ends past the declared "
                              f"size {declared}")


def check_supplies(computer: str, release_url: str, supplied: list[tuple[str, str]], trusted: set[str]) -> None:
    """`supplied`: (url, supplier) of every supply of the builder `computer`; `trusted`: its owner
    and the admins. The release must be among them, and every supplier trusted (403 otherwise)."""
    if release_url not in {url for url, _ in supplied}:
        raise NotABuilder(f"{release_url[:300]!r} is not supplied to computer {computer!r}: it uploads only what "
                          "it was asked to build")
    others = sorted({owner for _, owner in supplied if owner not in trusted})
    if others:
        raise NotABuilder(f"computer {computer!r} also builds releases supplied by {', '.join(others[:5])}: "
                          "its uploads are refused (they could have changed what it built)")


def is_stale(created_at: float, now: float) -> bool:
    return now - created_at > STALE_AFTER


def may_read(caller: Caller) -> bool:
    """Nodes, the proxy's local caller and admins read the cache; partitions and other users do not."""
    return caller.role in ("computer", "local") or caller.is_admin


# -- services ------------------------------------------------------------------------------------

def _view(entry: BinaryCacheEntry) -> EntryView:
    return EntryView(entry.key, entry.release_url, entry.platform, entry.sha256, entry.size, entry.uploader,
                     entry.created_at, entry.state)


def _entry(session: Session, key: str, *, lock: bool = False) -> BinaryCacheEntry | None:
    query = select(BinaryCacheEntry).where(BinaryCacheEntry.key == key)
    return session.scalar(query.with_for_update() if lock else query)


def _reader(caller: Caller) -> None:
    if not may_read(caller):
        raise Forbidden(f"a {caller.role} may not read the binary cache")


def _builder(session: Session, caller: Caller) -> Computer:
    """The calling computer, if it is a builder (403 NOT_A_BUILDER otherwise)."""
    if caller.role != "computer" or caller.computer is None:
        raise NotABuilder("only a computer an admin marked as a builder may fill the binary cache, "
                          "with its own certificate")
    computer = session.scalar(select(Computer).where(Computer.reference == caller.computer))
    if computer is None or not computer.builder:
        raise NotABuilder(f"computer {caller.computer!r} is not a builder: only an admin may make it one "
                          "(slapos computer builder set)")
    return computer


def _check_supplies(session: Session, computer: Computer, release_url: str) -> None:
    supplied = [(url, name) for url, name in session.execute(
        select(Supply.url, Owner.name).join(Owner, Owner.id == Supply.owner_id)
        .where(Supply.computer_id == computer.id))]
    owner = session.scalar(select(Owner.name).where(Owner.id == computer.owner_id)) or ""
    admins = set(session.scalars(select(Owner.name).where(Owner.admin.is_(True))))
    check_supplies(computer.reference, release_url, supplied, {owner, *admins})


def lookup(session: Session, caller: Caller, key: str) -> EntryView:
    """The complete entry of `key` (404 NOT_CACHED otherwise)."""
    _reader(caller)
    check_key(key)
    entry = _entry(session, key)
    if entry is None or entry.state != COMPLETE:
        raise NotCached(f"the binary cache has no {key}")
    return _view(entry)


def read_chunk(session: Session, caller: Caller, store: Store, key: str, offset: int, length: int) -> bytes:
    """Up to `length` bytes of the complete entry `key` from `offset`."""
    entry = lookup(session, caller, key)
    if not 0 <= offset <= entry.size or not 1 <= length <= CHUNK_MAX:
        raise ValidationError(f"offset 0 to {entry.size} and length 1 to {CHUNK_MAX}, not {offset} and {length}")
    try:
        with _open(store.complete(key), os.O_RDONLY) as fd:
            return os.pread(fd, length, offset)
    except FileNotFoundError:
        raise NotCached(f"the binary cache has lost the file of {key}") from None


def begin(session: Session, caller: Caller, store: Store, key: str, release_url: str, platform: str,
          size: int, sha256: str) -> EntryView:
    """Start (or restart) `caller`'s upload of `key`."""
    computer = _builder(session, caller)
    check_key(key, release_url)
    check_upload(size, sha256, store.max_entry)
    _check_supplies(session, computer, release_url)
    now = time.time()
    _remove_stale(session, store, now, keep=key)
    entry = _entry(session, key, lock=True)
    if entry is not None and entry.state == COMPLETE:
        raise AlreadyCached(f"{key} is already in the binary cache")
    if entry is not None and entry.uploader != caller.computer and not is_stale(entry.created_at, now):
        raise UploadInProgress(f"computer {entry.uploader!r} is uploading {key}")
    if entry is None:
        entry = BinaryCacheEntry(key=key)
        session.add(entry)
    entry.release_url, entry.platform, entry.sha256, entry.size = release_url, platform[:128], sha256, size
    entry.uploader, entry.created_at, entry.state = str(caller.computer), now, UPLOADING
    store.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _open(store.upload(key), os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
        pass
    session.flush()
    return _view(entry)


def _uploading(session: Session, caller: Caller, key: str) -> BinaryCacheEntry:
    _builder(session, caller)
    check_key(key)
    entry = _entry(session, key, lock=True)
    if entry is not None and entry.state == COMPLETE:
        raise AlreadyCached(f"{key} is already in the binary cache")
    if entry is None or entry.uploader != caller.computer:
        raise Conflict(f"computer {caller.computer!r} has begun no upload of {key}")
    return entry


def write_chunk(session: Session, caller: Caller, store: Store, key: str, offset: int, data: bytes) -> int:
    """Write `data` at `offset` of the upload (what follows is dropped); the bytes now held."""
    entry = _uploading(session, caller, key)
    try:
        with _open(store.upload(key), os.O_WRONLY) as fd:
            check_chunk(entry.size, os.fstat(fd).st_size, offset, len(data))
            os.ftruncate(fd, offset)
            os.pwrite(fd, data, offset)
            return offset + len(data)
    except FileNotFoundError:
        raise Conflict(f"the upload of {key} was abandoned: begin it again") from None


def commit(session: Session, caller: Caller, store: Store, key: str) -> tuple[EntryView, str | None]:
    """Check what the master holds against the declared size and sha256: complete the entry, or
    remove the upload; the entry and, for a mismatch, what is wrong (the caller raises it once
    this transaction removed the upload)."""
    entry = _uploading(session, caller, key)
    path = store.upload(key)
    if not path.exists() and store.complete(key).exists():
        path = store.complete(key)  # renamed by an attempt of this commit whose transaction was retried
    try:
        with _open(path, os.O_RDONLY) as fd:
            size, digest = _digest(fd)
            os.fsync(fd)
    except FileNotFoundError:
        raise Conflict(f"the upload of {key} was abandoned: begin it again") from None
    if (size, digest) != (entry.size, entry.sha256):
        view = _view(entry)
        session.delete(entry)
        path.unlink(missing_ok=True)
        return view, (f"the upload of {key} holds {size} bytes of sha256 {digest}, not the declared "
                      f"{entry.size} bytes of sha256 {entry.sha256}: removed")
    if path != store.complete(key):
        os.replace(path, store.complete(key))
    entry.state = COMPLETE
    audit.record(session, caller, "binary_cache.upload", key, detail=f"{entry.release_url} sha256 {digest} "
                 f"{size} bytes")
    return _view(entry), None


def _remove_stale(session: Session, store: Store, now: float, keep: str) -> None:
    stale = session.scalars(select(BinaryCacheEntry).where(
        BinaryCacheEntry.state == UPLOADING, BinaryCacheEntry.created_at < now - STALE_AFTER,
        BinaryCacheEntry.key != keep))
    for entry in stale:
        store.upload(entry.key).unlink(missing_ok=True)
        session.delete(entry)


def check_removal(key: str | None, uploader: str | None) -> None:
    """A removal names one key or one uploader, not both (400 otherwise)."""
    if (key is None) == (uploader is None):
        raise ValidationError("name either a key or an uploader (a computer) to remove from the binary cache")
    if key is not None:
        check_key(key)
    elif not uploader:
        raise ValidationError("the uploader must be a computer id")


def list_entries(session: Session, caller: Caller, uploader: str | None = None,
                 release_url: str | None = None) -> list[EntryView]:
    """Every entry (complete or uploading), newest first, of `uploader` and `release_url` when
    given (admin only)."""
    access.require_admin(caller, "list the binary cache")
    query = select(BinaryCacheEntry).order_by(BinaryCacheEntry.created_at.desc(), BinaryCacheEntry.id.desc())
    if uploader is not None:
        query = query.where(BinaryCacheEntry.uploader == uploader)
    if release_url is not None:
        query = query.where(BinaryCacheEntry.release_url == release_url)
    return [_view(e) for e in session.scalars(query)]


def remove(session: Session, caller: Caller, store: Store | None, key: str | None = None,
           uploader: str | None = None) -> list[EntryView]:
    """Remove the entry `key` (404 NOT_CACHED if there is none) or every entry `uploader`
    uploaded (maybe none), complete or uploading, with their files (admin only); what was removed.
    `store` None: this master keeps no cache (404)."""
    access.require_admin(caller, "remove entries of the binary cache")
    check_removal(key, uploader)
    if store is None:
        raise NotCached("this master keeps no binary cache")
    query = select(BinaryCacheEntry).order_by(BinaryCacheEntry.created_at.desc(), BinaryCacheEntry.id.desc())
    query = query.where(BinaryCacheEntry.key == key if key is not None else BinaryCacheEntry.uploader == uploader)
    entries = list(session.scalars(query.with_for_update()))
    if key is not None and not entries:
        raise NotCached(f"the binary cache has no {key}")
    removed = []
    for entry in entries:
        removed.append(_view(entry))
        session.delete(entry)
        store.upload(entry.key).unlink(missing_ok=True)
        store.complete(entry.key).unlink(missing_ok=True)
        audit.record(session, caller, "binary_cache.remove", entry.key,
                     detail=f"{entry.release_url} uploaded by {entry.uploader} ({entry.state}, {entry.size} bytes)")
    session.flush()
    return removed


def set_builder(session: Session, caller: Caller, reference: str, builder: bool) -> bool:
    """Mark the computer as a builder or not (admin only: its uploads run on every node)."""
    access.require_admin(caller, "choose which computers fill the binary cache")
    computer = get_computer(session, reference)
    if computer.builder != builder:
        computer.builder = builder
        audit.record(session, caller, "computer.builder", reference, detail="set" if builder else "unset")
    return builder


# -- files ---------------------------------------------------------------------------------------

class _open:  # noqa: N801 - a context manager named like the call it wraps
    """A file of the cache's own directory, never through a link."""

    def __init__(self, path: Path, flags: int) -> None:
        self.fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)


def _digest(fd: int) -> tuple[int, str]:
    digest, size, offset = hashlib.sha256(), 0, 0
    while True:
        block = os.pread(fd, 1024 * 1024, offset)
        if not block:
            return size, digest.hexdigest()
        digest.update(block)
        size += len(block)
        offset += len(block)
