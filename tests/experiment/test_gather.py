"""`experiment.gather.extract`: what a host's tar stream may write locally."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

from partita.experiment.gather import extract


def tar(*members: tuple[str, bytes | None, str | None]) -> bytes:
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as archive:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                archive.addfile(info)
            else:
                info.size = len(content or b"")
                archive.addfile(info, io.BytesIO(content or b""))
    return stream.getvalue()


def test_only_regular_files_with_relative_names_and_no_key(tmp_path: Path) -> None:
    stream = tar(("node/slapos.cfg", b"[slapos]\n", None), ("../escape", b"x", None), ("/etc/evil", b"x", None),
                 ("node/link", None, "/etc/shadow"), ("node/ssl/node.key", b"KEY", None),
                 ("node/other.key", b"KEY", None), ("master/pki/ca.crt", b"CA", None))
    written = extract(stream, tmp_path / "h1")
    assert written == ["node/slapos.cfg"]
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file()) == [
        "h1/node/slapos.cfg"]
