"""Who may change what under ``software_root`` (issue 10), checked and repaired at every start.

Every partition's buildout runs the toolchain (``software_root/.toolchain`` by default), and the
node keeps its per-release locks, pid files and toolchain records in ``software_root/.locks``. A
user who can write a directory can rename or replace any entry in it, whoever owns the entry. So
in root mode:

- ``software_root`` belongs to root, mode 0755: the build user (``slapsoft``) cannot rename,
  replace or add anything directly in it;
- the build user owns only what it builds: ``software_root/<md5(url)>/`` and the shared cache
  (``.cache``), each made by root inside the root-owned directory;
- ``.locks`` and the toolchain directory are root's, and no one else may write them;
- the directory holding ``software_root`` and the one holding the toolchain directory are
  writable by root only (or sticky, like ``/tmp``), so neither can be renamed away either.

`secure` repairs what an older layout left (a ``software_root`` the build user owned: it is given
back to root) and refuses, with one line naming it, an entry that someone else made or replaced
(a link, or a directory not owned by root): the node does not build or deploy with what another
user could have planted. In single-user mode everything is the node's own user's: nothing to do.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from partita.node.config import NodeConfig
from partita.node.errors import SetupError

log = logging.getLogger(__name__)

ROOT_MODE = 0o755
NODE_ENTRIES = (".locks",)   # the node's own entries of software_root (the toolchain directory too, when there)


def writable_by_others(info: os.stat_result, owner: int) -> bool:
    """Whether someone other than `owner` may rename entries of the directory `info` describes
    (a sticky directory, like /tmp, lets each user rename only their own entries)."""
    if info.st_uid != owner:
        return True
    if info.st_mode & stat.S_ISVTX:
        return False
    return bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def problem(info: os.stat_result | None, owner: int) -> str | None:
    """What is wrong with an entry the node owns alone (None: nothing, or it is missing)."""
    if info is None:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "is a link"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != owner:
        return f"belongs to uid {info.st_uid}, not to the node"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is mode {stat.S_IMODE(info.st_mode):04o}: others may write it"
    return None


def secure(config: NodeConfig) -> None:
    """Root mode: give ``software_root`` to root (repair) and check the node's entries and the
    toolchain directory (a SetupError, one line, naming what another user made or may replace)."""
    if os.geteuid() != 0:
        return
    root = config.software_root
    _check_parent(root, "software_root")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # `slapos node format` makes it
    except OSError as error:
        raise SetupError(f"software_root {root} is not a directory the node can open "
                         f"({error.strerror}): run slapos node format") from None
    try:
        info = os.fstat(fd)
        if info.st_uid != 0 or info.st_gid != 0 or stat.S_IMODE(info.st_mode) != ROOT_MODE:
            os.fchown(fd, 0, 0)
            os.fchmod(fd, ROOT_MODE)
            log.warning("software_root %s was uid %s mode %04o: given back to root, mode %04o (the build "
                        "user owns only the software directories in it)", root, info.st_uid,
                        stat.S_IMODE(info.st_mode), ROOT_MODE)
        names = list(NODE_ENTRIES)
        if config.toolchain_root.parent == root:
            names.append(config.toolchain_root.name)
        for name in names:
            try:
                found: os.stat_result | None = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                found = None
            wrong = problem(found, 0)
            if wrong:
                raise SetupError(f"{root / name} {wrong}: another user may have replaced it; the node "
                                 "will not use it (remove it, the node makes it again)")
    finally:
        os.close(fd)
    if config.toolchain_root.parent != root:
        _check_toolchain_directory(config.toolchain_root)


def _check_parent(path: Path, what: str) -> None:
    try:
        info = os.stat(path.parent)
    except OSError:
        return
    if writable_by_others(info, 0):
        raise SetupError(f"{what} {path} sits in {path.parent}, which users other than root may write "
                         f"(uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}): they could rename it; "
                         "choose a directory only root writes")


def _check_toolchain_directory(path: Path) -> None:
    _check_parent(path, "the toolchain directory")
    try:
        found: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        found = None
    wrong = problem(found, 0)
    if wrong:
        raise SetupError(f"the toolchain directory {path} {wrong}: another user may have replaced it; "
                         "the node will not use it")
