"""The wheelhouse: every wheel the hosts install from, made on the machine running ``up`` (which
reaches a package index) and cached under ``--dir`` so that a second ``up`` downloads nothing.

``<wheelhouse>/wheels/`` holds:

- a wheel of the running Partita: built (``pip wheel --no-deps``) from a copy of its project
  directory when it runs from a checkout, rebuilt only when a source file changed (its digest is
  kept in ``.partita-source``); when Partita was installed from a wheel file, that wheel (from the
  installation's ``direct_url.json``);
- the wheels of Partita's dependencies and of the node toolchain's requirements
  (`partita.node.toolchain.REQUIREMENTS`) with theirs, made by ``pip wheel`` in a virtual
  environment of the hosts' Python (Debian's ``/usr/bin/python3.11``), so that compiled wheels
  match the hosts; made again only when the requirement list or the Python changes
  (``.requirements``).

``<wheelhouse>/releases/`` holds the wheels the local software releases given to ``up`` pin in
their ``partita:pip`` parts (`partita.slap.pins`), downloaded checked against their sha256: they go
to the master's package index only (nodes build those releases from it), not to every host.

`digest` names the wheelhouse's content: a host whose installed digest matches skips the install.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from partita.experiment.errors import WheelhouseError
from partita.node.toolchain import REQUIREMENTS as TOOLCHAIN_REQUIREMENTS
from partita.slap.pins import PinError, release_requirements

DISTRIBUTION = "partita"
PACKAGING = ("setup.py", "setup.cfg", "pyproject.toml", "README.md")
BUILD_TIMEOUT = 1800.0
SOURCE_MARKER = ".partita-source"
REQUIREMENTS_MARKER = ".requirements"
RELEASES_MARKER = ".release-requirements"


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path            # the wheels
    partita_wheel: Path
    toolchain_requirements: tuple[str, ...]
    release_wheels: Path | None = None  # the pins of the local releases given, for the master's index

    @property
    def digest(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.directory.glob("*.whl")):
            digest.update(f"{path.name}\n{path.stat().st_size}\n".encode())
        digest.update(_file_digest(self.partita_wheel).encode())
        return digest.hexdigest()[:32]


def ensure(root: Path, python: str, releases: Sequence[Path] = ()) -> Wheelhouse:
    """The wheelhouse under `root` for hosts running `python`, made or completed, with the pinned
    wheels of the local release profiles `releases`."""
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    partita = _partita_wheel(root, wheels)
    requirements = [*dependencies(), *TOOLCHAIN_REQUIREMENTS]
    key = json.dumps({"python": python, "requirements": requirements})
    marker = root / REQUIREMENTS_MARKER
    if not marker.is_file() or marker.read_text() != key:
        _pip_wheels(root, python, requirements, wheels)
        marker.write_text(key)
    return Wheelhouse(wheels, partita, tuple(TOOLCHAIN_REQUIREMENTS), _release_wheels(root, python, releases))


def _release_wheels(root: Path, python: str, releases: Sequence[Path]) -> Path | None:
    """``root/releases``, holding every wheel `releases` pin (downloaded again only when the pins
    or the Python change); None when they pin nothing."""
    try:
        text = "".join(release_requirements(profile) for profile in releases)
    except PinError as error:
        raise WheelhouseError(str(error)) from None
    if not text:
        return None
    directory = root / "releases"
    key = json.dumps({"python": python, "requirements": text})
    marker = root / RELEASES_MARKER
    if not marker.is_file() or marker.read_text() != key:
        with tempfile.TemporaryDirectory(prefix=".releases-", dir=root) as staging:
            listing = Path(staging) / "requirements.txt"
            listing.write_text(text)
            _run([str(_builder(root, python) / "bin" / "pip"), "download", "--quiet", "--only-binary=:all:",
                  "--no-deps", "--require-hashes", "--dest", str(Path(staging) / "wheels"), "-r", str(listing)],
                 "the releases' pinned wheels")
            shutil.rmtree(directory, ignore_errors=True)
            os.rename(Path(staging) / "wheels", directory)
        marker.write_text(key)
    return directory


def dependencies() -> list[str]:
    """Partita's requirements without its extras."""
    found = []
    for requirement in metadata.requires(DISTRIBUTION) or []:
        if "extra ==" not in requirement.replace("extra==", "extra =="):
            found.append(requirement.split(";")[0].strip())
    return found


