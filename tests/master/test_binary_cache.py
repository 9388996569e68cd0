"""The binary cache over the JSON API of an authenticated master (issue 13): only builders an admin
chose fill it, every node reads it, and no upload that is refused or wrong leaves anything; only an
admin lists and removes entries (one key, or all of a builder no longer trusted)."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path

import pytest

from partita.master.db.models import BinaryCacheEntry
from partita.master.services import binary_cache
from partita.master.services.identity import Caller
from partita.slap.errors import TooLarge, ValidationError
from tests.master.test_authentication import Identity, Realm, realm  # noqa: F401

URL = "http://example.invalid/hello/software.cfg"
KEY = hashlib.md5(URL.encode()).hexdigest() + "-debian-12-x86_64-0123456789ab"
MAX_ENTRY = 64 * 1024 * 1024
OTHER_PLATFORM = "debian-13-x86_64-0123456789ab"
OTHER_KEY = hashlib.md5(URL.encode()).hexdigest() + "-" + OTHER_PLATFORM


@pytest.fixture
def cache(realm: Realm, tmp_path: Path) -> Path:  # noqa: F811
    directory = tmp_path / "binary-cache"
    settings = realm.app.extensions["partita.settings"]
    realm.app.extensions["partita.settings"] = dataclasses.replace(
        settings, binary_cache_directory=str(directory), binary_cache_max_entry=MAX_ENTRY)
    return directory


def builder(realm: Realm) -> Identity:  # noqa: F811
    computer = realm.computer(supplied=False)
    realm.ok(realm.admin, "slapos.put.v0.compute_node_builder", {"computer_guid": computer.name, "builder": True})
    realm.ok(realm.admin, "slapos.post.v0.software_installation", {"computer_guid": computer.name,
                                                                   "software_release_uri": URL})
    return computer


def begin(realm: Realm, who: Identity, data: bytes, **extra: object):  # noqa: F811
    body = {"key": KEY, "software_release_uri": URL, "platform": "debian-12-x86_64-0123456789ab",
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **extra}
    return realm.call(who, "slapos.post.v0.binary_cache_upload", body)


def chunk(realm: Realm, who: Identity, offset: int, data: bytes, key: str = KEY):  # noqa: F811
    return realm.call(who, "slapos.put.v0.binary_cache_chunk",
                      {"key": key, "offset": offset, "data": base64.b64encode(data).decode()})


def upload(realm: Realm, who: Identity, data: bytes, size: int = 3) -> dict:  # noqa: F811
    assert begin(realm, who, data).status_code == 200
    for offset in range(0, len(data), size):
        assert chunk(realm, who, offset, data[offset:offset + size]).status_code == 200
    return realm.ok(who, "slapos.put.v0.binary_cache_commit", {"key": KEY})


def begin_other(realm: Realm, who: Identity, data: bytes) -> None:  # noqa: F811
    """Begin (and leave) an upload of the release for another platform."""
    assert begin(realm, who, data, key=OTHER_KEY, platform=OTHER_PLATFORM).status_code == 200


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_only_an_admin_makes_a_builder_and_computer_info_shows_it(realm: Realm, cache: Path) -> None:  # noqa: F811
    computer = realm.computer(supplied=False)
    for intruder in (computer, realm.user("alice")):
        refused = realm.call(intruder, "slapos.put.v0.compute_node_builder",
                             {"computer_guid": computer.name, "builder": True})
        assert refused.status_code == 403, refused.text
    assert realm.ok(realm.admin, "slapos.get.v0.compute_node", {"computer_guid": computer.name})["builder"] is False
    realm.ok(realm.admin, "slapos.put.v0.compute_node_builder", {"computer_guid": computer.name, "builder": True})
    assert realm.ok(computer, "slapos.get.v0.compute_node", {"computer_guid": computer.name})["builder"] is True
    events = realm.ok(realm.admin, "slapos.allDocs.v0.audit_event_list")["result_list"]
    assert any(e["action"] == "computer.builder" and e["target"] == computer.name for e in events)


def test_a_builder_uploads_in_chunks_and_every_node_reads_it(realm: Realm, cache: Path) -> None:  # noqa: F811
    first, other, node = builder(realm), builder(realm), realm.computer(supplied=False)
    missing = realm.call(node, "slapos.get.v0.binary_cache_entry", {"key": KEY})
    assert (missing.status_code, missing.get_json()["code"]) == (404, "NOT_CACHED")
    data = bytes(range(256)) * 3 + b"tail"
    entry = upload(realm, first, data, size=100)
    assert (entry["state"], entry["uploader"], entry["size"]) == ("complete", first.name, len(data))
    assert files(cache) == [f"{KEY}.tar"] and (cache / f"{KEY}.tar").read_bytes() == data
    again = begin(realm, other, data)
    assert (again.status_code, again.get_json()["code"]) == (409, "ALREADY_CACHED")
    found = realm.ok(node, "slapos.get.v0.binary_cache_entry", {"key": KEY})
    assert found["sha256"] == hashlib.sha256(data).hexdigest()
    read = b""
    while len(read) < len(data):
        answer = realm.ok(node, "slapos.get.v0.binary_cache_chunk", {"key": KEY, "offset": len(read), "length": 500})
        read += base64.b64decode(answer["data"])
    assert read == data
    user = realm.user("bob")
    assert realm.call(user, "slapos.get.v0.binary_cache_entry", {"key": KEY}).status_code == 403
    events = realm.ok(realm.admin, "slapos.allDocs.v0.audit_event_list")["result_list"]
    assert [e["actor"] for e in events if e["action"] == "binary_cache.upload"] == [f"computer:{first.name}"]


def test_a_non_builder_and_a_builders_partition_store_nothing(realm: Realm, cache: Path) -> None:  # noqa: F811
    node, trusted = realm.computer(), builder(realm)
    partition = realm.partition_identity(trusted, "slappart0")
    for intruder in (node, partition, realm.user("mallory"), realm.admin):
        refused = begin(realm, intruder, b"evil")
        assert (refused.status_code, refused.get_json()["code"]) == (403, "NOT_A_BUILDER"), refused.text
        assert chunk(realm, intruder, 0, b"evil").status_code == 403
        assert realm.call(intruder, "slapos.put.v0.binary_cache_commit", {"key": KEY}).status_code == 403
    assert realm.count(BinaryCacheEntry) == 0 and files(cache) == []


def test_a_builder_that_built_someone_elses_release_uploads_nothing(realm: Realm, cache: Path) -> None:  # noqa: F811
    """Any user may supply a release to any computer; built by the same software user, it could
    change the builder's other releases before their upload (issue 13)."""
    trusted = builder(realm)
    other = "http://example.invalid/other/software.cfg"
    unsupplied = begin(realm, trusted, b"x", software_release_uri=other,
                       key=hashlib.md5(other.encode()).hexdigest() + "-debian-12-x86_64-0123456789ab")
    assert (unsupplied.status_code, unsupplied.get_json()["code"]) == (403, "NOT_A_BUILDER")
    assert "not supplied" in unsupplied.get_json()["title"]
    mallory = realm.user("mallory")
    realm.ok(mallory, "slapos.post.v0.software_installation", {"computer_guid": trusted.name,
                                                               "software_release_uri": "http://evil.invalid/sr.cfg"})
    refused = begin(realm, trusted, b"x")
    assert (refused.status_code, refused.get_json()["code"]) == (403, "NOT_A_BUILDER")
    assert "supplied by mallory" in refused.get_json()["title"]
    assert realm.count(BinaryCacheEntry) == 0 and files(cache) == []


