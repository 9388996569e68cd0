"""`node.users`: the pure helpers, and real users and groups created and removed (root)."""
from __future__ import annotations

import grp
import os
import pwd
import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node import users
from partita.node.errors import SetupError


def random_base(prefix: str = "ptu") -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase, k=5))


def test_check_name_accepts_portable_names_only() -> None:
    assert users.check_name("slapuser12") == "slapuser12"
    assert users.check_name("_x-1") == "_x-1"
    for bad in ("", "1user", "Slap", "a b", "a:b", "x" * 33, "../x"):
        with pytest.raises(SetupError, match="is not a valid user name"):
            users.check_name(bad)


def test_useradd_command_makes_a_locked_user_without_home_creation() -> None:
    command = users.useradd_command("slapuser0", Path("/srv/slapgrid/slappart0"), "slapuser0", ["slapsoft"])
    assert command == ["useradd", "--no-create-home", "--home-dir", "/srv/slapgrid/slappart0",
                       "--shell", "/bin/sh", "--gid", "slapuser0", "--no-user-group",
                       "--groups", "slapsoft", "slapuser0"]
    assert "--groups" not in users.useradd_command("u", Path("/h"), "u", [])
    assert not any(part.startswith(("-p", "--password")) for part in command)


def test_missing_groups_keeps_the_wanted_order() -> None:
    user = users.PartitionUser("u", 1, 1, Path("/h"), ("u", "b"))
    assert users.missing_groups(user, ["a", "b", "c"]) == ["a", "c"]


def test_lookup_and_current_user() -> None:
    me = users.current_user()
    assert me.uid == os.geteuid() and me.name == pwd.getpwuid(os.geteuid()).pw_name
    assert users.lookup(me.name) == me
    assert users.lookup("ptnobody-such-user") is None


def test_a_failing_command_is_one_readable_line() -> None:
    with pytest.raises(SetupError, match=r"^doing x: exit status 1$"):
        users._run(["false"], "doing x")
    with pytest.raises(SetupError, match="not installed|cannot run"):
        users._run(["ptnot-a-command"], "doing y")


@pytest.fixture
def names() -> Iterator[tuple[str, str, str]]:
    base = random_base()
    user, extra, other = base + "0", base + "s", base + "x"
    yield user, extra, other
    users.remove_user(user)
    for group in (extra, other):
        if users.group_id(group) is not None:
            users._run(["groupdel", group], "cleanup")


def _shadow_field(name: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":")[1]
    raise AssertionError(f"{name} not in /etc/shadow")


@pytest.mark.root
def test_ensure_user_creates_then_keeps_and_completes_groups(names: tuple[str, str, str], tmp_path: Path) -> None:
    name, extra, other = names
    home = tmp_path / "slappart0"
    created = users.ensure_user(name, home, name, [extra])
    assert created.groups == (name, extra) and created.home == home
    entry = pwd.getpwnam(name)
    assert entry.pw_shell == "/bin/sh" and entry.pw_dir == str(home) and entry.pw_gid == grp.getgrnam(name).gr_gid
    assert not home.exists()  # no home created
    assert _shadow_field(name).startswith("!")  # locked password
    assert users.ensure_user(name, home, name, [extra]) == created  # idempotent
    completed = users.ensure_user(name, home, name, [extra, other])  # usermod -a -G
    assert completed.uid == created.uid and completed.groups == (name, extra, other)
    assert name in grp.getgrnam(other).gr_mem


@pytest.mark.root
def test_ensure_user_reports_only_what_it_created(names: tuple[str, str, str], tmp_path: Path) -> None:
    name, extra, other = names
    users.ensure_group(extra)  # there before
    made = users.Created()
    users.ensure_user(name, tmp_path, name, [extra, other], made)
    assert (made.users, made.groups) == ([name], [name, other])
    again = users.Created()
    users.ensure_user(name, tmp_path, name, [extra, other], again)
    assert (again.users, again.groups) == ([], [])
    assert name in users.group_members()[extra] and name in users.all_users()


@pytest.mark.root
def test_ensure_group_is_idempotent(names: tuple[str, str, str]) -> None:
    _, extra, _ = names
    gid = users.ensure_group(extra)
    assert users.ensure_group(extra) == gid == grp.getgrnam(extra).gr_gid
    with pytest.raises(SetupError, match="not a valid group name"):
        users.ensure_group("Bad Group")


@pytest.mark.root
def test_remove_user_removes_user_and_group_and_tolerates_missing(names: tuple[str, str, str], tmp_path: Path) -> None:
    name, _, _ = names
    users.ensure_user(name, tmp_path, name)
    users.remove_user(name)
    assert users.lookup(name) is None and users.group_id(name) is None
    users.remove_user(name)
