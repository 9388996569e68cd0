"""The toolchain: the virtual environment that runs buildout, Partita's recipes and promises.

Software and instance buildouts run as other users (``slapsoft``, ``slapuserN``) who cannot reach
the node's own environment (it may live under a private home). So the node makes a virtual
environment of its own, from Debian's Python (``toolchain_python``), under
``toolchain_directory/<key>``, readable by everyone, holding zc.buildout 6, zc.recipe.egg and a
copy of Partita: buildout finds ``recipe = partita:…`` in it, so a software release needs no
extra line to use them, and its ``bin/slapos`` runs for any user.

``<key>`` is a digest of Partita's source and the requirements: a new version of Partita gets a
new toolchain, an unchanged one is reused. Old toolchains are kept: software built with one names
its Python in its scripts. A toolchain is built under a lock and its marker file
is written last, so a node killed half-way leaves no toolchain that looks complete.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from partita.node.errors import SetupError
from partita.node.locks import file_lock

REQUIREMENTS = ("zc.buildout>=6,<7", "zc.recipe.egg>=2.0", "requests>=2.31", "defusedxml>=0.7",
                "jsonschema>=4.20")
BUILD_TIMEOUT = 900.0
LOCK_TIMEOUT = BUILD_TIMEOUT + 60.0
MARKER = ".partita-toolchain"
SOURCE_PACKAGES = ("slap", "recipes", "node", "master", "proxy")


@dataclass(frozen=True)
class Toolchain:
    directory: Path

    @property
    def python(self) -> Path:
        return self.directory / "bin" / "python"

    @property
    def buildout(self) -> Path:
        return self.directory / "bin" / "buildout"


def source_directory() -> Path | None:
    """Partita's source tree (a checkout or an editable install), or None for an installed wheel."""
    import partita.slap as slap

    candidate = Path(slap.__file__).resolve().parent.parent
    return candidate if (candidate / "setup.cfg").is_file() else None


def toolchain_key(source: Path | None, python: str) -> str:
    """A digest of what goes into the toolchain: Partita's code, the requirements, the Python."""
    digest = hashlib.sha256()
    digest.update("\n".join(REQUIREMENTS).encode())
    digest.update(python.encode())
    if source is None:
        digest.update(metadata.version("partita").encode())
    else:
        for name in ("setup.cfg", "pyproject.toml"):
            if (source / name).is_file():
                digest.update((source / name).read_bytes())
        for package in SOURCE_PACKAGES:
            for path in sorted((source / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    digest.update(str(path.relative_to(source)).encode())
                    digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_toolchain(root: Path, python: str, *, timeout: float = BUILD_TIMEOUT) -> Toolchain:
    """The toolchain for this version of Partita under `root`, built if missing. A node that runs
    from a toolchain (its ``bin/slapos``) uses that one."""
    running = Path(sys.prefix)
    if (running / MARKER).is_file():
        return Toolchain(running)
    source = source_directory()
    key = toolchain_key(source, python)
    toolchain = Toolchain(root / key)
    if (toolchain.directory / MARKER).is_file():
        return toolchain
    if not os.access(python, os.X_OK):
        raise SetupError(f"cannot build the toolchain: {python} is not an executable Python "
                         "(set [slapos] toolchain_python)")
    try:
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as error:
        raise SetupError(f"cannot create the toolchain directory {root}: {error.strerror}") from None
    with file_lock(root / ".lock", LOCK_TIMEOUT, "the toolchain"):
        if (toolchain.directory / MARKER).is_file():
            return toolchain  # another process built it while we waited
        _build(toolchain.directory, source, python, timeout)
    return toolchain


def _build(work: Path, source: Path | None, python: str, timeout: float) -> None:
    """Build in place (a virtual environment cannot move: its scripts name their own path); the
    marker, written last, says it is complete, and a partial one is wiped first."""
    shutil.rmtree(work, ignore_errors=True)
    deadline = time.monotonic() + timeout
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "LANG": "C.UTF-8"}
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
    if source is not None:
        run(*pip, "--no-build-isolation", str(source))
    else:
        run(*pip, f"partita=={metadata.version('partita')}")
    for path in [work, *work.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    (work / MARKER).write_text(f"built {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")

