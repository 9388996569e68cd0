"""Writing into partition directories without following what their user planted (node.files)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from partita.node.errors import NodeError
from partita.node.files import node_directory, read_user_file, remove_file, write_file


def test_write_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    partition = tmp_path / "partition"
    partition.mkdir()
    (partition / ".timestamp").symlink_to(victim)
    write_file(partition, ".timestamp", "12.5")
    assert victim.read_text() == "precious"
    assert not (partition / ".timestamp").is_symlink()
    assert (partition / ".timestamp").read_text() == "12.5"


def test_write_refuses_a_symlinked_directory(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(NodeError, match="cannot write .*link"):
        write_file(tmp_path / "link", "f", "x")
    assert not (tmp_path / "real" / "f").exists()


def test_write_sets_mode_and_leaves_no_temporary(tmp_path: Path):
    write_file(tmp_path, "f", b"data", mode=0o640)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_node_directory_replaces_a_symlink(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".slapgrid").symlink_to(elsewhere)
    node_directory(tmp_path / ".slapgrid", group=None)
    assert (tmp_path / ".slapgrid").is_dir() and not (tmp_path / ".slapgrid").is_symlink()
    assert elsewhere.exists()


def test_read_user_file_reads_a_regular_file_and_nothing_else(tmp_path: Path):
    partition = tmp_path / "partition"
    partition.mkdir()
    (partition / "titles").write_text("a\nb\n")
    assert read_user_file(partition, "titles", 100) == "a\nb\n"
    assert read_user_file(partition, "titles", 2) == "a\n"          # at most `limit` bytes
    assert read_user_file(partition, "missing", 100) is None
    secret = tmp_path / "secret"
    secret.write_text("root only")
    (partition / "link").symlink_to(secret)
    assert read_user_file(partition, "link", 100) is None             # a planted link is not followed
    os.mkfifo(partition / "fifo")
    assert read_user_file(partition, "fifo", 100) is None             # nor does a FIFO block the node
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "titles").write_text("x")
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    assert read_user_file(tmp_path / "linked", "titles", 100) is None


def test_remove_file_removes_a_link_not_its_target(tmp_path: Path):
    target = tmp_path / "target"
    target.write_text("kept")
    partition = tmp_path / "partition"
    partition.mkdir()
    (partition / "name").symlink_to(target)
    remove_file(partition, "name")
    assert not (partition / "name").is_symlink() and target.read_text() == "kept"
    remove_file(partition, "name")                                    # already gone: nothing to do


def test_read_text_refuses_links_fifos_and_hard_links(tmp_path: Path):
    """Issue 9: what root reads in a partition (``.timestamp``, a service's log tail, verdicts)."""
    from partita.node.files import read_text

    (tmp_path / "secret").write_text("root's")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "fifo")
    os.link(tmp_path / "secret", tmp_path / "hard")
    for name in ("link", "fifo", "hard", "missing"):
        assert read_text(tmp_path / name) is None, name
    (tmp_path / "plain").write_text("12.5")
    assert read_text(tmp_path / "plain") == "12.5"


@pytest.mark.root
def test_node_directory_never_chowns_through_a_users_directory(tmp_path: Path):
    """Issue 9: a partition user's directory or link where the node's belongs is replaced, and
    nothing outside is chowned or chmodded."""
    tmp_path.chmod(0o755)
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    partition = tmp_path / "partition"
    partition.mkdir()
    (partition / ".slapgrid").symlink_to(victim)
    os.chown(partition / ".slapgrid", 65534, 65534, follow_symlinks=False)  # the user's link
    with pytest.raises(NodeError):  # a link above the directory to make: refused
        node_directory(partition / ".slapgrid" / "log", group=65534)
    node_directory(partition / ".slapgrid", group=65534)
    info = (partition / ".slapgrid").lstat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, 65534, 0o750)
    assert victim.stat().st_mode & 0o777 == 0o700 and victim.stat().st_gid == 0
