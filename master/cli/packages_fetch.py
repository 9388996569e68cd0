"""``slapos master packages fetch``: fill the master's package index (issue 13).

Runs ``pip download --only-binary=:all:`` for the requirements given (arguments, ``-r`` files)
and, with ``--toolchain``, for what a node's toolchain installs (`slap.toolchain`), with their
dependencies, for the Python of the nodes (``--python-version``, default 3.11; ``--platform`` if
they differ from this machine). pip runs with this machine's configuration (its index, proxy,
certificates): the master fetches, its nodes need not reach anything but it. ``--release FILE``
adds the wheels a release's ``partita:pip`` parts pin (`slap.pins`, read from its profile and the
local profiles it extends), each checked against its pinned sha256 (pip's ``--require-hashes``,
without dependencies: the pins are complete, as the recipe installs them).

Files are downloaded into a hidden directory of ``[slapmaster] packages_directory`` (never
served, `master.services.packages`) and then renamed into it, so a node never sees half a file.
A pip that fails is one error line (its last lines), and nothing is added.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from partita.master.services.packages import SUFFIXES
from partita.slap.config import CFG_HELP, master_config, read_config
from partita.slap.errors import PartitaError
from partita.slap.pins import release_requirements
from partita.slap.toolchain import REQUIREMENTS

PIP_TIMEOUT = 1800.0
DEFAULT_PYTHON = "3.11"


class FetchFailed(PartitaError):
    code = "FETCH_FAILED"


def download_command(requirements: Sequence[str], files: Sequence[str], dest: str, python_version: str,
                     platforms: Sequence[str]) -> list[str]:
    """The pip command (pure)."""
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", dest,
               "--python-version", python_version, "--disable-pip-version-check", "--no-input"]
    for platform in platforms:
        command += ["--platform", platform]
    for path in files:
        command += ["-r", path]
    return [*command, *requirements]


def pinned_command(requirements_file: str, dest: str, python_version: str, platforms: Sequence[str]) -> list[str]:
    """The pip command for a release's pins (pure): hashes required, no dependencies."""
    return [*download_command((), (requirements_file,), dest, python_version, platforms), "--require-hashes",
            "--no-deps"]


@click.command("fetch")
@click.option("--cfg", metavar="FILE", help=CFG_HELP)
@click.option("--toolchain", is_flag=True, help="The packages of a node's toolchain (buildout, recipes' needs).")
@click.option("-r", "--requirement", "requirement_files", multiple=True, metavar="FILE",
              help="Requirements from FILE (pip's format); may be repeated.")
@click.option("--release", "releases", multiple=True, metavar="FILE",
              help="The wheels a software release pins (its software.cfg); may be repeated.")
@click.option("--python-version", default=DEFAULT_PYTHON, show_default=True,
              help="The Python of the nodes (their toolchain_python).")
@click.option("--platform", "platforms", multiple=True, metavar="TAG",
              help="The nodes' platform tag (e.g. manylinux2014_x86_64) if not this machine's; may be repeated.")
@click.argument("requirements", nargs=-1)
def command(cfg: str | None, toolchain: bool, requirement_files: tuple[str, ...], releases: tuple[str, ...],
            python_version: str, platforms: tuple[str, ...], requirements: tuple[str, ...]) -> None:
    """Download wheels of REQUIREMENTS (and their dependencies) into the master's package index."""
    wanted = [*(REQUIREMENTS if toolchain else ()), *requirements]
    if not wanted and not requirement_files and not releases:
        raise click.UsageError("name requirements, -r FILE, --release FILE or --toolchain")
    for path in requirement_files:
        if not os.path.isfile(path):
            raise FetchFailed(f"no requirements file {path}")
    pinned = [release_requirements(Path(path)) for path in releases]  # a bad profile: one line, nothing fetched
    directory = Path(master_config(read_config(cfg)).packages_directory)
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".fetch-", dir=directory)
    except OSError as error:
        raise FetchFailed(f"cannot write the packages directory {directory}: {error.strerror}") from None
    try:
        if wanted or requirement_files:
            _download(download_command(wanted, requirement_files, staging, python_version, platforms))
        for number, text in enumerate(pinned):
            if text:
                listing = Path(staging) / f".release-{number}.txt"  # not a package name: never moved
                listing.write_text(text)
                _download(pinned_command(str(listing), staging, python_version, platforms))
        added = _move_into(Path(staging), directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"{len(added)} files in {directory}: {', '.join(added) if added else 'none'}")


def _download(command: list[str]) -> None:
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise FetchFailed(f"pip download took more than {PIP_TIMEOUT:g}s (nothing was added)") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
        raise FetchFailed("pip download failed (nothing was added): " + " | ".join(errors[-2:]))


def _move_into(staging: Path, directory: Path) -> list[str]:
    """Rename the downloaded package files into `directory` (same filesystem: atomic)."""
    names = sorted(entry.name for entry in os.scandir(staging)
                   if entry.is_file(follow_symlinks=False) and entry.name.endswith(SUFFIXES))
    for name in names:
        os.chmod(staging / name, 0o644)
        os.rename(staging / name, directory / name)
    return names
