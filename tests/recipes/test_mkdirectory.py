"""partita:mkdirectory, through real buildout runs."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, run_buildout


def write_profile(directory: Path, *lines: str, parts: str = "dirs") -> None:
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", f"parts = {parts}", "newest = false",
        "[dirs]", "recipe = partita:mkdirectory", *lines,
    ]) + "\n")


def test_creates_directories_with_their_parents_and_mode(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "data = ${buildout:directory}/srv/data", "log = var/log", "mode = 0700")
    check_ok(run_buildout(toolchain, tmp_path))
    for path in (tmp_path / "srv", tmp_path / "srv" / "data", tmp_path / "var" / "log"):
        assert path.is_dir()
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_data_survives_a_change_and_the_removal_of_the_part(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "data = srv/data")
    check_ok(run_buildout(toolchain, tmp_path))
    (tmp_path / "srv" / "data" / "kept.db").write_text("rows")
    write_profile(tmp_path, "data = srv/data", "other = srv/other", "mode = 0750")  # changed: reinstalled
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "srv" / "data" / "kept.db").read_text() == "rows"
    assert (tmp_path / "srv" / "other").is_dir()
    write_profile(tmp_path, "data = srv/data", parts="")  # removed: uninstalled
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "srv" / "data" / "kept.db").read_text() == "rows"
    assert (tmp_path / "srv" / "other").is_dir()


def test_a_directory_removed_by_hand_is_created_again(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "data = srv/data")
    check_ok(run_buildout(toolchain, tmp_path))
    (tmp_path / "srv" / "data").rmdir()
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "srv" / "data").is_dir()


@pytest.mark.parametrize(("lines", "expected"), [
    (["data = x", "mode = rwx"], "option 'mode' must be an octal mode"),
    (["data = file/inside"], "exists and is not a directory"),
])
def test_bad_input_is_one_line(toolchain: Toolchain, tmp_path: Path, lines: list[str], expected: str) -> None:
    (tmp_path / "file").write_text("")
    write_profile(tmp_path, *lines)
    check_fails(run_buildout(toolchain, tmp_path), "[dirs]", expected)
