"""``slapos master packages fetch|list`` (issue 13), with pip reading a local directory only."""
from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support.server import SLAPOS


def make_wheel(directory: Path, project: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A small, valid, pure-Python wheel."""
    path = directory / f"{project}-{version}-py3-none-any.whl"
    info = f"{project}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {name}\n" for name in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{project}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(f"{info}/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    source = tmp_path / "source"
    source.mkdir()
    make_wheel(source, "demo", "1.0", ("helper",))
    make_wheel(source, "helper", "2.0")
    (tmp_path / "master.cfg").write_text("[slapmaster]\ndatabase_uri = catalog.db\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(source), "PIP_CONFIG_FILE": os.devnull}
    return tmp_path, env


def slapos(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, "master", "packages", *args, "--cfg", str(tmp_path / "master.cfg")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_fetch_adds_the_wheels_and_their_dependencies_atomically(setup: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = setup
    done = slapos(tmp_path, env, "fetch", "demo==1.0")
    assert done.returncode == 0, done.stderr
    packages = tmp_path / "packages"  # beside the configuration, by default
    assert sorted(os.listdir(packages)) == ["demo-1.0-py3-none-any.whl", "helper-2.0-py3-none-any.whl"]
    assert "2 files in" in done.stdout
    listed = slapos(tmp_path, env, "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["demo", "1.0"], ["helper", "2.0"]]


def test_a_failing_pip_is_one_line_and_adds_nothing(setup: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = setup
    done = slapos(tmp_path, env, "fetch", "missing==3")
    assert done.returncode == 1
    assert done.stderr.startswith("slapos: error: pip download failed (nothing was added): ")
    assert "missing==3" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path / "packages") == []  # no half-downloaded file, no staging directory left


def test_fetch_needs_something_to_fetch(setup: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = setup
    done = slapos(tmp_path, env, "fetch")
    assert done.returncode == 64 and "--toolchain" in done.stderr
    done = slapos(tmp_path, env, "fetch", "-r", str(tmp_path / "nope.txt"))
    assert done.returncode == 1 and "no requirements file" in done.stderr


def test_list_says_when_the_index_is_empty(setup: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = setup
    assert "no packages in" in slapos(tmp_path, env, "list").stdout


def release(tmp_path: Path, pins: str) -> Path:
    """A release profile extending a local profile whose partita:pip part pins `pins`."""
    (tmp_path / "base.cfg").write_text(f"[wheels]\nrecipe = partita:pip\n{pins}\n")
    profile = tmp_path / "software.cfg"
    profile.write_text("[buildout]\nextends = base.cfg\nparts = wheels\n")
    return profile


def test_fetch_release_adds_its_pinned_wheels_checked_by_hash(setup: tuple[Path, dict[str, str]]) -> None:
    import hashlib
    tmp_path, env = setup
    digest = hashlib.sha256((tmp_path / "source" / "helper-2.0-py3-none-any.whl").read_bytes()).hexdigest()
    done = slapos(tmp_path, env, "fetch", "--release", str(release(tmp_path, f"packages = helper==2.0\n"
                                                                            f"sha256-helper = {digest}")))
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path / "packages") == ["helper-2.0-py3-none-any.whl"]  # the pins only, no listing


def test_fetch_release_refuses_a_wheel_that_does_not_match_its_pin(setup: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = setup
    done = slapos(tmp_path, env, "fetch", "--release", str(release(tmp_path, "packages = helper==2.0\n"
                                                                            f"sha256-helper = {'0' * 64}")))
    assert done.returncode == 1 and "nothing was added" in done.stderr
    assert os.listdir(tmp_path / "packages") == []


def test_fetch_release_refuses_an_unpinned_part_in_one_line(setup: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = setup
    done = slapos(tmp_path, env, "fetch", "--release", str(release(tmp_path, "packages = helper")))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "slapos: error: [wheels] packages must be pinned as name==version, not 'helper'"]
    assert not (tmp_path / "packages").exists() or os.listdir(tmp_path / "packages") == []
