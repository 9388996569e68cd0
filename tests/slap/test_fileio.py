"""slap.fileio: the one atomic write, which never writes through a link."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from partita.slap.fileio import atomic_write, open_directory, write_at


def test_replaces_a_file_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    atomic_write(target, "new", mode=0o640)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # no temporary left


def test_replaces_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").symlink_to(victim)
    atomic_write(tmp_path / "d" / "f", "written")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "d" / "f").is_symlink()
    assert (tmp_path / "d" / "f").read_text() == "written"


def test_refuses_a_directory_that_is_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "link" / "f", "x")
    assert list((tmp_path / "real").iterdir()) == []


def test_refuses_names_that_are_not_plain(tmp_path: Path) -> None:
    with open_directory(tmp_path) as fd:
        for name in ("", ".", "..", "a/b"):
            with pytest.raises(ValueError):
                write_at(fd, name, "x")


def test_a_failed_write_leaves_neither_target_nor_temporary(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "f", "x")
    assert list(tmp_path.iterdir()) == []
