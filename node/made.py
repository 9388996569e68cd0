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
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from partita.node.errors import SetupError
from partita.slap.fileio import open_directory, open_regular, write_at

RECORD_FILE = ".slapos-made"
RECORD_LIMIT = 1024 * 1024


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
    """The record of the node of `instance_root` (None if there is none that can be trusted)."""
    try:
        fd = open_regular(instance_root / RECORD_FILE)
    except (OSError, ValueError):
        return None
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return None
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return parse(stream.read(RECORD_LIMIT).decode("utf-8", "replace"))
    except OSError:
        return None
    finally:
        os.close(fd)


def write(instance_root: Path, made: Made) -> None:
    try:
        with open_directory(instance_root) as dir_fd:
            write_at(dir_fd, RECORD_FILE, render(made), mode=0o644)
    except OSError as error:
        raise SetupError(f"cannot write {instance_root / RECORD_FILE}: {error.strerror}") from None
