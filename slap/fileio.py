"""Atomic file writes that never follow a link: the one way Partita replaces a file.

Every writer (the node in a partition's tree or a software directory, its supervisord
configuration, promise results, the recipes' outputs, ``slapos configure local``) replaces a file
the same way: a fresh temporary file is created next to it (``O_EXCL | O_NOFOLLOW``: never an
existing file, never through a link), given its content, owner and mode through its descriptor,
then renamed over the target, which replaces a link planted there instead of writing through it.
The directory is opened once without following a link, and every step works relative to that
descriptor, so a directory swapped for a link half-way is not followed either.

The directories above it are walked one at a time from ``/`` (`walk_directory`), and a link on
the way is followed only when whoever could have planted it is the caller or root: the link and
the directory holding it belong to one of them, and nobody else may write that directory (unless
it is sticky). A link a partition's user planted (``.slapgrid`` swapped for a link to another
partition, say) is refused, while an administrator's ``/srv -> /data/srv`` is followed.

Errors are `OSError`, for each caller to turn into its own exception.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path


MAX_LINKS = 40
_SEARCH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _trusted_link(dir_fd: int, name: str) -> bool:
    """Whether `name` in `dir_fd` is a link only the caller or root could have put there."""
    link = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISLNK(link.st_mode):
        return False
    owners = {0, os.geteuid()}
    directory = os.fstat(dir_fd)
    open_to_others = directory.st_mode & 0o022 and not directory.st_mode & stat.S_ISVTX
    return link.st_uid in owners and directory.st_uid in owners and not open_to_others


def walk_directory(directory: str | os.PathLike[str], *, dir_fd: int | None = None) -> int:
    """An ``O_PATH`` descriptor of `directory` (relative to `dir_fd`, else to the working directory),
    reached one component at a time, following a link only when `_trusted_link` says so. The
    caller closes it; it serves as the ``dir_fd`` of other calls (not for reading)."""
    path = os.fspath(directory)
    if dir_fd is None:
        start = "/" if os.path.isabs(path) else "."
        fd = os.open(start, _SEARCH)
    else:
        fd = os.open(".", _SEARCH, dir_fd=dir_fd)
    todo = _components(path)
    hops = 0
    try:
        while todo:
            name = todo.pop(0)
            try:
                following = os.open(name, _SEARCH | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:
                if not _trusted_link(fd, name):
                    raise OSError(errno.ELOOP, "a link not made by this node's user or root is on the way",
                                  path) from None
                hops += 1
                if hops > MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many links", path) from None
                target = os.readlink(name, dir_fd=fd)
                todo[:0] = _components(target)
                if target.startswith("/"):
                    os.close(fd)
                    fd = -1
                    fd = os.open("/", _SEARCH)
                continue
            os.close(fd)
            fd = following
        return fd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


@contextlib.contextmanager
def open_directory(directory: str | os.PathLike[str], *, dir_fd: int | None = None) -> Iterator[int]:
    """A descriptor of `directory` (relative to the directory `dir_fd` if given), which must be a
    real directory, not a link to one; the directories above it are walked as `walk_directory`
    does."""
    fd = open_beneath(directory, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def open_beneath(path: str | os.PathLike[str], flags: int, mode: int = 0o600, *,
                 dir_fd: int | None = None) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``: the last component is never a link, and the
    directories above it are reached as `walk_directory` does."""
    head, name = os.path.split(os.fspath(path))
    if name in ("", ".", ".."):
        raise OSError(errno.EINVAL, "not a file name", os.fspath(path))
    parent = walk_directory(head or ".", dir_fd=dir_fd)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    finally:
        os.close(parent)


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o600, *,
                 dir_fd: int | None = None) -> int:
    """`open_beneath` for a regular file with one name: a FIFO, a device, a directory or a hard
    link to another file is refused (``EINVAL``) without blocking; the descriptor blocks again."""
    fd = open_beneath(path, flags | os.O_NONBLOCK, mode, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            raise OSError(errno.EINVAL, "not a regular file with one name", os.fspath(path))
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


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
