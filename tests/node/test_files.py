"""Writing into partition directories without following what their user planted (node.files)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.errors import NodeError
from node.files import node_directory, write_file


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
    with pytest.raises(NodeError, match="cannot open"):
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