def project_directory() -> Path | None:
    """The checkout the running Partita comes from, None if it is installed from a wheel."""
    import partita.experiment as here
    root = Path(here.__file__).resolve().parents[1]
    return root if (root / "setup.py").is_file() and (root / "setup.cfg").is_file() else None


def _partita_wheel(root: Path, wheels: Path) -> Path:
    project = project_directory()
    if project is None:
        return _installed_wheel(wheels)
    files = _source_files(project)
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(project)}\n".encode() + path.read_bytes())
    marker = root / SOURCE_MARKER
    current = sorted(wheels.glob(f"{DISTRIBUTION}-*.whl"))
    if current and marker.is_file() and marker.read_text() == digest.hexdigest():
        return current[-1]
    with tempfile.TemporaryDirectory(prefix="partita-wheel-") as temporary:
        copy = Path(temporary) / "project"
        for path in files:
            target = copy / path.relative_to(project)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        built = Path(temporary) / "built"
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *_isolation(), "--wheel-dir", str(built),
              str(copy)], "the Partita wheel")
        made = sorted(built.glob(f"{DISTRIBUTION}-*.whl"))
        if not made:
            raise WheelhouseError("pip made no Partita wheel")
        for old in current:
            old.unlink()
        shutil.copy2(made[0], wheels / made[0].name)
    marker.write_text(digest.hexdigest())
    return wheels / made[0].name


def _isolation() -> list[str]:
    """``--no-build-isolation`` when this environment has the build backend (no download, faster)."""
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError:
        return []
    return ["--no-build-isolation"]


def _source_files(project: Path) -> list[Path]:
    files = [project / name for name in PACKAGING if (project / name).is_file()]
    for folder in sorted(project.iterdir()):
        if folder.is_dir() and (folder / "__init__.py").is_file() and folder.name != "tests":
            files += [path for path in folder.rglob("*")
                      if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    return sorted(files)


def _installed_wheel(wheels: Path) -> Path:
    """The wheel file Partita was installed from (``direct_url.json``), copied into `wheels`."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or ""
        url = json.loads(text).get("url", "") if text else ""
    except (metadata.PackageNotFoundError, ValueError):
        url = ""
    path = Path(unquote(urlparse(url).path)) if url.startswith("file://") else None
    if path is None or path.suffix != ".whl" or not path.is_file():
        raise WheelhouseError("Partita is neither a checkout nor installed from a wheel file this machine "
                              "still has: install it with 'pip install FILE.whl' and keep the file")
    target = wheels / path.name
    if not target.is_file() or _file_digest(target) != _file_digest(path):
        shutil.copy2(path, target)
    return target


def _pip_wheels(root: Path, python: str, requirements: list[str], wheels: Path) -> None:
    """``pip wheel`` of `requirements` in a virtual environment of `python` (the hosts')."""
    _run([str(_builder(root, python) / "bin" / "pip"), "wheel", "--quiet", "--wheel-dir", str(wheels), *requirements],
         "the dependencies' wheels")


def _builder(root: Path, python: str) -> Path:
    """A virtual environment of `python` (the hosts'), whose pip picks wheels that match them."""
    builder = root / ".build-python"
    if not (builder / "bin" / "pip").is_file():
        if not Path(python).is_file():
            raise WheelhouseError(f"{python} (the hosts' Python) is not on this machine: the wheels are "
                                  "made with it (give --python)")
        _run([python, "-m", "venv", str(builder)], f"a virtual environment of {python}")
    return builder


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise WheelhouseError(f"{what}: not made within {BUILD_TIMEOUT:g} s")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise WheelhouseError(f"{what}: {' / '.join(tail) or done.returncode}")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
