"""Writing into directories that a partition's user controls, without trusting what is there.

The node (root in root mode) writes a few files into a partition (``.timestamp``, the buildout
profile, ``.slapgrid/…``). The partition's user owns that directory and could have planted
symlinks or hard links there, or swapped a directory for a link since the node last looked. So
every path is reached through descriptors (`partita.slap.fileio`): no link the partition's user
planted is followed, above the file or at it. A write creates a fresh temporary file (never
opening an existing one) and renames it over the target, which replaces a planted link instead of
writing through it; a read takes only a regular file with one name, without blocking on a FIFO;
a directory of the node's is made, checked, chowned and chmodded through its own descriptor.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from partita.node.errors import NodeError, SetupError
from partita.slap.fileio import open_beneath, open_directory, open_regular, walk_directory, write_at

MAX_TEXT = 1 << 20  # what `read_text` reads at most: the node reads small files only


def _open_dir(directory: Path) -> int:  # for reads, which treat any failure as "missing"
    try:
        return open_beneath(directory, os.O_RDONLY | os.O_DIRECTORY)
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
        fd = open_regular(name, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
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


def read_record(path: Path, limit: int, *, owner: int | None) -> str | None:
    """The text of one of the node's own records (at most `limit` bytes, undecodable bytes
    replaced), or None when it is missing, unreadable, not a regular file with one name, or, with
    `owner`, owned by another uid: a record someone else could have written is no record."""
    try:
        fd = open_regular(path)
    except (OSError, ValueError):
        return None
    try:
        if owner is not None and os.fstat(fd).st_uid != owner:
            return None
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def write_record(directory: Path, name: str, text: str) -> None:
    """Atomically (re)place one of the node's own records, ``directory/name`` (mode 0644, this
    user's): a SetupError naming it if it cannot."""
    try:
        with open_directory(directory) as dir_fd:
            write_at(dir_fd, name, text, mode=0o644)
    except OSError as error:
        raise SetupError(f"cannot write {directory / name}: {error.strerror}") from None


def read_text(path: Path, limit: int = MAX_TEXT) -> str | None:
    """The content of a small file (at most `limit` bytes), or None when it is missing, unreadable,
    not valid UTF-8, not a regular file with one name, or reached through a link that someone
    other than the node could have planted."""
    try:
        fd = open_regular(path)
    except (OSError, ValueError):
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            return stream.read(limit).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def node_directory(path: Path, *, group: int | None, mode: int = 0o750) -> None:
    """Make `path` a real directory owned by the node (group `group`), replacing anything else.

    Everything is done through descriptors: a link, a file or a directory someone else made there
    (even between two steps) is removed or refused, never followed, chowned or chmodded."""
    try:
        parent = walk_directory(path.parent)
    except OSError as error:
        raise NodeError(f"cannot reach {path.parent}: {error.strerror}") from None
    try:
        _node_directory_at(parent, path.name, group, mode)
    except OSError as error:
        raise NodeError(f"cannot make {path}: {error.strerror}") from None
    finally:
        os.close(parent)


def _node_directory_at(parent: int, name: str, group: int | None, mode: int) -> None:
    try:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        found = None
    if found is not None and not stat.S_ISDIR(found.st_mode):
        os.unlink(name, dir_fd=parent)
    elif found is not None and found.st_uid != os.geteuid():
        shutil.rmtree(name, dir_fd=parent)  # made by someone else: not to be trusted
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        pass
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        if os.fstat(fd).st_uid != os.geteuid():  # swapped in since we looked: refuse it
            raise OSError(errno.EPERM, "someone else made it in the meantime")
        if group is not None and os.geteuid() == 0:
            os.fchown(fd, 0, group)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def owned_directory(path: Path, *, owner: tuple[int, int] | None, mode: int = 0o755) -> None:
    """Make `path` a real directory with `mode`, given to `owner` (uid, gid) when set; what it
    holds is kept, and a link or a file there is refused (a NodeError), never followed. Everything
    is done through descriptors, as in `node_directory`, for directories under one a build user
    owns."""
    try:
        parent = walk_directory(path.parent)
    except OSError as error:
        raise NodeError(f"cannot reach {path.parent}: {error.strerror}") from None
    try:
        try:
            found = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            found = None
        if found is not None and not stat.S_ISDIR(found.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory (a link is not followed)")
        try:
            os.mkdir(path.name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass
        fd = os.open(path.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except OSError as error:
        raise NodeError(f"cannot make {path}: {error.strerror}") from None
    finally:
        os.close(parent)
