"""Atomic file writes that never follow a link: the one way Partita replaces a file.

Every writer (the node in a partition's tree or a software directory, its supervisord
configuration, promise results, the recipes' outputs, ``slapos configure local``) replaces a file
the same way: a fresh temporary file is created next to it (``O_EXCL | O_NOFOLLOW``: never an
existing file, never through a link), given its content, owner and mode through its descriptor,
then renamed over the target, which replaces a link planted there instead of writing through it.
The directory is opened once without following a link, and every step works relative to that
descriptor, so a directory swapped for a link half-way is not followed either.

Errors are `OSError`, for each caller to turn into its own exception.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def open_directory(directory: str | os.PathLike[str], *, dir_fd: int | None = None) -> Iterator[int]:
    """A descriptor of `directory` (relative to the directory `dir_fd` if given), which must be a
    real directory, not a link to one."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def write_at(dir_fd: int, name: str, data: str | bytes, *, mode: int = 0o644,
             owner: tuple[int, int] | None = None) -> None:
    """Replace `name` in the directory `dir_fd` by `data`, atomically, never following a link."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, mode: int = 0o644,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace the file `path` by `data` (see the module docstring); its directory must exist."""
    target = Path(path)
    with open_directory(target.parent) as dir_fd:
        write_at(dir_fd, target.name, data, mode=mode, owner=owner)