def test_a_wrong_digest_at_commit_leaves_nothing(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted = builder(realm)
    assert begin(realm, trusted, b"declared").status_code == 200
    assert chunk(realm, trusted, 0, b"declares").status_code == 200  # same size, other bytes
    wrong = realm.call(trusted, "slapos.put.v0.binary_cache_commit", {"key": KEY})
    assert (wrong.status_code, wrong.get_json()["code"]) == (400, "DIGEST_MISMATCH")
    assert realm.count(BinaryCacheEntry) == 0 and files(cache) == []
    assert realm.call(realm.computer(), "slapos.get.v0.binary_cache_entry", {"key": KEY}).status_code == 404


def test_chunks_past_the_declared_size_or_leaving_a_gap_are_refused(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted = builder(realm)
    assert begin(realm, trusted, b"12345678").status_code == 200
    past = chunk(realm, trusted, 0, b"123456789")
    assert (past.status_code, past.get_json()["code"]) == (400, "INVALID"), past.text
    assert chunk(realm, trusted, 4, b"5678").status_code == 400  # nothing held yet: a gap
    assert chunk(realm, trusted, 0, b"1234").status_code == 200
    assert chunk(realm, trusted, 0, b"1234").status_code == 200  # a retried chunk rewrites
    assert chunk(realm, trusted, 4, b"56789").status_code == 400
    assert (cache / f".upload-{KEY}").read_bytes() == b"1234"
    assert chunk(realm, trusted, 4, b"5678").status_code == 200
    assert realm.ok(trusted, "slapos.put.v0.binary_cache_commit", {"key": KEY})["state"] == "complete"


def test_bad_keys_and_oversized_entries(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted = builder(realm)
    for key in ("../../etc/passwd", KEY.upper(), "0" * 32 + "-debian-12-x86_64-0123456789ab", KEY + "/x"):
        refused = begin(realm, trusted, b"x", key=key)
        assert refused.status_code == 400, (key, refused.text)
    large = begin(realm, trusted, b"x", size=MAX_ENTRY + 1)
    assert (large.status_code, large.get_json()["code"]) == (413, "TOO_LARGE")
    assert realm.count(BinaryCacheEntry) == 0 and files(cache) == []


def test_an_upload_abandoned_for_an_hour_is_removed(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted, late = builder(realm), builder(realm)
    assert begin(realm, trusted, b"abandoned").status_code == 200
    busy = begin(realm, late, b"abandoned")
    assert (busy.status_code, busy.get_json()["code"]) == (409, "UPLOAD_IN_PROGRESS")
    with realm.db.write() as session:
        session.query(BinaryCacheEntry).update({"created_at": BinaryCacheEntry.created_at - 7200})
    assert upload(realm, late, b"abandoned")["uploader"] == late.name


def entry_list(realm: Realm, **body: str) -> list[dict]:  # noqa: F811
    return realm.ok(realm.admin, "slapos.allDocs.v0.binary_cache_entry_list", body)["result_list"]


def test_an_admin_lists_every_entry_newest_first(realm: Realm, cache: Path) -> None:  # noqa: F811
    first, second = builder(realm), builder(realm)
    assert entry_list(realm) == []
    upload(realm, first, b"complete")
    begin_other(realm, second, b"half")
    listed = entry_list(realm)
    assert [(e["key"], e["state"], e["uploader"]) for e in listed] == [
        (OTHER_KEY, "uploading", second.name), (KEY, "complete", first.name)]
    assert listed[1]["sha256"] == hashlib.sha256(b"complete").hexdigest() and listed[1]["size"] == 8
    assert listed[1]["software_release_uri"] == URL and listed[0]["platform"] == OTHER_PLATFORM
    assert listed[1]["created_at"].endswith("+00:00")
    assert [e["key"] for e in entry_list(realm, uploader=first.name)] == [KEY]
    assert [e["key"] for e in entry_list(realm, uploader=second.name, software_release_uri=URL)] == [OTHER_KEY]
    assert entry_list(realm, software_release_uri=URL + "x") == [] == entry_list(realm, uploader="COMP-NONE")


def test_only_an_admin_lists_or_removes_and_a_refusal_changes_nothing(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted = builder(realm)
    upload(realm, trusted, b"complete")
    intruders = (realm.user("alice"), realm.computer(), trusted, realm.partition_identity(trusted, "slappart0"))
    for intruder in intruders:
        for method, body in (("slapos.allDocs.v0.binary_cache_entry_list", {}),
                             ("slapos.remove.v0.binary_cache_entry", {"key": KEY}),
                             ("slapos.remove.v0.binary_cache_entry", {"uploader": trusted.name})):
            refused = realm.call(intruder, method, body)
            assert (refused.status_code, refused.get_json()["code"]) == (403, "FORBIDDEN"), (intruder, refused.text)
    assert realm.count(BinaryCacheEntry) == 1 and files(cache) == [f"{KEY}.tar"]
    events = realm.ok(realm.admin, "slapos.allDocs.v0.audit_event_list")["result_list"]
    assert not [e for e in events if e["action"] == "binary_cache.remove" and e["outcome"] == "ok"]


def test_an_admin_removes_an_entry_and_a_builder_may_upload_it_again(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted, node = builder(realm), realm.computer(supplied=False)
    upload(realm, trusted, b"first version")
    answer = realm.ok(realm.admin, "slapos.remove.v0.binary_cache_entry", {"key": KEY})
    assert [(e["key"], e["state"]) for e in answer["result_list"]] == [(KEY, "complete")]
    assert answer["title"] == "Removed 1 entry of the binary cache"
    assert realm.count(BinaryCacheEntry) == 0 and files(cache) == []
    gone = realm.call(node, "slapos.get.v0.binary_cache_entry", {"key": KEY})
    assert (gone.status_code, gone.get_json()["code"]) == (404, "NOT_CACHED")
    again = realm.call(realm.admin, "slapos.remove.v0.binary_cache_entry", {"key": KEY})
    assert (again.status_code, again.get_json()["code"]) == (404, "NOT_CACHED")
    events = realm.ok(realm.admin, "slapos.allDocs.v0.audit_event_list")["result_list"]
    removals = [e for e in events if e["action"] == "binary_cache.remove"]
    assert [(e["actor"], e["target"]) for e in removals] == [("user:admin", KEY)]
    assert URL in removals[0]["detail"] and trusted.name in removals[0]["detail"]
    assert upload(realm, trusted, b"second version")["state"] == "complete"
    assert (cache / f"{KEY}.tar").read_bytes() == b"second version"


def test_a_master_without_a_cache_refuses_before_it_says_so(realm: Realm) -> None:  # noqa: F811
    refused = realm.call(realm.user("alice"), "slapos.remove.v0.binary_cache_entry", {"key": KEY})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "FORBIDDEN")
    missing = realm.call(realm.admin, "slapos.remove.v0.binary_cache_entry", {"uploader": "COMP-1"})
    assert (missing.status_code, missing.get_json()["code"]) == (404, "NOT_CACHED")
    assert entry_list(realm) == []


def test_bad_removals_are_refused_and_change_nothing(realm: Realm, cache: Path) -> None:  # noqa: F811
    trusted = builder(realm)
    upload(realm, trusted, b"complete")
    for body in ({}, {"key": KEY, "uploader": trusted.name}, {"key": "../" + KEY}, {"key": KEY.upper()},
                 {"uploader": ""}, {"key": KEY, "extra": 1}, {"uploader": 7}):
        refused = realm.call(realm.admin, "slapos.remove.v0.binary_cache_entry", body)
        assert (refused.status_code, refused.get_json()["code"]) == (400, "INVALID"), (body, refused.text)
    for body in ({"uploader": ["x"]}, {"software_release_uri": None}, {"state": "complete"}):
        refused = realm.call(realm.admin, "slapos.allDocs.v0.binary_cache_entry_list", body)
        assert refused.status_code == 400, (body, refused.text)
    assert realm.count(BinaryCacheEntry) == 1 and files(cache) == [f"{KEY}.tar"]


def test_removing_a_builders_entries_takes_its_uploads_in_progress(realm: Realm, cache: Path) -> None:  # noqa: F811
    """What an admin does when a builder is found compromised (docs/master.md)."""
    bad, good = builder(realm), builder(realm)
    upload(realm, bad, b"complete")
    begin_other(realm, bad, b"half")
    assert chunk(realm, bad, 0, b"ha", OTHER_KEY).status_code == 200
    assert files(cache) == [f".upload-{OTHER_KEY}", f"{KEY}.tar"]
    answer = realm.ok(realm.admin, "slapos.remove.v0.binary_cache_entry", {"uploader": bad.name})
    assert sorted(e["key"] for e in answer["result_list"]) == sorted([KEY, OTHER_KEY])
    assert realm.count(BinaryCacheEntry) == 0 and files(cache) == []
    late = chunk(realm, bad, 2, b"lf", OTHER_KEY)
    assert late.status_code == 409 and files(cache) == []
    upload(realm, good, b"trusted")
    nothing = realm.ok(realm.admin, "slapos.remove.v0.binary_cache_entry", {"uploader": bad.name})
    assert (nothing["result_list"], nothing["title"]) == ([], "Removed 0 entries of the binary cache")
    assert [e["uploader"] for e in entry_list(realm)] == [good.name]


def test_a_download_of_a_removed_entry_stops_at_the_next_chunk(realm: Realm, cache: Path) -> None:  # noqa: F811
    """The node gets NOT_CACHED, never bytes of another file: it then builds the release itself
    (and checks the sha256 of what it received)."""
    trusted, node = builder(realm), realm.computer(supplied=False)
    data = b"0123456789" * 10
    upload(realm, trusted, data)
    store = binary_cache.Store(cache, MAX_ENTRY)
    reader = Caller(owner="admin", computer=node.name, role="computer")
    admin = Caller(owner="admin", role="user", admin=True)
    with realm.db.read() as session:
        assert binary_cache.read_chunk(session, reader, store, KEY, 0, 10) == data[:10]
    with realm.db.write() as session:
        assert [e.key for e in binary_cache.remove(session, admin, store, key=KEY)] == [KEY]
    with realm.db.read() as session, pytest.raises(binary_cache.NotCached):
        binary_cache.read_chunk(session, reader, store, KEY, 10, 10)
    upload(realm, trusted, data)
    (cache / f"{KEY}.tar").unlink()  # a removal whose transaction has not committed yet
    with realm.db.read() as session, pytest.raises(binary_cache.NotCached):
        binary_cache.read_chunk(session, reader, store, KEY, 10, 10)
    removed = realm.ok(realm.admin, "slapos.remove.v0.binary_cache_entry", {"key": KEY})  # the row alone
    assert [e["key"] for e in removed["result_list"]] == [KEY] and realm.count(BinaryCacheEntry) == 0


def test_rules() -> None:
    binary_cache.check_key(KEY, URL)
    with pytest.raises(ValidationError):
        binary_cache.check_key(KEY, URL + "x")
    with pytest.raises(TooLarge):
        binary_cache.check_upload(11, "a" * 64, 10)
    with pytest.raises(ValidationError):
        binary_cache.check_chunk(10, 0, 0, 11)
    binary_cache.check_chunk(10, 4, 2, 8)
    assert binary_cache.is_stale(0.0, 3601.0) and not binary_cache.is_stale(0.0, 60.0)
    binary_cache.check_removal(KEY, None)
    binary_cache.check_removal(None, "COMP-1")
    for key, uploader in ((None, None), (KEY, "COMP-1"), ("../x", None), (None, "")):
        with pytest.raises(ValidationError):
            binary_cache.check_removal(key, uploader)
    binary_cache.check_supplies("COMP-1", URL, [(URL, "ops"), ("other", "admin")], {"ops", "admin"})
    for supplied in ([("other", "ops")], [(URL, "ops"), ("evil", "mallory")]):
        with pytest.raises(binary_cache.NotABuilder):
            binary_cache.check_supplies("COMP-1", URL, supplied, {"ops", "admin"})
