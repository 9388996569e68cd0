"""The node's toolchain (`node.toolchain`): what goes in and its key (on fake source trees), the
real toolchain the tests share, and the removal of toolchains no longer used."""
from __future__ import annotations

import ast
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import partita.recipes
import partita.slap
from partita.node import toolchain as toolchains
from partita.node.locks import file_lock
from partita.node.toolchain import (
    MARKER,
    REQUIREMENTS,
    Source,
    Toolchain,
    collect_source,
    ensure_toolchain,
    installed_source,
    record_use,
    recorded_toolchains,
    remove_unused,
    toolchain_key,
)

PYTHON = "/usr/bin/python3.11"
ENTRY_POINTS = ["publish = partita.recipes.publish:Recipe"]


# -- what goes in, and the key -----------------------------------------------------------------

def fake_tree(root: Path) -> dict[str, Path]:
    """A small Partita: recipes importing part of slap, and a master nobody in it imports."""
    files = {
        "recipes/__init__.py": "",
        "recipes/common.py": "from partita.slap.client import connect\n",
        "recipes/publish.py": "from partita.recipes.common import connect\nfrom . import helpers\n",
        "recipes/helpers.py": "def helper():\n    from partita.slap import fileio\n    return fileio\n",
        "recipes/py.typed": "",
        "slap/__init__.py": "",
        "slap/client.py": "import requests\nfrom partita.slap.errors import Failed\n",
        "slap/errors.py": "class Failed(Exception):\n    pass\n",
        "slap/fileio.py": "import os\n",
        "slap/promise.py": "from partita.slap.wire.result import Result\n",
        "slap/wire/__init__.py": "",
        "slap/wire/result.py": "Result = dict\n",
        "slap/cli/__init__.py": "",
        "slap/cli/main.py": "import click\nfrom partita.slap.client import connect\n",
        "master/__init__.py": "",
        "master/app.py": "import flask\nfrom partita.slap.errors import Failed\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return {f"partita.{folder}": root / folder for folder in ("slap", "recipes", "master")}


def source_of(directories: dict[str, Path], version: str = "1.0") -> Source:
    return collect_source(directories, ENTRY_POINTS, version)


def test_the_source_is_the_recipes_and_what_they_import(tmp_path: Path) -> None:
    source = source_of(fake_tree(tmp_path))
    assert [name for name, _ in source.files] == [
        "partita/recipes/__init__.py", "partita/recipes/common.py", "partita/recipes/helpers.py",
        "partita/recipes/publish.py", "partita/recipes/py.typed",
        "partita/slap/__init__.py", "partita/slap/client.py", "partita/slap/errors.py", "partita/slap/fileio.py",
        "partita/slap/promise.py", "partita/slap/wire/__init__.py", "partita/slap/wire/result.py",
    ]
    assert source.packages == ["partita.recipes", "partita.slap", "partita.slap.wire"]


def test_the_key_follows_the_recipes_code_not_the_master(tmp_path: Path) -> None:
    directories = fake_tree(tmp_path)
    key = toolchain_key(source_of(directories), PYTHON)
    assert toolchain_key(source_of(directories), PYTHON) == key
    (tmp_path / "master/app.py").write_text("import flask  # a master-only change\n")
    (tmp_path / "slap/cli/main.py").write_text("import click  # the CLI is not in the toolchain\n")
    assert toolchain_key(source_of(directories), PYTHON) == key
    (tmp_path / "slap/errors.py").write_text("class Failed(RuntimeError):\n    pass\n")  # imported by a recipe
    changed = toolchain_key(source_of(directories), PYTHON)
    assert changed != key
    (tmp_path / "recipes/publish.py").write_text("from . import helpers  # a recipe changed\n")
    assert toolchain_key(source_of(directories), PYTHON) not in (key, changed)
    assert toolchain_key(source_of(directories), "/usr/bin/python3.12") != toolchain_key(source_of(directories), PYTHON)
    assert toolchain_key(source_of(directories, "2.0"), PYTHON) != toolchain_key(source_of(directories), PYTHON)


def test_a_checkout_and_an_installed_copy_give_the_same_toolchain(tmp_path: Path) -> None:
    """A wheel installs the same files elsewhere (site-packages/partita/…): same source, same key."""
    checkout = source_of(fake_tree(tmp_path / "checkout"))
    site = tmp_path / "site-packages" / "partita"
    shutil.copytree(tmp_path / "checkout", site)
    installed = source_of({f"partita.{folder}": site / folder for folder in ("slap", "recipes", "master")})
    assert [name for name, _ in installed.files] == [name for name, _ in checkout.files]
    assert toolchain_key(installed, PYTHON) == toolchain_key(checkout, PYTHON)


def test_the_running_installation_is_found_with_its_entry_points() -> None:
    source = installed_source()
    names = dict(source.files)
    assert Path(names["partita/recipes/publish.py"]) == Path(partita.recipes.__file__).parent / "publish.py"
    assert Path(names["partita/slap/promise.py"]) == Path(partita.slap.__file__).parent / "promise.py"
    assert "publish = partita.recipes.publish:Recipe" in source.entry_points
    assert not any(name.startswith(("partita/master/", "partita/node/", "partita/proxy/", "partita/slap/cli/"))
                   for name in names)


def test_every_library_the_copied_modules_import_is_a_requirement() -> None:
    """A recipe that starts importing a new library must add it to REQUIREMENTS."""
    provided = {"requests": "requests", "zc": "zc.buildout", "jinja2": "jinja2", "jsonschema": "jsonschema",
                "referencing": "jsonschema", "urllib3": "requests"}  # jsonschema's and requests' own dependencies
    wanted = {name.partition(">")[0].partition("=")[0] for name in REQUIREMENTS}
    imported: set[str] = set()
    for _, path in installed_source().files:
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"partita", "__future__"}
    assert third_party <= set(provided), f"not in the toolchain: {sorted(third_party - set(provided))}"
    assert {provided[name] for name in third_party} <= wanted


