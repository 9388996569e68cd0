"""The node toolchain for tests, and an environment that runs the whole node as another user.

- `test_toolchain()`: the node's toolchain (buildout, the recipes, promises), built once under
  ``$PARTITA_TEST_ROOT/toolchain`` and reused while the modules it holds do not change
  (`node.toolchain` keys it by them). The nodes the tests run are configured with the same
  directory, so they find it built.
- `node_slapos()`: a ``slapos`` command an unprivileged user (``slapnode``) can run: a virtual
  environment from Debian's Python, readable by everyone, holding the whole of Partita (copied from
  the checkout, not editable) and its dependencies, under ``$PARTITA_TEST_ROOT/node-env/<key>``,
  keyed by a digest of the checkout's code and packaging. The toolchain holds no node (nor
  ``bin/slapos``), so single-user tests run the node from this.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from partita.node.config import DEFAULT_TOOLCHAIN_PYTHON
from partita.node.errors import SetupError
from partita.node.locks import file_lock
from partita.node.toolchain import Toolchain, ensure_toolchain

# As scripts/test sets it: a machine-wide directory as root, the checkout's var/test otherwise.
TEST_ROOT = Path(os.environ.get("PARTITA_TEST_ROOT") or (
    "/opt/partita-test" if os.geteuid() == 0 else Path(__file__).resolve().parents[2] / "var" / "test"))
TOOLCHAIN_ROOT = TEST_ROOT / "toolchain"
NODE_ENV_ROOT = TEST_ROOT / "node-env"
REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("slap", "master", "proxy", "node", "recipes")
PACKAGING = ("setup.py", "setup.cfg", "pyproject.toml", "README.md")
MARKER = ".partita-node-env"
BUILD_TIMEOUT = 900.0
UNUSED_DAYS = 2


def test_toolchain() -> Toolchain:
    return ensure_toolchain(TOOLCHAIN_ROOT, DEFAULT_TOOLCHAIN_PYTHON)


test_toolchain.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def node_slapos() -> str:
    """The ``slapos`` of the node environment (built if missing)."""
    return str(node_environment() / "bin" / "slapos")


def node_environment() -> Path:
    """The node environment of the checkout's current code (see the module docstring)."""
    files = _source_files()
    directory = NODE_ENV_ROOT / _digest(files)
    if (directory / MARKER).is_file():
        _touch(directory / MARKER)
        return directory
    NODE_ENV_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    with file_lock(NODE_ENV_ROOT / ".lock", BUILD_TIMEOUT + 60, "the test node environment"):
        if not (directory / MARKER).is_file():
            _build(directory, files)
            _remove_old(keep=directory)
    return directory


def _source_files() -> list[Path]:
    files = [REPO / name for name in PACKAGING if (REPO / name).is_file()]
    for folder in FOLDERS:
        files += [path for path in (REPO / folder).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    return sorted(files)


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256(DEFAULT_TOOLCHAIN_PYTHON.encode())
    for path in files:
        digest.update(f"\n{path.relative_to(REPO)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _build(directory: Path, files: list[Path]) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    deadline = time.monotonic() + BUILD_TIMEOUT
    with tempfile.TemporaryDirectory(prefix="partita-node-env-") as work:
        source = Path(work) / "source"
        for path in files:  # a copy: an in-tree build could pick up a stale build/ directory
            target = source / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        pip = [str(directory / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for command in ([DEFAULT_TOOLCHAIN_PYTHON, "-m", "venv", str(directory)],
                        [*pip, "setuptools>=61", "wheel"],
                        [*pip, "--no-build-isolation", str(source)]):
            done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=max(1.0, deadline - time.monotonic()))
            if done.returncode != 0:
                raise SetupError(f"cannot build the test node environment: {' '.join(command[:5])} failed:\n"
                                 f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    for path in [directory, *directory.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    (directory / MARKER).write_text(f"built {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _remove_old(keep: Path) -> None:
    """Environments of older code, unused for `UNUSED_DAYS` days (other sessions may use them)."""
    for entry in NODE_ENV_ROOT.iterdir():
        if entry == keep or entry.name.startswith(".") or not entry.is_dir():
            continue
        marker = entry / MARKER
        if not marker.is_file() or time.time() - marker.stat().st_mtime > UNUSED_DAYS * 86400:
            shutil.rmtree(entry, ignore_errors=True)
