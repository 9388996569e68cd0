"""What docs/master.md "Binary cache" tells an admin to do, against a real master with
certificates: a builder uploads, ``slapos binary-cache list`` shows it; once the builder is no
longer trusted, ``slapos computer builder unset`` and ``slapos binary-cache remove --uploader``
drop its entries and their files; a user who is not an admin is refused with one line."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from partita.slap.client import connect
from tests.slap.test_admin_commands import Admin, admin, client_cfg, error_line, ok, slapos  # noqa: F401
from tests.support.secure_master import enrol

URL = "https://git.example.org/releases/hello/software.cfg"
PLATFORM = "debian-12-x86_64-0123456789ab"
KEY = hashlib.md5(URL.encode()).hexdigest() + "-" + PLATFORM


def test_an_admin_lists_and_removes_what_an_untrusted_builder_uploaded(admin: Admin) -> None:  # noqa: F811
    token = ok(slapos(admin.cfg, "computer", "token", "create")).stdout.strip()
    node = enrol(admin.master, token, admin.directory / "builder", "computer")
    ok(slapos(admin.cfg, "supply", URL, node.name))
    ok(slapos(admin.cfg, "computer", "builder", "set", node.name))
    data = b"built software" * 100
    with connect(admin.master.url, key_file=str(node.key_file), cert_file=str(node.cert_file),
                 ca_file=str(admin.master.ca_file)) as builder:
        builder.begin_binary_cache_upload(KEY, URL, PLATFORM, len(data), hashlib.sha256(data).hexdigest())
        builder.put_binary_cache_chunk(KEY, 0, data)
        builder.commit_binary_cache_upload(KEY)
    cache = admin.master.config_path.parent / "binary-cache"
    assert (cache / f"{KEY}.tar").read_bytes() == data

    listed = json.loads(ok(slapos(admin.cfg, "binary-cache", "list", "--format", "json")).stdout)
    assert [(e["key"], e["uploader"], e["state"]) for e in listed] == [(KEY, node.name, "complete")]
    table = ok(slapos(admin.cfg, "binary-cache", "list", "--uploader", node.name)).stdout.splitlines()
    assert table[0].split() == ["key", "release", "platform", "size", "uploader", "age"]
    assert table[2].split()[3:6] == ["1.4", "KiB", node.name], table

    carol = enrol(admin.master, ok(slapos(admin.cfg, "user", "create", "carol")).stdout.strip(),
                  admin.directory / "carol", "carol")
    carol_cfg = client_cfg(admin.directory / "carol.cfg", admin.master, who=carol)
    assert error_line(slapos(carol_cfg, "binary-cache", "list")) == "only an admin may list the binary cache"
    assert "only an admin" in error_line(slapos(carol_cfg, "binary-cache", "remove", "--uploader", node.name))

    ok(slapos(admin.cfg, "computer", "builder", "unset", node.name))
    removed = ok(slapos(admin.cfg, "binary-cache", "remove", "--uploader", node.name)).stdout
    assert removed == f"removed {KEY} ({URL}, uploaded by {node.name})\n"
    assert ok(slapos(admin.cfg, "binary-cache", "list")).stdout == "The binary cache is empty.\n"
    assert sorted(p.name for p in cache.iterdir()) == []
    assert error_line(slapos(admin.cfg, "binary-cache", "remove", KEY)) == f"the binary cache has no {KEY}"
    assert error_line(slapos(admin.cfg, "binary-cache", "remove", "../etc")).startswith("'../etc' does not match")