def test_an_existing_toolchain_is_reused_without_building(tmp_path: Path) -> None:
    source = source_of(fake_tree(tmp_path / "src"))
    root = tmp_path / "toolchains"
    directory = root / toolchain_key(source, PYTHON)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("built\n")
    os.utime(directory / MARKER, (1, 1))
    assert ensure_toolchain(root, PYTHON, source=source, for_other_users=False) == Toolchain(directory)
    assert (directory / MARKER).stat().st_mtime > time.time() - 60  # marked used now
    with pytest.raises(toolchains.SetupError, match="not an executable Python"):
        ensure_toolchain(tmp_path / "other", "/nonexistent/python", source=source, for_other_users=False)


def test_a_toolchain_other_users_cannot_reach_is_one_clear_line(tmp_path: Path) -> None:
    """The trap of a directory made by mktemp -d (0700): name the directory, do not build."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    with pytest.raises(toolchains.SetupError) as caught:
        ensure_toolchain(private / "toolchains", PYTHON, for_other_users=True)
    message = str(caught.value)
    assert "out of reach of the software and partition users" in message and "is mode 0700" in message
    assert "\n" not in message
    assert not (private / "toolchains").exists()


# -- the real toolchain ------------------------------------------------------------------------

def toolchain_python(toolchain: Toolchain, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(toolchain.python), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})


def test_the_toolchain_holds_buildout_and_the_recipes_only(toolchain: Toolchain, tmp_path: Path) -> None:
    done = toolchain_python(toolchain, "import zc.buildout, zc.recipe.egg, requests, partita.recipes.publish, "
                                       "partita.recipes.checks, partita.slap.promise", tmp_path)
    assert done.returncode == 0, done.stderr
    for absent in ("flask", "sqlalchemy", "psycopg", "gunicorn", "alembic", "click", "rich", "supervisor",
                   "partita.master", "partita.node", "partita.proxy"):
        done = toolchain_python(toolchain, f"import {absent}", tmp_path)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, absent
    assert toolchain.buildout.is_file()
    assert not (toolchain.directory / "bin" / "slapos").exists()


def test_its_entry_points_resolve_the_recipes(toolchain: Toolchain, tmp_path: Path) -> None:
    done = toolchain_python(toolchain, "from importlib.metadata import entry_points; "
                                       "[publish] = entry_points(group='zc.buildout', name='publish'); "
                                       "print(publish.value, publish.load().__module__)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["partita.recipes.publish:Recipe", "partita.recipes.publish"]


def test_it_holds_the_running_installation_s_files(toolchain: Toolchain, tmp_path: Path) -> None:
    done = toolchain_python(toolchain, "import partita.recipes.publish as m; print(m.__file__)", tmp_path)
    assert done.returncode == 0, done.stderr
    copied = Path(done.stdout.strip())
    assert copied.is_relative_to(toolchain.directory)
    assert copied.read_bytes() == (Path(partita.recipes.__file__).parent / "publish.py").read_bytes()
    assert toolchain.key == toolchain_key(installed_source(), PYTHON)


# -- which toolchains are in use, and removing the others ---------------------------------------

def fake_toolchain(root: Path, key: str, *, age: float = 3 * 86400, complete: bool = True) -> Path:
    directory = root / key
    (directory / "bin").mkdir(parents=True)
    if complete:
        (directory / MARKER).write_text("built\n")
        os.utime(directory / MARKER, (time.time() - age, time.time() - age))
    return directory


def test_records_name_the_toolchains_software_was_built_with(tmp_path: Path) -> None:
    software_root, records = tmp_path / "soft", tmp_path / "soft" / ".locks"
    records.mkdir(parents=True)
    (software_root / "aaa").mkdir()
    (software_root / "bbb").mkdir()
    record_use(records, "aaa", Toolchain(tmp_path / "t1"))
    record_use(records, "aaa", Toolchain(tmp_path / "t2"))  # rebuilt later with another one
    record_use(records, "aaa", Toolchain(tmp_path / "t2"))
    assert recorded_toolchains(software_root, records) is None  # bbb has no record: it may use any
    record_use(records, "bbb", Toolchain(tmp_path / "t1"))
    record_use(records, "gone", Toolchain(tmp_path / "t3"))  # its software was removed: not counted
    assert recorded_toolchains(software_root, records) == {tmp_path / "t1", tmp_path / "t2"}
    assert (records / "aaa.toolchains").read_text() == f"{tmp_path / 't1'}\n{tmp_path / 't2'}\n"


def test_an_unused_old_toolchain_is_removed_and_the_others_kept(tmp_path: Path) -> None:
    root = tmp_path / "toolchains"
    current = fake_toolchain(root, "current")
    recorded = fake_toolchain(root, "recorded")
    unused = fake_toolchain(root, "unused")
    recent = fake_toolchain(root, "recent", age=60)  # another node sharing the directory used it
    partial = fake_toolchain(root, "partial", complete=False)  # a build that was killed
    held = fake_toolchain(root, "held")  # a running process uses it
    with open(held / MARKER) as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        removed = remove_unused(root, [current, recorded])
    assert removed == [partial, unused]
    assert not partial.exists() and not unused.exists()
    assert sorted(path.name for path in root.iterdir() if not path.name.startswith(".")) == \
        ["current", "held", "recent", "recorded"]
    assert (held / MARKER).is_file() and (current / MARKER).is_file()
    assert remove_unused(root, [current, recorded, recent]) == [held]


def test_nothing_is_removed_while_a_build_holds_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "toolchains"
    unused = fake_toolchain(root, "unused")
    with file_lock(root / ".lock", 5):
        assert remove_unused(root, []) == []
    assert unused.is_dir()
    assert remove_unused(tmp_path / "missing", []) == []


def test_a_toolchain_held_by_this_process_is_never_removed(tmp_path: Path) -> None:
    source = source_of(fake_tree(tmp_path / "src"))
    root = tmp_path / "toolchains"
    directory = fake_toolchain(root, toolchain_key(source, PYTHON))
    toolchain = ensure_toolchain(root, PYTHON, source=source, for_other_users=False)
    os.utime(directory / MARKER, (1, 1))
    assert remove_unused(root, []) == []
    assert (toolchain.directory / MARKER).is_file()


def test_a_toolchain_directory_swapped_for_a_link_deletes_nothing(tmp_path: Path) -> None:
    """The software user owns software_root, so it can replace ``.toolchain`` by a link to a
    directory of root's: removal must not follow it (no marker there would read as "a killed
    build")."""
    victim = tmp_path / "victim"
    (victim / "precious").mkdir(parents=True)
    (victim / "other").mkdir()
    software_root = tmp_path / "soft"
    software_root.mkdir()
    (software_root / ".toolchain").symlink_to(victim)
    assert remove_unused(software_root / ".toolchain", []) == []
    assert sorted(path.name for path in victim.iterdir()) == ["other", "precious"]


def test_a_toolchain_directory_others_may_write_is_not_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "toolchains"
    unused = fake_toolchain(root, "unused")
    root.chmod(0o777)
    assert remove_unused(root, []) == []
    assert unused.is_dir()
    root.chmod(0o755)
    assert remove_unused(root, []) == [unused]


def test_a_link_among_the_toolchains_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "toolchains"
    fake_toolchain(root, "current")
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (root / "planted").symlink_to(outside)
    assert remove_unused(root, [root / "current"]) == []
    assert (outside / "data").is_dir() and (root / "planted").is_symlink()
