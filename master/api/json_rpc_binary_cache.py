"""JSON API methods of the binary cache (Partita's extension, `master.services.binary_cache`).

Chunks travel as base64 in the JSON body (at most ``CHUNK_MAX`` raw bytes, well under the
front's body limit). Each method runs one service transaction; no business rule lives here.
"""
from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from partita.master.api import context
from partita.master.services import binary_cache
from partita.master.services.binary_cache import DigestMismatch, EntryView, NotCached, Store
from partita.slap.errors import DecodeError


def _store() -> Store | None:
    settings = context.settings()
    if settings.binary_cache_directory is None:
        return None
    return Store(Path(settings.binary_cache_directory), settings.binary_cache_max_entry)


def _required_store() -> Store:
    store = _store()
    if store is None:
        raise binary_cache.NotABuilder("this master keeps no binary cache")
    return store


def _document(entry: EntryView) -> dict[str, Any]:
    created = datetime.datetime.fromtimestamp(entry.created_at, datetime.timezone.utc)
    return {"key": entry.key, "software_release_uri": entry.release_url, "platform": entry.platform,
            "sha256": entry.sha256, "size": entry.size, "uploader": entry.uploader, "state": entry.state,
            "created_at": created.isoformat(timespec="seconds")}


def binary_cache_entry_list(body: dict[str, Any]) -> dict[str, Any]:
    """Every entry, newest first, filtered by uploader and release (admin only)."""
    caller = context.caller()
    with context.database().read() as session:
        entries = binary_cache.list_entries(session, caller, body.get("uploader"), body.get("software_release_uri"))
        return {"result_list": [_document(entry) for entry in entries]}


def remove_binary_cache_entry(body: dict[str, Any]) -> dict[str, Any]:
    """Remove one entry by key, or every entry of an uploader (admin only)."""
    caller, store = context.caller(), _store()
    removed = context.database().run_write(lambda session: binary_cache.remove(
        session, caller, store, body.get("key"), body.get("uploader")))
    count = f"{len(removed)} entry" if len(removed) == 1 else f"{len(removed)} entries"
    return {"type": "success", "title": f"Removed {count} of the binary cache",
            "result_list": [_document(entry) for entry in removed]}


def get_binary_cache_entry(body: dict[str, Any]) -> dict[str, Any]:
    """The complete entry of a key (404 NOT_CACHED otherwise)."""
    caller = context.caller()
    if _store() is None:
        raise NotCached("this master keeps no binary cache")
    with context.database().read() as session:
        return _document(binary_cache.lookup(session, caller, body["key"]))


def get_binary_cache_chunk(body: dict[str, Any]) -> dict[str, Any]:
    caller, store = context.caller(), _store()
    if store is None:
        raise NotCached("this master keeps no binary cache")
    with context.database().read() as session:
        data = binary_cache.read_chunk(session, caller, store, body["key"], body["offset"], body["length"])
    return {"key": body["key"], "offset": body["offset"], "data": base64.b64encode(data).decode()}


def post_binary_cache_upload(body: dict[str, Any]) -> dict[str, Any]:
    """Begin (or begin again) the caller's upload of a key."""
    caller, store = context.caller(), _required_store()
    entry = context.database().run_write(lambda session: binary_cache.begin(
        session, caller, store, body["key"], body["software_release_uri"], body["platform"], body["size"],
        body["sha256"]))
    return {**_document(entry), "held": 0}


def put_binary_cache_chunk(body: dict[str, Any]) -> dict[str, Any]:
    caller, store = context.caller(), _required_store()
    try:
        data = base64.b64decode(body["data"], validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("data must be base64") from None
    held = context.database().run_write(lambda session: binary_cache.write_chunk(
        session, caller, store, body["key"], body["offset"], data))
    return {"key": body["key"], "held": held}


def put_binary_cache_commit(body: dict[str, Any]) -> dict[str, Any]:
    """Complete the upload if its size and sha256 are the declared ones (400 DIGEST_MISMATCH and
    the upload removed otherwise)."""
    caller, store = context.caller(), _required_store()
    entry, mismatch = context.database().run_write(lambda session: binary_cache.commit(
        session, caller, store, body["key"]))
    if mismatch is not None:
        raise DigestMismatch(mismatch)
    return _document(entry)


def put_compute_node_builder(body: dict[str, Any]) -> dict[str, Any]:
    """Mark a computer as a builder of the binary cache, or not (admin only)."""
    caller, reference = context.caller(), body["computer_guid"]
    builder = context.database().run_write(lambda session: binary_cache.set_builder(
        session, caller, reference, body["builder"]))
    return {"type": "success", "title": f"Builder flag of {reference} set", "computer_guid": reference,
            "builder": builder}


METHODS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "slapos.get.v0.binary_cache_entry": get_binary_cache_entry,
    "slapos.get.v0.binary_cache_chunk": get_binary_cache_chunk,
    "slapos.post.v0.binary_cache_upload": post_binary_cache_upload,
    "slapos.put.v0.binary_cache_chunk": put_binary_cache_chunk,
    "slapos.put.v0.binary_cache_commit": put_binary_cache_commit,
    "slapos.put.v0.compute_node_builder": put_compute_node_builder,
    "slapos.allDocs.v0.binary_cache_entry_list": binary_cache_entry_list,
    "slapos.remove.v0.binary_cache_entry": remove_binary_cache_entry,
}
