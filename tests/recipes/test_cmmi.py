"""partita:cmmi, through real buildout runs building a small C program with Debian's gcc."""
from __future__ import annotations

import subprocess
from pathlib import Path

from partita.node.toolchain import Toolchain
from partita.recipes.cmmi import tree_digest

from tests.recipes.helpers import check_fails, check_ok, run_buildout

CONFIGURE = """#!/bin/sh
# A minimal configure: records the prefix and the options for the Makefile.
prefix=/usr/local
for argument in "$@"; do
    case $argument in
        --prefix=*) prefix=${argument#--prefix=} ;;
        --greeting=*) greeting=${argument#--greeting=} ;;
        *) echo "configure: unknown option $argument" >&2; exit 1 ;;
    esac
done
printf 'PREFIX = %s\\nGREETING = %s\\n' "$prefix" "${greeting:-hello}" > config.mk
"""
MAKEFILE = """include config.mk
all: hello
hello: hello.c
\techo made >> "$$MAKE_COUNTER"
\t$(CC) $(CFLAGS) -DGREETING='"$(GREETING)"' -o hello hello.c
install: hello
\tmkdir -p $(PREFIX)/bin
\tcp hello $(PREFIX)/bin/hello
"""
SOURCE = '#include <stdio.h>\nint main(void) { printf("%s %s\\n", GREETING, SUFFIX); return 0; }\n'


def write_source(directory: Path, source: str = SOURCE) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "configure").write_text(CONFIGURE)
    (directory / "configure").chmod(0o755)
    (directory / "Makefile").write_text(MAKEFILE)
    (directory / "hello.c").write_text(source)
    return directory


def write_profile(directory: Path, cache: Path, source: Path, counter: Path, *lines: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (cache / "download").mkdir(parents=True, exist_ok=True)
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", "parts = hello outputs", "newest = false", f"download-cache = {cache}/download",
        "[hello]", "recipe = partita:cmmi", f"path = {source}", "environment =",
        f"    MAKE_COUNTER={counter}", "    CFLAGS=-O2 -DSUFFIX='\"world\"'", *lines,
        "[outputs]", "recipe = partita:template", "inline = ${hello:location}",
        "output = ${buildout:directory}/location.txt",
    ]) + "\n")


def location(directory: Path) -> Path:
    return Path((directory / "location.txt").read_text())


def run_hello(where: Path) -> str:
    return subprocess.run([str(where / "bin" / "hello")], check=False, capture_output=True, text=True, timeout=10).stdout


def test_builds_once_and_a_second_release_reuses_the_result(toolchain: Toolchain, tmp_path: Path) -> None:
    source, cache, counter = write_source(tmp_path / "src"), tmp_path / "cache", tmp_path / "made"
    write_profile(tmp_path / "first", cache, source, counter, "configure-options = --greeting=bonjour")
    check_ok(run_buildout(toolchain, tmp_path / "first"))
    built = location(tmp_path / "first")
    assert built.parent == cache / "cmmi"
    assert run_hello(built) == "bonjour world\n"
    assert counter.read_text() == "made\n"
    assert sorted(p.name for p in source.iterdir()) == ["Makefile", "configure", "hello.c"]  # built in a copy
    assert not [p for p in (cache / "cmmi").iterdir() if p.name.startswith(".build-")]
    assert built.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "first" / ".partita-stores").read_text() == f"{built}\n"  # for slapos node prune

    # another release with a copy of the same tree: the same entry, make is not run again
    copy = write_source(tmp_path / "copy")
    write_profile(tmp_path / "second", cache, copy, counter, "configure-options = --greeting=bonjour")
    second = check_ok(run_buildout(toolchain, tmp_path / "second"))
    assert location(tmp_path / "second") == built and f"hello: reusing {built}" in second.output
    assert counter.read_text() == "made\n"

    # a changed file or option is another build
    (copy / "hello.c").write_text(SOURCE.replace("%s %s", "%s, %s!"))
    check_ok(run_buildout(toolchain, tmp_path / "second"))
    assert location(tmp_path / "second") != built and run_hello(location(tmp_path / "second")) == "bonjour, world!\n"
    write_profile(tmp_path / "first", cache, source, counter, "configure-options = --greeting=salut")
    check_ok(run_buildout(toolchain, tmp_path / "first"))
    assert run_hello(location(tmp_path / "first")) == "salut world\n"
    assert counter.read_text() == "made\n" * 3
    assert run_hello(built) == "bonjour world\n"  # the first entry stays for whoever uses it


def test_a_failed_build_fails_in_one_line_with_its_log(toolchain: Toolchain, tmp_path: Path) -> None:
    source, cache, counter = write_source(tmp_path / "src", "int main(void) { return missing; }\n"), \
        tmp_path / "cache", tmp_path / "made"
    write_profile(tmp_path / "sr", cache, source, counter)
    log = tmp_path / "sr" / "parts" / "hello.cmmi.log"
    error = check_fails(run_buildout(toolchain, tmp_path / "sr"), "[hello] make failed with exit status 2: ",
                        f"(log: {log})")
    assert "hello.c:1:25: error: " in error and "undeclared" in error and "\n" not in error
    assert "$ make" in log.read_text()
    assert [p.name for p in (cache / "cmmi").iterdir() if not p.name.startswith(".")] == []

    # fixed, it builds; a configure failure names its step
    write_source(source)
    check_ok(run_buildout(toolchain, tmp_path / "sr"))
    assert run_hello(location(tmp_path / "sr")) == "hello world\n"
    write_profile(tmp_path / "sr", cache, source, counter, "configure-options = --bogus")
    check_fails(run_buildout(toolchain, tmp_path / "sr"),
                "[hello] configure failed with exit status 1: ", "configure: unknown option --bogus")


def test_bad_options_are_one_line(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "buildout.cfg").write_text("[buildout]\nparts = hello\nnewest = false\n[hello]\nrecipe = partita:cmmi\n")
    check_fails(run_buildout(toolchain, tmp_path), "[hello] needs option 'path'")
    (tmp_path / "buildout.cfg").write_text("[buildout]\nparts = hello\nnewest = false\n[hello]\n"
                                           f"recipe = partita:cmmi\npath = {tmp_path}/none\n")
    check_fails(run_buildout(toolchain, tmp_path), f"[hello] path {tmp_path}/none is not a directory")


def test_the_tree_digest_follows_content_modes_and_names(tmp_path: Path) -> None:
    tree = write_source(tmp_path / "a")
    first = tree_digest(tree)
    assert tree_digest(write_source(tmp_path / "b")) == first
    (tree / "configure").chmod(0o644)
    assert tree_digest(tree) != first
    (tree / "configure").chmod(0o755)
    (tree / "hello.c").rename(tree / "main.c")
    assert tree_digest(tree) != first
    (tree / "main.c").rename(tree / "hello.c")
    (tree / "empty").mkdir()
    assert tree_digest(tree) != first
