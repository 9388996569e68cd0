"""``slapos binary-cache list|remove`` (issue 13): what they send, what they print (a table in 80
columns, JSON for scripts, one line per removed entry), and a refusal or an unknown key as one
line and exit status 1."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from partita.slap.cli.binary_cache_list import human_size, shorten_start
from tests.slap.test_cli_admin import FakeMaster, cfg, fake, run  # noqa: F401

KEY = "0123456789abcdef0123456789abcdef-debian-12-x86_64-3f2a9c0d1e4b"
URL = "https://git.example.org/partita/software-releases/raw/main/theia/software.cfg"


def entry(state: str = "complete", minutes: int = 5, uploader: str = "COMP-1234") -> dict:
    created = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    return {"key": KEY, "software_release_uri": URL, "platform": "debian-12-x86_64-3f2a9c0d1e4b",
            "sha256": "a" * 64, "size": 734003200, "uploader": uploader, "state": state,
            "created_at": created.isoformat(timespec="seconds")}


def test_list_is_a_table_in_80_columns_newest_first(fake: FakeMaster, cfg: str,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    fake.answers["slapos.allDocs.v0.binary_cache_entry_list"] = (200, {"result_list": [
        entry("uploading", 2, "COMP-77"), entry("complete", 3 * 24 * 60)]})
    result = run(cfg, "binary-cache", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    assert lines[0].split() == ["key", "release", "platform", "size", "uploader", "age"]
    assert lines[2].split()[-2:] == ["COMP-77", "uploading"]
    assert lines[3].split()[1:] == ["…theia/software.cfg", "debian-12…", "700", "MiB", "COMP-1234", "3", "d"]
    assert lines[3].split()[0] == KEY[:8] + "…"
    assert fake.calls[-1] == ("slapos.allDocs.v0.binary_cache_entry_list", {})


def test_list_filters_and_json(fake: FakeMaster, cfg: str) -> None:  # noqa: F811
    fake.answers["slapos.allDocs.v0.binary_cache_entry_list"] = (200, {"result_list": [entry()]})
    result = run(cfg, "binary-cache", "list", "--uploader", "COMP-1234", "--software", URL, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["key"] == KEY
    assert fake.calls[-1] == ("slapos.allDocs.v0.binary_cache_entry_list",
                              {"uploader": "COMP-1234", "software_release_uri": URL})
    fake.answers["slapos.allDocs.v0.binary_cache_entry_list"] = (200, {"result_list": []})
    assert run(cfg, "binary-cache", "list").stdout == "The binary cache is empty.\n"
    assert run(cfg, "binary-cache", "list", "--uploader", "COMP-9").stdout == "No entries.\n"


def test_remove_a_key_or_an_uploaders_entries(fake: FakeMaster, cfg: str) -> None:  # noqa: F811
    fake.answers["slapos.remove.v0.binary_cache_entry"] = (200, {
        "type": "success", "title": "Removed 1 entry of the binary cache", "result_list": [entry()]})
    result = run(cfg, "binary-cache", "remove", KEY)
    assert (result.exit_code, result.stdout) == (0, f"removed {KEY} ({URL}, uploaded by COMP-1234)\n")
    assert fake.calls[-1] == ("slapos.remove.v0.binary_cache_entry", {"key": KEY})
    fake.answers["slapos.remove.v0.binary_cache_entry"] = (200, {
        "type": "success", "title": "Removed 2 entries of the binary cache",
        "result_list": [entry("uploading"), entry()]})
    result = run(cfg, "binary-cache", "remove", "--uploader", "COMP-1234")
    assert result.exit_code == 0 and result.stdout.splitlines() == [
        f"removed {KEY} ({URL}, uploaded by COMP-1234, uploading)", f"removed {KEY} ({URL}, uploaded by COMP-1234)"]
    assert fake.calls[-1] == ("slapos.remove.v0.binary_cache_entry", {"uploader": "COMP-1234"})
    fake.answers["slapos.remove.v0.binary_cache_entry"] = (200, {"type": "success", "title": "Removed 0 entries",
                                                                 "result_list": []})
    result = run(cfg, "binary-cache", "remove", "--uploader", "COMP-9")
    assert (result.exit_code, result.stdout) == (0, "COMP-9 uploaded nothing to the binary cache: nothing removed\n")


@pytest.mark.parametrize("status, code, title", [
    (404, "NOT_CACHED", f"the binary cache has no {KEY}"),
    (403, "FORBIDDEN", "only an admin may remove entries of the binary cache"),
])
def test_an_unknown_key_or_a_refusal_is_one_line(fake: FakeMaster, cfg: str,  # noqa: F811
                                                  status: int, code: str, title: str) -> None:
    fake.answers["slapos.remove.v0.binary_cache_entry"] = (status, {
        "status": status, "type": "Error", "code": code, "title": title})
    result = run(cfg, "binary-cache", "remove", KEY)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.strip().splitlines() == [f"slapos: error: {title}"], result.stderr


def test_remove_needs_a_key_or_an_uploader(fake: FakeMaster, cfg: str) -> None:  # noqa: F811
    for args in ((), (KEY, "--uploader", "COMP-1")):
        result = run(cfg, "binary-cache", "remove", *args)
        assert result.exit_code == 64 and "either a KEY or --uploader" in result.stderr
    assert fake.calls == []


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 512, 1536, 734003200, 3 * 1024 ** 3)] == [
        "0 B", "512 B", "1.5 KiB", "700 MiB", "3.0 GiB"]
    assert human_size(None) == "None"


def test_shorten_start() -> None:
    assert shorten_start("/srv/hello/software.cfg", 30) == "/srv/hello/software.cfg"
    assert shorten_start("/srv/hello/software.cfg", 19) == "…hello/software.cfg"
    assert shorten_start("abc", 1) == "c"
