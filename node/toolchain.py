"""The toolchain: the virtual environment that runs buildout, Partita's recipes and promises.

Software and instance buildouts run as other users (``slapsoft``, ``slapuserN``) who cannot reach
the node's own environment (it may live under a private home). So the node makes a virtual
environment of its own, from Debian's Python (``toolchain_python``), under
``toolchain_directory/<key>``, readable by everyone, holding only what recipes and promises run:

- `REQUIREMENTS` from the package index: the node's ``package_index`` when set (the variables
  `node.package_index` gives), else ``PIP_INDEX_URL``, ``PIP_CERT``... of the node's own
  environment (zc.buildout 6, zc.recipe.egg, requests, jinja2 for
  ``partita:template``'s Jinja2 mode, jsonschema for parameter schemas, and setuptools, which
  installs the copy below);
- a copy of the Partita modules that recipes and promise plugins import: every module of
  ``partita.recipes``, ``partita.slap.promise`` (``python -m partita.slap.promise FILE``), the
  modules named by the ``zc.buildout`` entry points, and every ``partita`` module these import,
  found by reading their import statements (`collect_source`). They are copied from the running
  installation, whatever it is (a checkout, an editable install, a wheel in site-packages), into a
  small generated project installed as the distribution ``partita``, of the same version and with
  the same ``zc.buildout`` entry points, so buildout finds ``recipe = partita:publish`` in it and a
  software release needs no extra line to use the recipes.

There is no master, no node and no ``bin/slapos`` in it: the node itself never runs from a toolchain.

**The key.** ``<key>`` is a digest of the requirements, the Python, the version, the entry points
and the path and content of every copied file: a change to a recipe or to a module they import
gives a new toolchain; a change to the master or the node does not.

**Building.** Under the lock ``toolchain_directory/.lock``, in place (a virtual environment cannot
move: its scripts name their own path), with a deadline; the marker file is written last, so a node
killed half-way leaves no toolchain that looks complete (a partial one is wiped first).

**Removal.** A toolchain is in use while software built with it exists (its scripts name its
Python), while a process uses it, or while it was used recently. `remove_unused` deletes a toolchain
directory only when all of these hold:

1. it is not the caller's current toolchain;
2. no software release records it: before each software buildout the node adds the toolchain to
   the release's record (`record_use`, ``software_root/.locks/<digest>.toolchains``), and a record
   counts while ``software_root/<digest>`` exists; a software directory without a record (built
   before records existed) keeps every toolchain;
3. no running process holds it: `ensure_toolchain` takes a shared lock on its marker for the life
   of the process (the daemon, a command, a test session); removal needs the exclusive lock;
4. it was not used for `UNUSED_GRACE` (the marker's mtime, refreshed by `ensure_toolchain`): the
   toolchain directory may be shared by several nodes, each with its own software records;
5. the removal holds the lock that builds hold: never during a build. It does not wait for it.

A directory without a marker, found under that lock, is what a killed build left: removed too.
"""
from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module, metadata
from pathlib import Path

from partita.node.errors import SetupError
from partita.node.locks import file_lock, try_lock
from partita.slap.fileio import atomic_write, open_directory
from partita.slap.toolchain import REQUIREMENTS

log = logging.getLogger(__name__)

DISTRIBUTION = "partita"
ENTRY_POINT_GROUP = "zc.buildout"
UNINSTALL_GROUP = "zc.buildout.uninstall"  # a recipe's uninstall step
ROOT_PACKAGES = ("partita.recipes",)        # every module of these
ROOT_MODULES = ("partita.slap.promise",)    # and these, then what they import
BUILD_TIMEOUT = 900.0
LOCK_TIMEOUT = BUILD_TIMEOUT + 60.0
HOLD_TIMEOUT = 30.0
UNUSED_GRACE = 24 * 3600.0
MARKER = ".partita-toolchain"
RECORD_SUFFIX = ".toolchains"
_MAX_RECORD = 64 * 1024

_held: dict[Path, int] = {}  # toolchain directory -> the descriptor of its marker, shared-locked


@dataclass(frozen=True)
class Toolchain:
    directory: Path

    @property
    def key(self) -> str:
        return self.directory.name

    @property
    def python(self) -> Path:
        return self.directory / "bin" / "python"

    @property
    def buildout(self) -> Path:
        return self.directory / "bin" / "buildout"


# -- what goes in ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """The Partita part of a toolchain: files (path in the generated project -> file to copy),
    the distribution's version and its ``zc.buildout`` entry points (``name = module:attr``)."""

    version: str
    entry_points: tuple[str, ...]
    files: tuple[tuple[str, Path], ...]
    uninstall_entry_points: tuple[str, ...] = ()

    @property
    def packages(self) -> list[str]:
        return sorted(name.rpartition("/")[0].replace("/", ".") for name, _ in self.files
                      if name.endswith("/__init__.py"))


