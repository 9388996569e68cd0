"""partita:generate-password, through real buildout runs."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, run_buildout

TEMPLATE = "password = ${password:passwd}\n"


def write_profile(directory: Path, *lines: str) -> None:
    (directory / "use.in").write_text(TEMPLATE)
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", "parts = use", "newest = false",
        "[password]", "recipe = partita:generate-password", *lines,
        "[use]", "recipe = partita:template", "url = use.in", "output = use.txt", "mode = 0600",
    ]) + "\n")


def used_password(directory: Path) -> str:
    return (directory / "use.txt").read_text().removeprefix("password = ").strip()


def test_a_password_stable_across_runs_and_kept_out_of_installed_cfg(toolchain: Toolchain,
                                                                       tmp_path: Path) -> None:
    write_profile(tmp_path)
    check_ok(run_buildout(toolchain, tmp_path))
    password = used_password(tmp_path)
    assert len(password) == 24 and password.isalnum()
    stored = tmp_path / "parts" / "password" / "passwd"
    assert stored.read_text() == password + "\n"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    check_ok(run_buildout(toolchain, tmp_path))
    assert used_password(tmp_path) == password
    installed = (tmp_path / ".installed.cfg").read_text()
    assert "[password]" in installed  # the part is recorded...
    assert password not in installed  # ...without its secret


def test_storage_path_and_length_and_the_password_survives_a_change(toolchain: Toolchain,
                                                                   tmp_path: Path) -> None:
    write_profile(tmp_path, "storage-path = secrets/db", "length = 40")
    check_ok(run_buildout(toolchain, tmp_path))
    password = used_password(tmp_path)
    assert len(password) == 40
    assert (tmp_path / "secrets" / "db").read_text().strip() == password
    write_profile(tmp_path, "storage-path = secrets/db", "bytes = 12")  # a changed part is reinstalled
    check_ok(run_buildout(toolchain, tmp_path))
    assert used_password(tmp_path) == password
    (tmp_path / "secrets" / "db").unlink()  # a lost file: a new password
    check_ok(run_buildout(toolchain, tmp_path))
    assert len(used_password(tmp_path)) == 12
    assert used_password(tmp_path) != password


@pytest.mark.parametrize(("lines", "expected"), [
    (["length = 3"], "option 'length' must be a number of characters from 8"),
    (["length = 10", "bytes = 10"], "give one of the options 'length' and 'bytes'"),
])
def test_bad_options_are_one_line(toolchain: Toolchain, tmp_path: Path, lines: list[str], expected: str) -> None:
    write_profile(tmp_path, *lines)
    check_fails(run_buildout(toolchain, tmp_path), "[password]", expected)
    assert not (tmp_path / "parts" / "password").exists()


def test_buildout_references_and_jinja2_context_read_it(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "buildout.cfg").write_text("\n".join([
        "[buildout]", "parts = inline jinja", "newest = false",
        "[password]", "recipe = partita:generate-password",
        "[inline]", "recipe = partita:template", "inline = ${password:passwd}", "output = inline.txt",
        "[jinja]", "recipe = partita:jinja2", "inline = {{ password }}", "output = jinja.txt",
        "context = key password password:passwd",
    ]) + "\n")
    check_ok(run_buildout(toolchain, tmp_path))
    password = (tmp_path / "parts" / "password" / "passwd").read_text().strip()
    assert (tmp_path / "inline.txt").read_text() == (tmp_path / "jinja.txt").read_text() == password
    installed = (tmp_path / ".installed.cfg").read_text()
    assert installed.count(password) == 1  # the inline option records it; the context and the part do not
