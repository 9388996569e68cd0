"""partita:pip, through real buildout runs installing a wheel made here from a local directory.

pip reads its index from its own configuration; these runs give it ``PIP_NO_INDEX`` and
``PIP_FIND_LINKS`` (a directory of this test) in the environment, so nothing leaves the machine.
"""
from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import zipfile
from pathlib import Path

from partita.node.toolchain import Toolchain

from tests.recipes.helpers import BUILDOUT_TIMEOUT, Result, check_fails, check_ok

WHEEL = "partita_demo-1.0-py3-none-any.whl"
FILES = {
    "partita_demo/__init__.py": b"GREETING = 'hello from the wheel'\n",
    "partita_demo-1.0.data/scripts/demo-tool": b"#!/bin/sh\necho demo tool ran\n",
    "partita_demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: partita-demo\nVersion: 1.0\n",
    "partita_demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                         b"Tag: py3-none-any\n",
}


def make_wheel(directory: Path) -> str:
    """A wheel shipping a package and a ``.data/scripts`` program; its sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    record = []
    for name, content in FILES.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(content)}")
    record.append("partita_demo-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(directory / WHEEL, "w") as archive:
        for name, content in FILES.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | (0o755 if "scripts" in name else 0o644)) << 16
            archive.writestr(info, content)
        archive.writestr("partita_demo-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return hashlib.sha256((directory / WHEEL).read_bytes()).hexdigest()


def write_profile(directory: Path, cache: Path, *lines: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (cache / "download").mkdir(parents=True, exist_ok=True)
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", "parts = wheels outputs", "newest = false", f"download-cache = {cache}/download",
        "[wheels]", "recipe = partita:pip", *lines,
        "[outputs]", "recipe = partita:template",
        "inline = ${wheels:location} ${wheels:bin} ${wheels:pythonpath}",
        "output = ${buildout:directory}/outputs.txt",
    ]) + "\n")


def run(toolchain: Toolchain, directory: Path, links: Path) -> Result:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(directory), "LANG": "C.UTF-8",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links)}
    completed = subprocess.run([str(toolchain.buildout), "-c", "buildout.cfg"], check=False, cwd=directory, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=BUILDOUT_TIMEOUT)
    return Result(completed.returncode, completed.stdout + completed.stderr)


def test_installs_the_package_and_its_scripts_into_a_shared_store(toolchain: Toolchain, tmp_path: Path) -> None:
    links, cache = tmp_path / "links", tmp_path / "cache"
    sha = make_wheel(links)
    write_profile(tmp_path / "first", cache, "packages = partita-demo==1.0", f"sha256-partita-demo = {sha}")
    check_ok(run(toolchain, tmp_path / "first", links))
    location, bin_directory, pythonpath = (tmp_path / "first" / "outputs.txt").read_text().split()
    assert Path(location).parent == cache / "pip" and bin_directory == f"{location}/bin" and pythonpath == location
    tool = subprocess.run([f"{bin_directory}/demo-tool"], check=False, capture_output=True, text=True, timeout=10)
    assert tool.stdout == "demo tool ran\n"  # the .data/scripts buildout's egg conversion drops
    imported = subprocess.run([str(toolchain.python), "-c", "import partita_demo; print(partita_demo.GREETING)"],
                              check=False, env={"PYTHONPATH": pythonpath}, capture_output=True, text=True, timeout=30)
    assert imported.stdout == "hello from the wheel\n", imported.stderr
    for path in [Path(location), *Path(location).rglob("*")]:  # partitions read it, never write it
        assert not path.lstat().st_mode & 0o022, path
    assert Path(location).stat().st_mode & 0o777 == 0o755
    key = Path(location).name
    assert sorted(p.name for p in (cache / "pip").iterdir()) == [f".{key}.lock", key]  # no temporary left
    assert (tmp_path / "first" / ".partita-stores").read_text() == f"{location}\n"  # for slapos node prune

    # another release pinning the same file: the same entry, and pip is not run (the wheel is gone)
    (links / WHEEL).unlink()
    write_profile(tmp_path / "second", cache, "packages = partita-demo==1.0", f"sha256-partita-demo = sha256:{sha}")
    second = check_ok(run(toolchain, tmp_path / "second", links))
    assert (tmp_path / "second" / "outputs.txt").read_text().split()[0] == location
    assert f"wheels: reusing {location}" in second.output
    check_ok(run(toolchain, tmp_path / "second", links))  # an update records the entry once
    assert (tmp_path / "second" / ".partita-stores").read_text() == f"{location}\n"

    # removing the part leaves the shared entry alone
    (tmp_path / "second" / "buildout.cfg").write_text("[buildout]\nparts =\nnewest = false\n")
    check_ok(run(toolchain, tmp_path / "second", links))
    assert (Path(bin_directory) / "demo-tool").is_file()


def test_a_hash_mismatch_fails_in_one_line_and_leaves_no_entry(toolchain: Toolchain, tmp_path: Path) -> None:
    links, cache = tmp_path / "links", tmp_path / "cache"
    make_wheel(links)
    write_profile(tmp_path / "sr", cache, "packages = partita-demo==1.0", f"sha256-partita-demo = {'0' * 64}")
    log = tmp_path / "sr" / "parts" / "wheels.pip.log"
    error = check_fails(run(toolchain, tmp_path / "sr", links), "[wheels] pip install failed with exit status 1: ",
                        f"(log: {log})")
    assert "hash" in error.lower() and log.is_file()
    assert [p.name for p in (cache / "pip").iterdir() if not p.name.endswith(".lock")] == []


def test_unpinned_or_unhashed_packages_are_refused_before_pip(toolchain: Toolchain, tmp_path: Path) -> None:
    links, cache = tmp_path / "links", tmp_path / "cache"
    cases = [
        (["packages = partita-demo>=1.0"], "[wheels] packages must be pinned as name==version, not 'partita-demo>=1.0'"),
        (["packages = partita-demo==1.0"], "[wheels] needs option 'sha256-partita-demo'"),
        (["packages = Partita_Demo==1.0", "sha256-partita-demo = abc"],
         "[wheels] option 'sha256-partita-demo' holds 'abc', not a sha256 (64 hex digits)"),
        ([], "[wheels] needs option 'packages'"),
    ]
    for lines, expected in cases:
        write_profile(tmp_path / "sr", cache, *lines)
        check_fails(run(toolchain, tmp_path / "sr", links), expected)
    assert not (cache / "pip").exists()


def test_a_store_entry_is_complete_or_absent(tmp_path: Path) -> None:
    from partita.recipes.pip import publish_entry

    staged = tmp_path / "staged"
    staged.mkdir(mode=0o700)
    (staged / "file").write_text("new")
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "file").write_text("first")
    publish_entry(staged, entry)  # another build got there first: its entry stays
    assert (entry / "file").read_text() == "first"
    fresh = tmp_path / "fresh"
    publish_entry(staged, fresh)
    assert (fresh / "file").read_text() == "new" and stat.S_IMODE(os.stat(fresh).st_mode) == 0o755
