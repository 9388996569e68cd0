"""What `slapos node format` made on this machine, so that `slapos node unformat` removes that and
nothing else.

Format keeps the record ``instance_root/.slapos-made`` (root's, in the root-owned instance root;
JSON), root mode only:

- ``users``: the users the node uses (its software user and its partitions' users), created or
  found: another node's unformat keeps a user this node still uses;
- ``created_users``, ``created_groups``: those format created (``useradd``, ``groupadd``), and only
  those: a user or group that existed before (another node's ``slapsoft``, an operator's) is never
  listed, so never deleted;
- ``directories``: the instance and software roots, when format created them.

Each format adds to what the record says (a user created by an earlier format stays created);
`merge` is pure. A record that is missing, unreadable, not a regular file or not root's counts as
empty: nothing is deleted on its word.

Several nodes on one machine may share a user (the default software user ``slapsoft``): the
first node's format creates it, the others find it. So format also notes what it creates
machine-wide, in ``/var/lib/partita/created`` (root's, mode 0700: one file per user or group,
``user.<name>`` or ``group.<name>``, holding its uid or gid), and unformat deletes a user the
node uses that some node created (and whose id is still the one noted) once no other node needs
it, whichever node goes last; it then forgets it there.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from partita.node import files
from partita.node.errors import SetupError
from partita.slap.fileio import open_directory, write_at

RECORD_FILE = ".slapos-made"
RECORD_LIMIT = 1024 * 1024
MACHINE_DIRECTORY = Path("/var/lib/partita/created")


@dataclass(frozen=True)
class Made:
    users: tuple[str, ...] = ()
    created_users: tuple[str, ...] = ()
    created_groups: tuple[str, ...] = ()
    directories: tuple[str, ...] = ()


# -- pure --------------------------------------------------------------------------------------

def merge(before: Made | None, users: Iterable[str], created_users: Iterable[str] = (),
          created_groups: Iterable[str] = (), directories: Iterable[str] = ()) -> Made:
    """The record after a format: the users it uses now, and everything made so far."""
    old = before or Made()
    return Made(users=tuple(sorted(set(users))),
                created_users=tuple(sorted({*old.created_users, *created_users})),
                created_groups=tuple(sorted({*old.created_groups, *created_groups})),
                directories=tuple(sorted({*old.directories, *directories})))


def render(made: Made) -> str:
    return json.dumps(asdict(made), indent=1, sort_keys=True) + "\n"


def parse(text: str | None) -> Made | None:
    try:
        data: Any = json.loads(text or "")
        return Made(*(tuple(str(item) for item in data.get(key, ()))
                      for key in ("users", "created_users", "created_groups", "directories")))
    except (ValueError, TypeError, AttributeError):
        return None


# -- IO ----------------------------------------------------------------------------------------

def read(instance_root: Path) -> Made | None:
    """The record of the node of `instance_root` (None if there is none that can be trusted: it
    must be this user's own)."""
    return parse(files.read_record(instance_root / RECORD_FILE, RECORD_LIMIT, owner=os.geteuid()))


def write(instance_root: Path, made: Made) -> None:
    files.write_record(instance_root, RECORD_FILE, render(made))


# -- the machine's list ------------------------------------------------------------------------

def machine_created(directory: Path = MACHINE_DIRECTORY) -> dict[str, int]:
    """What some node created on this machine: ``user.<name>`` and ``group.<name>`` -> its id
    ({} when there is no list, or it is not root's alone)."""
    found: dict[str, int] = {}
    try:
        with open_directory(directory) as dir_fd:
            if not _private(dir_fd):
                return {}
            for name in os.listdir(dir_fd):
                if name.startswith(("user.", "group.")):
                    text = _read_at(dir_fd, name)
                    if text is not None and text.strip().isdigit():
                        found[name] = int(text.strip())
    except OSError:
        return {}
    return found


def note_created(entries: dict[str, int], directory: Path = MACHINE_DIRECTORY) -> None:
    """Add ``user.<name>`` / ``group.<name>`` -> id to the machine's list."""
    if not entries:
        return
    try:
        directory.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        with open_directory(directory) as dir_fd:
            if not _private(dir_fd):
                raise SetupError(f"refusing {directory}: it must be root's with mode 0700")
            for name, number in sorted(entries.items()):
                write_at(dir_fd, name, f"{number}\n", mode=0o600)
    except OSError as error:
        raise SetupError(f"cannot note what format created in {directory}: {error.strerror}") from None


def forget_created(names: Iterable[str], directory: Path = MACHINE_DIRECTORY) -> None:
    """Take ``user.<name>`` / ``group.<name>`` entries off the machine's list."""
    names = list(names)
    if not names:
        return
    try:
        with open_directory(directory) as dir_fd:
            for name in names:
                try:
                    os.unlink(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    pass
    except FileNotFoundError:
        return
    except OSError as error:
        raise SetupError(f"cannot update {directory}: {error.strerror}") from None


def _private(dir_fd: int) -> bool:
    info = os.fstat(dir_fd)
    return info.st_uid == 0 and not info.st_mode & 0o077


def _read_at(dir_fd: int, name: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.read(fd, 64).decode("ascii", "replace") if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)
