"""The parameter schemas of software releases, as the master reads them to check requests.

A request's parameters are checked against the schema its release declares for its software
type (``software.cfg.json``, `slap.release_schema`) before anything is stored: a mismatch is a
400 INVALID naming the field, on both protocols. The descriptor is read outside every
transaction, when a release is first requested, by `prepare` (the adapters call it before their
write transaction), and kept per URL in this process (`CACHE`): found for `FOUND_TTL` seconds,
absent or unusable for `MISSING_TTL`. Inside the transaction `check` only looks in the cache.

What the master reads (users choose release URLs, so reading them is an SSRF risk)::

    URL of the release                       read?
    local path or file: URL                  yes: URL + ".json" on the master's machine, then the
                                             schemas it names beside it
    http(s)                                  only when a computer's owner or an admin supplied it
                                             to one of their computers, or an admin published it
                                             under a name (`master.services.software_names`);
                                             within FETCH_TIMEOUT seconds and MAX_BYTES
    anything else                            no

A release the master does not or cannot read is not checked (the node's
``partita:slapconfiguration`` still checks on the partition). Schema references never leave the
descriptor's origin (`slap.release_schema.relative_location`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from partita.master.db.models import Computer, Owner, SoftwareName, Supply
from partita.master.services import software_names
from partita.slap import release_schema
from partita.slap.errors import ValidationError
from partita.slap.release_schema import Descriptor
from partita.slap.software_descriptor import DescriptorProblem
from partita.slap.states import SupplyState

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 3.0
FOUND_TTL = 300.0
MISSING_TTL = 30.0
MAX_ENTRIES = 512


@dataclass(frozen=True)
class Entry:
    descriptor: Descriptor | None
    reason: str
    expires: float


class SchemaCache:
    """Descriptors per release URL, with an expiry; thread-safe, bounded."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def get(self, url: str, now: float | None = None) -> Entry | None:
        with self._lock:
            entry = self._entries.get(url)
        if entry is None or entry.expires < (time.time() if now is None else now):
            return None
        return entry

    def put(self, url: str, descriptor: Descriptor | None, reason: str = "", ttl: float = FOUND_TTL) -> Entry:
        entry = Entry(descriptor, reason, time.time() + ttl)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES and url not in self._entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[url] = entry
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = SchemaCache()


def kind_of(url: str) -> str:
    """``local``, ``remote`` (http/https) or ``other`` (a scheme the master never reads)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return "remote"
    if not scheme or scheme == "file" or len(scheme) == 1:
        return "local"
    return "other"


def trusted_remote(session: Session, url: str) -> bool:
    """Whether the master may fetch `url`: supplied to a computer by its owner or by an admin,
    or published under a name (only admins publish)."""
    if session.scalar(select(SoftwareName.id).where(SoftwareName.url == url).limit(1)) is not None:
        return True
    supplier = aliased(Owner)
    found = session.scalar(
        select(Supply.id).join(Computer, Computer.id == Supply.computer_id)
        .join(supplier, supplier.id == Supply.owner_id)
        .where(Supply.url == url, Supply.requested_state == SupplyState.AVAILABLE.value,
               or_(Supply.owner_id == Computer.owner_id, supplier.admin.is_(True)))
        .limit(1))
    return found is not None


def load_now(url: str, timeout: float = FETCH_TIMEOUT) -> Entry:
    """Read the descriptor of `url` now (IO) and cache what was found."""
    try:
        descriptor = release_schema.load_descriptor(url, timeout)
    except DescriptorProblem as problem:
        log.warning("not checking requests of %s: its descriptor cannot be used: %s", url, problem)
        return CACHE.put(url, None, f"descriptor unusable: {problem}", MISSING_TTL)
    if descriptor is None:
        return CACHE.put(url, None, "no descriptor", MISSING_TTL)
    return CACHE.put(url, descriptor)


_loading: dict[str, threading.Thread] = {}
_loading_lock = threading.Lock()


def load(url: str, timeout: float = FETCH_TIMEOUT) -> Entry | None:
    """`load_now` in a thread of its own, waited for at most about `timeout` seconds (a name
    lookup is not bounded by the HTTP timeouts); one read per URL at a time. None when it is
    still going: that request is not checked, the next ones are once it has finished."""
    with _loading_lock:
        thread = _loading.get(url)
        if thread is None:
            thread = threading.Thread(target=_load_then_forget, args=(url, timeout), daemon=True,
                                      name="release-schema")
            _loading[url] = thread
            thread.start()
    thread.join(timeout + 0.5)
    return CACHE.get(url)


def _load_then_forget(url: str, timeout: float) -> None:
    try:
        load_now(url, timeout)
    except Exception:  # a thread's failure must not pass silently; the request goes unchecked
        log.exception("reading the descriptor of %s failed", url)
    finally:
        with _loading_lock:
            _loading.pop(url, None)


def prepare(database: Any, url: str) -> Entry | None:
    """Make sure the descriptor of `url` is in the cache if the master may read it (see the
    module doc). Called outside any transaction: a fetch takes up to FETCH_TIMEOUT seconds."""
    if software_names.is_short_name(url):
        try:
            with database.read() as session:
                url = software_names.resolve(session, url)
        except ValidationError:
            return None  # the request itself answers the unknown name
    cached = CACHE.get(url)
    if cached is not None:
        return cached
    kind = kind_of(url)
    if kind == "other":
        return None
    if kind == "local":
        return load_now(url)  # a local file: no name lookup, no thread
    with database.read() as session:
        if not trusted_remote(session, url):
            return None  # not cached: a later supply by an admin makes it readable
    return load(url)


def check(url: str, software_type: str, parameters: dict[str, Any], shared: bool = False) -> None:
    """Refuse (ParameterMismatch, 400 INVALID) parameters that do not match the schema of the
    cached descriptor of `url`; a release not in the cache, or without a schema for the type, is
    not checked. Pure but for the cache lookup."""
    entry = CACHE.get(url)
    if entry is None or entry.descriptor is None:
        return
    try:
        release_schema.check_parameters(entry.descriptor, software_type, parameters, shared)
    except release_schema.SchemaProblem as problem:
        log.warning("not checking a request of %s: %s", url, problem)