def installed_source() -> Source:
    """The `Source` of the running installation (where ``partita.slap`` and ``partita.recipes``
    are imported from, and the ``partita`` distribution's metadata)."""
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise SetupError("cannot build the toolchain: the partita distribution is not installed "
                         "(no metadata to take its version and recipe entry points from)") from None
    entry_points = [f"{entry.name} = {entry.value}"
                    for entry in distribution.entry_points.select(group=ENTRY_POINT_GROUP)]
    uninstall = [f"{entry.name} = {entry.value}" for entry in distribution.entry_points.select(group=UNINSTALL_GROUP)]
    return collect_source({}, entry_points, distribution.version, uninstall)


def collect_source(directories: Mapping[str, Path], entry_points: Iterable[str], version: str,
                   uninstall_entry_points: Iterable[str] = ()) -> Source:
    """The files of the modules recipes and promises run, and of every ``partita`` module they
    import (statically: every ``import`` statement, also those inside functions).

    `directories` maps top packages (``partita.slap``) to their folders; a top package missing from
    it is imported to find its folder.
    """
    tree = _Tree(directories)
    entry_points = tuple(sorted(entry_points))
    roots = list(ROOT_MODULES)
    for package in ROOT_PACKAGES:
        roots += tree.modules_of(package)
    roots += [entry.partition("=")[2].strip().partition(":")[0] for entry in entry_points]
    found: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = tree.file_of(name)
        if path is None:
            if name in roots:
                raise SetupError(f"cannot build the toolchain: module {name} not found")
            continue  # `from package import name` where name is not a module
        found[name] = path
        parent = name.rpartition(".")[0]
        if parent != "partita":
            todo.append(parent)
        todo += _imports(path, name)
    files = {_project_path(name, path): path for name, path in found.items()}
    for name, path in list(found.items()):
        if path.name == "__init__.py" and (path.parent / "py.typed").is_file():
            files[_project_path(name, path).replace("__init__.py", "py.typed")] = path.parent / "py.typed"
    return Source(version, entry_points, tuple(sorted(files.items())), tuple(sorted(uninstall_entry_points)))


class _Tree:
    """Where the modules of the ``partita`` namespace are, as files."""

    def __init__(self, directories: Mapping[str, Path]) -> None:
        self.directories = dict(directories)

    def _top(self, name: str) -> Path | None:
        if name not in self.directories:
            try:
                module = import_module(name)
            except ImportError:
                return None
            self.directories[name] = Path(module.__file__ or "").resolve().parent
        return self.directories[name]

    def file_of(self, name: str) -> Path | None:
        parts = name.split(".")
        if len(parts) < 2 or parts[0] != "partita":
            return None
        base = self._top(".".join(parts[:2]))
        if base is None:
            return None
        path = base.joinpath(*parts[2:])
        if (path / "__init__.py").is_file():
            return path / "__init__.py"
        if len(parts) > 2 and path.with_suffix(".py").is_file():
            return path.with_suffix(".py")
        return None

    def modules_of(self, package: str) -> list[str]:
        """`package` and every module below it."""
        init = self.file_of(package)
        if init is None:
            raise SetupError(f"cannot build the toolchain: package {package} not found")
        names = [package]
        for path in sorted(init.parent.rglob("*.py")):
            relative = path.relative_to(init.parent).with_suffix("")
            if "__pycache__" in relative.parts:
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            if parts and self.file_of(".".join((package, *parts))) == path:
                names.append(".".join((package, *parts)))
        return names


