"""``partita:cmmi``: configure, make, make install of a source tree kept in the release, cached.

::

    [c-hello]
    recipe = partita:cmmi
    path = ${software-release:base}/src
    configure-options = --enable-x        # after --prefix=<location>
    make-options = -j2                    # given to both make and make install
    environment =
        CFLAGS=-O2

    [x]
    command = ${c-hello:location}/bin/c-hello

The tree at ``path`` is copied into a temporary build directory (the release's own files are never
written), then ``./configure --prefix=<location> <configure-options>`` (when the tree has a
``configure``), ``make <make-options>`` and ``make <make-options> install`` run there, with the
build's environment plus ``environment``'s ``NAME=value`` lines.

**The build cache.** ``location`` is ``<store>/<key>``, the key being a digest of the tree's files
(paths, contents, executable bits, links), the options and the compiler's version
(``$CC --version``, ``cc`` by default): a second release, or a rebuild, with the same source uses
the installed result without building. The store is ``store-directory``, by default ``cmmi``
beside the node's download cache (the software user's, read-only for partitions), or
``<parts-directory>/.partita-store/cmmi`` without a download cache. Builds of one key take turns
(a lock file beside the entry); an entry counts only once its marker ``.partita-cmmi`` is written,
after ``make install``: an interrupted build is removed and redone. Holding that lock, the recipe
adds the entry to ``<buildout directory>/.partita-stores`` first, for ``slapos node prune``, which
removes the entries no release uses.

A failed step fails the buildout with one line: the step, its exit status, the last lines of its
output and the log (``<parts-directory>/<section>.cmmi.log``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from partita.recipes.common import fail, number
from partita.recipes.pip import TAIL_CHARS, entry_lock, make_store, record_reference, store_directory
from partita.recipes.wrapper import parse_environment

FORMAT = "1"  # bump when the layout of an entry or the build steps change
TIMEOUT = 1800.0
MARKER = ".partita-cmmi"

log = logging.getLogger(__name__)


def tree_digest(root: Path) -> str:
    """sha256 over the tree's relative paths, kinds, executable bits, contents and link targets."""
    digest = hashlib.sha256()
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        base = Path(directory)
        for name in sorted(files + [d for d in subdirectories if (base / d).is_symlink()]):
            path = base / name
            relative = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                digest.update(f"L\0{relative}\0{os.readlink(path)}\0".encode())
            elif stat.S_ISREG(info.st_mode):
                content = path.read_bytes()
                digest.update(f"F\0{relative}\0{info.st_mode & 0o111:o}\0{len(content)}\0".encode())
                digest.update(content)
        for name in subdirectories:
            digest.update(f"D\0{(base / name).relative_to(root).as_posix()}\0".encode())
    return digest.hexdigest()


def build_key(source_digest: str, options: dict[str, Any], compiler: str) -> str:
    """The store entry of a source tree built with these options by this compiler."""
    document = json.dumps({"format": FORMAT, "source": source_digest, "options": options, "compiler": compiler},
                          sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:32]


def compiler_version(environment: dict[str, str]) -> str:
    """The first line of ``$CC --version`` (``cc`` by default), or a note that there is none."""
    command = shlex.split(environment.get("CC", "cc")) or ["cc"]
    try:
        completed = subprocess.run([*command, "--version"], check=False, capture_output=True, text=True, timeout=30,
                                   env=environment, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no compiler: {error}"
    lines = completed.stdout.splitlines()
    return lines[0] if lines else f"{command[0]} exited {completed.returncode}"


def build_tail(text: str) -> str:
    """The first line saying "error" (usually the cause) and the last two lines, on one bounded line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first_error = next((line for line in lines if "error" in line.lower()), None)
    picked = ([first_error] if first_error else []) + [line for line in lines[-2:] if line != first_error]
    joined = " | ".join(picked)
    return joined if len(joined) <= TAIL_CHARS else joined[:TAIL_CHARS] + "…"


class Recipe:
    """Builds at install and update when the store has no complete entry for this key."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        self.buildout = buildout
        path = options.get("path", "").strip()
        if not path:
            raise fail(f"[{name}] needs option 'path' (the source tree, e.g. ${{software-release:base}}/src)")
        self.source = Path(path) if Path(path).is_absolute() else Path(buildout["buildout"]["directory"]) / path
        if not self.source.is_dir():
            raise fail(f"[{name}] path {self.source} is not a directory")
        self.configure_options = shlex.split(options.get("configure-options", ""))
        self.make_options = shlex.split(options.get("make-options", ""))
        self.extra = parse_environment(options.get("environment", ""), name)
        self.timeout = number(options, "timeout", name, TIMEOUT)
        self.environment = dict(os.environ, **dict(self.extra))
        key = build_key(tree_digest(self.source), {
            "configure-options": self.configure_options, "make-options": self.make_options,
            "environment": self.extra}, compiler_version(self.environment))
        self.store = store_directory(buildout, options, "cmmi")
        self.location = self.store / key
        self.log_path = Path(buildout["buildout"]["parts-directory"]) / f"{name}.cmmi.log"
        options["location"] = str(self.location)

    def complete(self) -> bool:
        return (self.location / MARKER).is_file()

    def install(self) -> tuple[str, ...]:
        make_store(self.store, self.name)
        with entry_lock(self.store, self.location.name):
            record_reference(self.buildout, self.location)
            if self.complete():  # built before, or by another build while this one waited
                log.info("%s: reusing %s", self.name, self.location)
                return ()
            self._build()
        log.info("%s: built %s", self.name, self.location)
        return ()  # shared with other releases: buildout must never remove it

    update = install

    def _build(self) -> None:
        shutil.rmtree(self.location, ignore_errors=True)  # an interrupted build's leftovers
        work = Path(tempfile.mkdtemp(prefix=f".build-{self.location.name}-", dir=self.store))
        try:
            tree = work / "src"
            shutil.copytree(self.source, tree, symlinks=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "w") as output:
                for step, command in self._steps(tree):
                    self._run(step, command, tree, output)
            if not self.location.is_dir():
                raise fail(f"[{self.name}] make install created nothing in {self.location} "
                           f"(log: {self.log_path})")
            self.location.chmod(0o755)
            (self.location / MARKER).write_text(json.dumps({"source": str(self.source)}) + "\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _steps(self, tree: Path) -> list[tuple[str, list[str]]]:
        steps = []
        if (tree / "configure").is_file():
            steps.append(("configure", ["sh", "./configure", f"--prefix={self.location}", *self.configure_options]))
        steps.append(("make", ["make", *self.make_options]))
        steps.append(("make install", ["make", *self.make_options, "install"]))
        return steps

    def _run(self, step: str, command: list[str], cwd: Path, output: Any) -> None:
        output.write(f"$ {shlex.join(command)}\n")
        output.flush()
        try:
            completed = subprocess.run(command, check=False, cwd=cwd, env=self.environment, stdin=subprocess.DEVNULL,
                                       stdout=output, stderr=subprocess.STDOUT, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise fail(f"[{self.name}] {step} took more than {self.timeout:g} s (log: {self.log_path})") from None
        except OSError as error:
            raise fail(f"[{self.name}] cannot run {step}: {error.strerror or error} (log: {self.log_path})") from None
        if completed.returncode != 0:
            output.flush()
            raise fail(f"[{self.name}] {step} failed with exit status {completed.returncode}: "
                       f"{build_tail(self.log_path.read_text(errors='replace'))} (log: {self.log_path})")
