"""Unix users and groups of the partitions: look them up, and (as root) create them.

A partition user is an ordinary user (not a ``--system`` one) in its own group and in the
software user's group, with the partition directory as home (not created by ``useradd``), the
shell ``/bin/sh`` and a locked password (``useradd`` leaves it locked when no password is given).

Everything is idempotent: an existing user or group is kept as it is, except that a user missing
one of the wanted groups is added to it (``usermod -a -G``). Each command runs with a deadline of
`COMMAND_TIMEOUT` seconds; a failure is a `SetupError` with one readable line.

The pure helpers (`check_name`, `useradd_command`, `missing_groups`) do no IO.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from partita.node.errors import SetupError

COMMAND_TIMEOUT = 30.0
SHELL = "/bin/sh"
MAX_NAME_LENGTH = 32
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")


@dataclass(frozen=True)
class PartitionUser:
    """A unix user: its primary group is ``groups[0]``."""

    name: str
    uid: int
    gid: int
    home: Path
    groups: tuple[str, ...]


@dataclass
class Created:
    """What `ensure_user` and `ensure_group` created themselves (not what they found, nor what a
    concurrent process created): what `slapos node unformat` may delete (`node.made`)."""

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


# -- pure helpers ------------------------------------------------------------------------------

def check_name(name: str, what: str = "user name") -> str:
    """`name` if it is a portable user or group name, else a SetupError saying why."""
    if not name or len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise SetupError(f"{name!r} is not a valid {what}: use at most {MAX_NAME_LENGTH} lower-case "
                         "letters, digits, '_' or '-', starting with a letter or '_'")
    return name


def useradd_command(name: str, home: Path, group: str, extra_groups: Sequence[str]) -> list[str]:
    """The ``useradd`` command line creating a partition user (no home created, locked password)."""
    command = ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", SHELL,
               "--gid", group, "--no-user-group"]
    if extra_groups:
        command += ["--groups", ",".join(extra_groups)]
    return [*command, name]


def missing_groups(user: PartitionUser, wanted: Iterable[str]) -> list[str]:
    """The groups of `wanted` the user is not in yet, in order."""
    return [group for group in wanted if group not in user.groups]


# -- lookups -----------------------------------------------------------------------------------

def lookup(name: str) -> PartitionUser | None:
    """The user called `name`, or None if there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return _from_passwd(entry)


def current_user() -> PartitionUser:
    """The user this process runs as (its effective uid)."""
    uid = os.geteuid()
    try:
        return _from_passwd(pwd.getpwuid(uid))
    except KeyError:
        raise SetupError(f"the current uid {uid} has no entry in the user database") from None


def group_id(name: str) -> int | None:
    """The gid of the group `name`, or None."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def all_users() -> list[str]:
    """The names of every user of the user database."""
    return [entry.pw_name for entry in pwd.getpwall()]


def group_members() -> dict[str, frozenset[str]]:
    """Each group's users: those whose primary group it is and its listed members."""
    primary: dict[int, set[str]] = {}
    for entry in pwd.getpwall():
        primary.setdefault(entry.pw_gid, set()).add(entry.pw_name)
    return {group.gr_name: frozenset({*group.gr_mem, *primary.get(group.gr_gid, ())}) for group in grp.getgrall()}


def _from_passwd(entry: pwd.struct_passwd) -> PartitionUser:
    gids = os.getgrouplist(entry.pw_name, entry.pw_gid)
    primary = _group_name(entry.pw_gid)
    others = [_group_name(gid) for gid in gids if gid != entry.pw_gid]
    return PartitionUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid,
                         home=Path(entry.pw_dir), groups=(primary, *sorted(set(others))))


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# -- changes (root only) -----------------------------------------------------------------------

def ensure_group(name: str, created: Created | None = None) -> int:
    """The gid of the group `name`, created (``groupadd``) if missing (then added to `created`)."""
    check_name(name, "group name")
    gid = group_id(name)
    if gid is not None:
        return gid
    if _run(["groupadd", name], f"cannot create the group {name}", ok_if=lambda: group_id(name) is not None):
        if created is not None:
            created.groups.append(name)
    gid = group_id(name)
    if gid is None:
        raise SetupError(f"cannot create the group {name}: groupadd succeeded but the group is missing")
    return gid


def ensure_user(name: str, home: Path, group: str, extra_groups: Sequence[str] = (),
                created: Created | None = None) -> PartitionUser:
    """The user `name`, created if missing, in its primary `group` and in every `extra_groups`.

    The groups are created if missing. An existing user keeps its home, shell and primary group;
    it is only added to the extra groups it misses. What is created is added to `created`.
    """
    check_name(name)
    ensure_group(group, created)
    for extra in extra_groups:
        ensure_group(extra, created)
    user = lookup(name)
    if user is None:
        if _run(useradd_command(name, home, group, extra_groups), f"cannot create the user {name}",
                ok_if=lambda: lookup(name) is not None) and created is not None:
            created.users.append(name)
        user = lookup(name)
        if user is None:
            raise SetupError(f"cannot create the user {name}: useradd succeeded but the user is missing")
        return user
    missing = missing_groups(user, extra_groups)
    if missing:
        _run(["usermod", "-a", "-G", ",".join(missing), name], f"cannot add {name} to {', '.join(missing)}")
        user = lookup(name) or user
    return user


def remove_user(name: str, *, remove_group: bool = True) -> None:
    """Delete the user `name` (never its files) and its group of the same name; missing is fine."""
    if lookup(name) is not None:
        _run(["userdel", name], f"cannot delete the user {name}", ok_if=lambda: lookup(name) is None)
    if remove_group and group_id(name) is not None:
        _run(["groupdel", name], f"cannot delete the group {name}", ok_if=lambda: group_id(name) is None)


def remove_group(name: str) -> None:
    """Delete the group `name`; missing is fine."""
    if group_id(name) is not None:
        _run(["groupdel", name], f"cannot delete the group {name}", ok_if=lambda: group_id(name) is None)


def _run(command: list[str], what: str, ok_if: Callable[[], bool] | None = None) -> bool:
    """Run `command`; a failure is a SetupError "<what>: <the command's last line>".

    `ok_if` tells whether the wanted state was reached anyway (another process
    created the same user at the same time): then a failure is not an error, and the result is
    False (True: the command itself did it).
    """
    executable = shutil.which(command[0]) or shutil.which(command[0], path=SYSTEM_PATH) or command[0]
    try:
        result = subprocess.run([executable, *command[1:]], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
    except FileNotFoundError:
        raise SetupError(f"{what}: {command[0]} is not installed (Debian package 'passwd')") from None
    except OSError as error:  # e.g. a directory of PATH this user may not search
        raise SetupError(f"{what}: cannot run {command[0]}: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise SetupError(f"{what}: {command[0]} did not finish within {COMMAND_TIMEOUT:g}s") from None
    if result.returncode == 0:
        return True
    if ok_if is not None and ok_if():
        return False
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    detail = lines[-1] if lines else f"exit status {result.returncode}"
    raise SetupError(f"{what}: {detail}")
