"""Writing into directories that a partition's user controls, without trusting what is there.

The node (root in root mode) writes a few files into a partition (``.timestamp``, the buildout
profile, ``.slapgrid/…``). The partition's user owns that directory and could have planted
symlinks or hard links there. So every write goes through a descriptor of the directory opened
without following symlinks, creates a fresh temporary file (never opening an existing one) and
renames it over the target, which replaces a planted link instead of writing through it.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from partita.node.errors import NodeError
from partita.slap.fileio import open_directory, write_at


def _open_dir(directory: Path) -> int:  # for reads, which treat any failure as "missing"
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise NodeError(f"cannot open {directory}: {error.strerror}") from None


def write_file(directory: Path, name: str, data: str | bytes, *, mode: int = 0o644,
               owner: tuple[int, int] | None = None) -> None:
    """Atomically (re)place `directory/name` with `data`, never following links."""
    try:
        with open_directory(directory) as dir_fd:
            write_at(dir_fd, name, data, mode=mode, owner=owner)
    except OSError as error:
        raise NodeError(f"cannot write {directory / name}: {error.strerror}") from None


def read_user_file(directory: Path, name: str, limit: int) -> str | None:
    """The text of a regular file `directory/name` that a partition's user wrote, at most `limit`
    bytes; None when it is missing, is a link or anything but a regular file, or is unreadable."""
    try:
        dir_fd = _open_dir(directory)
    except NodeError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def remove_file(directory: Path, name: str) -> None:
    """Remove `directory/name` if it is there (a link is removed, never followed)."""
    try:
        dir_fd = _open_dir(directory)
    except NodeError:
        return
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise NodeError(f"cannot remove {directory / name}: {error.strerror}") from None
    finally:
        os.close(dir_fd)


def read_text(path: Path) -> str | None:
    """The content of a small file, or None when it is missing or unreadable."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def node_directory(path: Path, *, group: int | None, mode: int = 0o750) -> None:
    """Make `path` a real directory owned by the node (group `group`), replacing anything else."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir() and path.stat().st_uid != os.geteuid():
        shutil.rmtree(path)  # made by someone else: not to be trusted
    path.mkdir(mode=mode, exist_ok=True)
    if group is not None and os.geteuid() == 0:
        os.chown(path, 0, group)
    path.chmod(mode)