def _imports(path: Path, module: str) -> list[str]:
    """The ``partita`` names `path` (the module `module`) imports: modules, and for ``from M
    import N`` also ``M.N`` (kept only if it is a module)."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError) as error:
        raise SetupError(f"cannot build the toolchain: cannot read {path}: {error}") from None
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return [name for name in names if name.startswith("partita.")]


def _project_path(name: str, path: Path) -> str:
    stem = name.replace(".", "/")
    return f"{stem}/__init__.py" if path.name == "__init__.py" else f"{stem}.py"


def toolchain_key(source: Source, python: str) -> str:
    """A digest of what goes into the toolchain (see the module docstring)."""
    digest = hashlib.sha256()
    for part in (*REQUIREMENTS, "", python, source.version, *source.entry_points, "",
                 *(f"uninstall {entry}" for entry in source.uninstall_entry_points)):
        digest.update(part.encode() + b"\n")
    for name, path in source.files:
        content = path.read_bytes()
        digest.update(f"{name}\n{len(content)}\n".encode())
        digest.update(content)
    return digest.hexdigest()[:16]


def project_files(source: Source) -> dict[str, bytes]:
    """The generated project: ``pyproject.toml`` and the copied files, by relative path."""
    def table(entries: Iterable[str]) -> str:
        return "\n".join(f'{name.strip()} = "{value.strip()}"'
                         for name, _, value in (entry.partition("=") for entry in entries))

    entry_points = table(source.entry_points)
    uninstall = [f'[project.entry-points."{UNINSTALL_GROUP}"]', table(source.uninstall_entry_points), ""]
    pyproject = "\n".join([
        "# Generated by partita.node.toolchain: the Partita modules recipes and promises run.",
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{DISTRIBUTION}"',
        f'version = "{source.version}"',
        'description = "The Partita modules recipes and promises run (a node toolchain)"',
        "",
        f'[project.entry-points."{ENTRY_POINT_GROUP}"]',
        entry_points,
        "",
        *(uninstall if source.uninstall_entry_points else []),
        "[tool.setuptools]",
        "packages = [" + ", ".join(f'"{package}"' for package in source.packages) + "]",
        "",
        "[tool.setuptools.package-data]",
        '"*" = ["py.typed"]',
        "",
    ])
    files = {"pyproject.toml": pyproject.encode()}
    files.update((name, path.read_bytes()) for name, path in source.files)
    return files


# -- getting one -------------------------------------------------------------------------------

def ensure_toolchain(root: Path, python: str, *, timeout: float = BUILD_TIMEOUT,
                     source: Source | None = None, for_other_users: bool | None = None,
                     pip_environment: Mapping[str, str] | None = None) -> Toolchain:
    """The toolchain of the running installation under `root`, built if missing, and held (see
    the module docstring) for the life of this process.

    `pip_environment` (`node.package_index`), when not empty, is where pip gets packages from,
    instead of the ``PIP_*`` variables of the node's environment.

    `for_other_users` (by default: when the node runs as root) checks first that other users can
    reach `root`, since the software and partition users run what it holds.
    """
    if for_other_users is None:
        for_other_users = os.geteuid() == 0
    if for_other_users:
        check_reachable(root)
    source = source or installed_source()
    toolchain = Toolchain(root / toolchain_key(source, python))
    if _hold(toolchain):
        return toolchain
    if not os.access(python, os.X_OK):
        raise SetupError(f"cannot build the toolchain: {python} is not an executable Python "
                         "(set [slapos] toolchain_python)")
    try:
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as error:
        raise SetupError(f"cannot create the toolchain directory {root}: {error.strerror}") from None
    with file_lock(root / ".lock", LOCK_TIMEOUT, "the toolchain"):
        if not _hold(toolchain):  # else another process built it while we waited
            _build(toolchain.directory, source, python, timeout, pip_environment or {})
            if not _hold(toolchain):
                raise SetupError(f"the toolchain {toolchain.directory} vanished once built")
    return toolchain


def check_reachable(root: Path) -> None:
    """A SetupError naming the directory above `root` that other users cannot enter, if any (the
    software user's build would fail with "exit status 127" and an empty log)."""
    for directory in reversed([root, *root.parents]):
        try:
            mode = directory.stat().st_mode
        except FileNotFoundError:
            return  # created below, mode 0755
        except OSError as error:
            raise SetupError(f"cannot check the toolchain directory {directory}: {error.strerror}") from None
        if not mode & stat.S_IXOTH:
            raise SetupError(f"the toolchain directory {root} is out of reach of the software and partition "
                             f"users: {directory} is mode {stat.S_IMODE(mode):04o} (others need o+x on every "
                             "directory above it; set [slapos] toolchain_directory elsewhere)")


def _hold(toolchain: Toolchain) -> bool:
    """Whether `toolchain` is complete; if so, share-lock its marker for the life of the process
    (a removal waits for no one: it skips what is held) and mark it used now."""
    if toolchain.directory in _held:
        return True
    marker = toolchain.directory / MARKER
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise SetupError(f"cannot open the toolchain marker {marker}: {error.strerror}") from None
    deadline = time.monotonic() + HOLD_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:  # a removal holds it for much less than that
                os.close(fd)
                raise SetupError(f"the toolchain {toolchain.directory} is being removed") from None
            time.sleep(0.05)
    if os.fstat(fd).st_nlink == 0:  # removed while we waited: build it again
        os.close(fd)
        return False
    with contextlib.suppress(OSError):  # not ours to touch (a shared toolchain directory)
        os.utime(marker, follow_symlinks=False)
    _held[toolchain.directory] = fd
    return True


def _build(work: Path, source: Source, python: str, timeout: float,
           pip_environment: Mapping[str, str] | None = None) -> None:
    """Build in place; the marker, written last, says it is complete, and a partial one is wiped first."""
    shutil.rmtree(work, ignore_errors=True)
    deadline = time.monotonic() + timeout
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "LANG": "C.UTF-8"}
    if pip_environment:
        env.update(pip_environment)
    else:
        for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT", "PIP_CONFIG_FILE"):
            if name in os.environ:
                env[name] = os.environ[name]

    def run(*command: str) -> None:
        remaining = deadline - time.monotonic()
        try:
            result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=max(remaining, 1.0))
        except subprocess.TimeoutExpired:
            raise SetupError(f"building the toolchain took more than {timeout:g}s") from None
        if result.returncode != 0:
            lines = [line for line in (result.stderr + result.stdout).splitlines()
                     if line.strip() and "is ignored: it is neither" not in line]
            raise SetupError(f"cannot build the toolchain: {' '.join(command[:4])} failed: "
                             + " | ".join(lines[-3:]))

    run(python, "-m", "venv", str(work))
    pip = (str(work / "bin" / "python"), "-m", "pip", "install", "-q")
    run(*pip, *REQUIREMENTS)
    with tempfile.TemporaryDirectory(prefix="partita-toolchain-") as project:
        for name, content in project_files(source).items():
            path = Path(project) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        run(*pip, "--no-deps", "--no-build-isolation", project)
    for path in [work, *work.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    (work / MARKER).write_text(f"built {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
    (work / MARKER).chmod(0o644)


# -- which are in use, and removing the others --------------------------------------------------

def record_use(records: Path, digest: str, toolchain: Toolchain) -> None:
    """Add `toolchain` to what the software release `digest` was built with (its record in the
    node's root-owned `records` directory, ``software_root/.locks``)."""
    path = records / f"{digest}{RECORD_SUFFIX}"
    recorded = _read_record(path) or []
    if str(toolchain.directory) not in recorded:
        atomic_write(path, "".join(f"{line}\n" for line in [*recorded, str(toolchain.directory)]), mode=0o644)


def recorded_toolchains(software_root: Path, records: Path, *, ignore: Iterable[Path] = ()) -> set[Path] | None:
    """The toolchains the software releases under `software_root` were built with; None when one
    has no record (built before records existed: it may use any)."""
    skip = {path.resolve() for path in ignore}
    used: set[Path] = set()
    try:
        entries = list(os.scandir(software_root))
    except FileNotFoundError:
        return used
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        if Path(entry.path).resolve() in skip:
            continue
        recorded = _read_record(records / f"{entry.name}{RECORD_SUFFIX}")
        if recorded is None:
            return None
        used.update(Path(line) for line in recorded)
    return used


def _read_record(path: Path) -> list[str] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(_MAX_RECORD)
    return [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]


def remove_unused(root: Path, keep: Iterable[Path], *, grace: float = UNUSED_GRACE) -> list[Path]:
    """Delete the toolchain directories under `root` that are not in `keep` (the caller's current
    one and the recorded ones), not held by a process and not used for `grace` seconds, unless a
    build holds the lock. Returns what was removed.

    `root` may sit in a directory another user owns (``software_root/.toolchain``): it is opened
    without following a link, cleaned only if it belongs to this user and no one else may write
    it, and everything below is reached through its descriptor, so a directory swapped for a link
    never makes the node delete anything outside it."""
    kept = {Path(path).name for path in keep}
    removed: list[Path] = []
    try:
        with open_directory(root) as root_fd:
            if not _owned_by_us(root_fd):
                log.warning("toolchains under %s not cleaned: not a directory of this user only", root)
                return removed
            with try_lock(root / ".lock") as held:
                if not held:
                    return removed
                for name in sorted(_subdirectories(root_fd)):
                    if name in kept or not _release(root_fd, name, grace):
                        continue
                    shutil.rmtree(name, dir_fd=root_fd, ignore_errors=True)
                    removed.append(root / name)
                    log.info("toolchain %s: removed (no longer used)", root / name)
    except OSError as error:  # missing, or a node that does not own the toolchain directory
        log.debug("toolchains under %s not cleaned: %s", root, error.strerror or error)
    return removed


def _owned_by_us(dir_fd: int) -> bool:
    info = os.fstat(dir_fd)
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _subdirectories(dir_fd: int) -> list[str]:
    """The names of the real directories (not links) in `dir_fd`, hidden ones left out."""
    with os.scandir(dir_fd) as entries:
        return [entry.name for entry in entries
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)]


def _release(root_fd: int, name: str, grace: float) -> bool:
    """Whether the toolchain `name` may go: no marker (a killed build: none runs, we hold the
    lock), or a marker unused for `grace` that no process holds; its marker is removed first, so
    no process takes it from now on."""
    with open_directory(name, dir_fd=root_fd) as directory:
        try:
            fd = os.open(MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
        except FileNotFoundError:
            return True
        try:
            if time.time() - os.fstat(fd).st_mtime < grace:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            os.unlink(MARKER, dir_fd=directory)
            return True
        finally:
            os.close(fd)
