"""slap.fileio: the one atomic write, which never writes through a link."""
from __future__ import annotations

import errno
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


def test_walk_follows_our_links_and_refuses_planted_ones(tmp_path: Path):
    """Issue 9: a link above the file is followed only when the caller or root made it, in a
    directory nobody else may write (a partition's ``.slapgrid`` swapped for a link is refused)."""
    from partita.slap.fileio import open_beneath, open_regular

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("ours")
    (tmp_path / "ours").symlink_to(tmp_path / "real")
    fd = open_regular(tmp_path / "ours" / "f")  # a link of ours, in a directory of ours
    os.close(fd)
    open_to_all = tmp_path / "shared"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    (open_to_all / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError) as refused:
        open_beneath(open_to_all / "link" / "f", os.O_RDONLY)
    assert refused.value.errno == errno.ELOOP
    os.mkfifo(tmp_path / "real" / "fifo")
    os.link(tmp_path / "real" / "f", tmp_path / "real" / "hard")
    for name in ("fifo", "hard"):  # never blocks on a FIFO, never reads a hard link to another file
        with pytest.raises(OSError) as refused:
            open_regular(tmp_path / "real" / name)
        assert refused.value.errno == errno.EINVAL


@pytest.mark.root
def test_walk_refuses_a_link_a_partition_user_planted(tmp_path: Path):
    from partita.slap.fileio import open_beneath

    tmp_path.chmod(0o755)
    partition = tmp_path / "partition"
    partition.mkdir()
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "f").write_text("root's")
    os.symlink(tmp_path / "victim", partition / ".slapgrid")
    os.chown(partition / ".slapgrid", 65534, 65534, follow_symlinks=False)  # the user's link
    with pytest.raises(OSError) as refused:
        open_beneath(partition / ".slapgrid" / "f", os.O_RDONLY)
    assert refused.value.errno == errno.ELOOP
    os.unlink(partition / ".slapgrid")
    os.symlink(tmp_path / "victim", partition / ".slapgrid")  # root's link, in the user's directory
    os.chown(partition, 65534, 65534)
    with pytest.raises(OSError):
        open_beneath(partition / ".slapgrid" / "f", os.O_RDONLY)
