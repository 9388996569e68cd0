"""`slapos node unformat`: undo what `slapos node format` made on this machine (issue 13), so that
an experiment leaves its hosts as it found them.

It first refuses, changing nothing, while something of the node runs:

- ``slapos node run`` (or ``node software|instance|report``) holds its lock: stop it first;
- the node's supervisord answers on its socket, or a process of one of the node's users runs
  (an instance's service, or what it left behind: a daemon that double-forked): with ``--stop``,
  supervisord is shut down and each such process killed (SIGKILL through a pidfd, named in the
  output), else the message names them and says to use ``--stop``;
- the node's record of addresses was written in another network namespace: run it there.

Then it removes, each on the word of a record root keeps in the root-owned instance root (never
on a file a partition user can write)::

    what                                     on whose word                         kept when
    partitions instance_root/<base>N         the directory's name                  -
    the node's files there (etc, var,        fixed names (`NODE_FILES`)            anything else is
      sv.sock, locks, records)                                                     kept (and named)
    addresses on the interface               the address record (`node.claims`),   another node claims
                                             in the node's networks, never the     it; not on the
                                             interface's own address               interface any more
    the IPv6 ranges' local routes            the address record's ranges           not routed any more
    the node's claims in the registry        the claims naming its instance root   -
    users, groups                            what format created (`node.made`):    another node's record
                                             this node's, or another node's that   uses the user, or the
                                             this node uses (a shared slapsoft)    group still has a
                                                                                   member that stays
    the instance root                        `node.made` (format created it)       it still holds a file
    --all: software_root (built software,    the configuration                     a toolchain or cache
      and the toolchain and caches in it)                                          directory outside it

Partition directories (and with ``--all`` software_root) are deleted through descriptors, never
following a link a partition user planted (`shutil.rmtree` with ``dir_fd``): a link to a file
outside is removed, not what it points to. Every step is idempotent: a second run finds nothing
and says so. ``--dry-run`` says what it would do and does nothing.

Pure: `plan`, `blocker`, `what_runs`, `describe`. IO: `gather`, `gather_running`, `unformat`.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from partita.node import claims, made, network, users
from partita.node.config import NodeConfig
from partita.node.errors import NodeError, SupervisorError
from partita.node.format import LOCK_FILE as FORMAT_LOCK, partition_index
from partita.node.listeners import kill_orphans, read_processes
from partita.node.locks import try_lock
from partita.node.supervisor import Supervisor
from partita.slap.errors import PartitaError
from partita.slap.fileio import open_directory

NODE_FILES = ("etc", "var", "sv.sock", FORMAT_LOCK)
RECORDS = (claims.RECORD_FILE, made.RECORD_FILE)  # removed last: a run cut short can be run again
COMMAND_KINDS = ("software", "instance", "report")  # `slapos node run` holds all three
KILL_ROUNDS = 20
_TEMPORARY = re.compile(r"^\.(\.slapos-addresses|\.slapos-made|\.slapos-resource)\.[0-9a-f]+\.tmp$")


class UnformatError(NodeError):
    code = "NODE_UNFORMAT"


# -- plain data ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What unformat found on the machine (`gather`)."""

    instance_root: str
    partition_base_name: str
    ipv4_network: str
    entries: Mapping[str, str] = field(default_factory=dict)  # instance_root's names -> "dir", "link", "file"
    record: claims.Record | None = None
    netns: int = 0
    present: tuple[network.InterfaceAddress, ...] = ()  # on the record's interface
    routes: frozenset[str] = frozenset()  # the IPv6 local routes there are
    claims_here: Mapping[str, claims.Claim] = field(default_factory=dict)  # this namespace's, by address
    made: made.Made | None = None
    existing_users: frozenset[str] = frozenset()
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # each group -> its users
    used_elsewhere: frozenset[str] = frozenset()  # users other nodes' records use
    machine_users: frozenset[str] = frozenset()  # users some node created (`made.machine_created`)
    machine_groups: frozenset[str] = frozenset()
    software_root: str = ""
    software_root_exists: bool = False
    software_root_made: bool = False  # format created it (`node.made`)
    outside: tuple[tuple[str, str], ...] = ()  # (what, path) of toolchain or cache outside software_root


@dataclass
class Plan:
    interface: str = ""
    addresses: list[tuple[str, int]] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    claims: list[claims.Claim] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # the node's files in instance_root (records last)
    instance_root: str = ""  # to remove once empty
    software_root: str = ""  # --all
    software_root_whole: bool = False  # the directory too, not only what it holds
    kept: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.addresses or self.routes or self.claims or self.users or self.groups
                    or self.partitions or self.files or self.instance_root or self.software_root)


@dataclass(frozen=True)
class Running:
    """What runs of the node (`gather_running`)."""

    supervisord: bool
    processes: tuple[tuple[int, str], ...] = ()  # (pid, user)


@dataclass
class Outcome:
    plan: Plan
    stopped: list[str] = field(default_factory=list)
    dry_run: bool = False


# -- pure ----------------------------------------------------------------------------------------

def blocker(running: Running, socket: str) -> str | None:
    """Why unformat refuses to go on without ``--stop`` (None: nothing of the node runs)."""
    parts = what_runs(running, socket)
    if not parts:
        return None
    return "; ".join(parts) + ": stop them first, or run slapos node unformat --stop"


def what_runs(running: Running, socket: str) -> list[str]:
    """What of the node runs, in words (pure)."""
    parts = []
    if running.supervisord:
        parts.append(f"the node's supervisord is running (socket {socket})")
    if running.processes:
        shown = ", ".join(f"{pid} ({user})" for pid, user in running.processes[:5])
        more = f" and {len(running.processes) - 5} more" if len(running.processes) > 5 else ""
        parts.append(f"processes of the node's users run: {shown}{more}")
    return parts


def plan(facts: Facts, everything: bool = False) -> Plan:
    """What to remove, and what to keep (with why), from what was found."""
    result = Plan()
    _plan_instance_root(facts, result)
    _plan_network(facts, result)
    _plan_users(facts, result)
    if everything and facts.software_root_exists:
        result.software_root = facts.software_root
        result.software_root_whole = facts.software_root_made
        result.kept += [f"kept {what} {path} (outside software_root: another node may share it)"
                        for what, path in facts.outside]
    elif facts.software_root_exists:
        result.kept.append(f"kept software_root {facts.software_root} (built software, toolchain, caches: "
                           "--all removes them)")
    return result


def _plan_instance_root(facts: Facts, result: Plan) -> None:
    foreign = []
    for name, kind in sorted(facts.entries.items()):
        if kind == "dir" and partition_index(facts.partition_base_name, name) is not None:
            result.partitions.append(name)
        elif name in NODE_FILES or _TEMPORARY.match(name):
            result.files.append(name)
        elif name not in RECORDS:
            foreign.append(name)
    result.files += [name for name in RECORDS if name in facts.entries]
    if foreign:
        result.kept.append(f"kept in {facts.instance_root}: {', '.join(foreign[:5])} (not the node's)")
    if facts.made is not None and facts.instance_root in facts.made.directories and not foreign:
        result.instance_root = facts.instance_root


def _plan_network(facts: Facts, result: Plan) -> None:
    record = facts.record
    if record is None or record.netns != facts.netns:
        return
    result.interface = record.interface
    networks = [ipaddress.ip_network(facts.ipv4_network, strict=False)]
    if record.ipv6_network:
        networks.append(ipaddress.ip_network(record.ipv6_network, strict=False))
    present = {ipaddress.ip_address(a.address): a.prefixlen for a in facts.present}
    base = ipaddress.ip_address(record.ipv6_base) if record.ipv6_base else None
    for text in record.addresses:
        address = _address(text)
        if address is None or address == base or address not in present:
            continue
        if not any(net.version == address.version and address in net for net in networks):
            continue
        claim = facts.claims_here.get(str(address))
        if claim is not None and claim.instance_root != facts.instance_root:
            result.kept.append(f"kept {address} on {record.interface} (claimed by the node of {claim.instance_root})")
            continue
        result.addresses.append((str(address), present[address]))
    for prefix in sorted(set(record.ranges.values())):
        try:
            if str(ipaddress.IPv6Network(prefix)) in facts.routes:
                result.routes.append(str(ipaddress.IPv6Network(prefix)))
        except ValueError:
            continue
    result.claims = sorted((c for c in facts.claims_here.values() if c.instance_root == facts.instance_root),
                           key=lambda c: c.name)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _plan_users(facts: Facts, result: Plan) -> None:
    """The users and groups format created (this node's, or one this node uses that another
    node's format created), less those another node still needs."""
    record = facts.made or made.Made()
    used = set(record.users)
    created_users = set(record.created_users) | (used & facts.machine_users)
    created_groups = set(record.created_groups) | (used & facts.machine_groups)
    leaving = {u for u in created_users if u in facts.existing_users}
    kept: dict[str, str] = {u: "another node uses it" for u in leaving & facts.used_elsewhere}
    for user in sorted(leaving - set(kept)):  # userdel deletes the user's group of its name
        if user in facts.members and user not in created_groups:
            kept[user] = f"its group {user} was there before format"
    groups = {g for g in created_groups if g in facts.members}
    kept_groups: dict[str, str] = {}
    changed = True
    while changed:  # a kept user keeps its groups, a kept group keeps its user
        changed = False
        staying = facts.existing_users - (leaving - set(kept))
        for group in sorted(groups - set(kept_groups)):
            others = sorted(facts.members.get(group, frozenset()) & staying)
            if others:
                kept_groups[group] = f"the group of {', '.join(others[:3])}, who stay"
                changed = True
        for user in sorted(leaving - set(kept)):
            if user in kept_groups:
                kept[user] = f"its group stays: {kept_groups[user]}"
                changed = True
    # members first: a group's user goes once its members are gone (userdel then drops the group)
    result.users = sorted(leaving - set(kept), key=lambda u: (len(facts.members.get(u, ())), u))
    result.groups = sorted(groups - set(kept_groups))
    result.kept += [f"kept user {user} ({why})" for user, why in sorted(kept.items())]
    result.kept += [f"kept group {group} ({why})" for group, why in sorted(kept_groups.items())
                    if group not in kept]


def describe(outcome: Outcome) -> list[str]:
    """What the command prints: one line per thing removed (or that would be), then what stays."""
    verb = "would remove" if outcome.dry_run else "removed"
    p = outcome.plan
    lines = list(outcome.stopped)
    lines += [f"{verb} partition {name}" for name in p.partitions]
    lines += [f"{verb} address {address}/{prefixlen} from {p.interface}" for address, prefixlen in p.addresses]
    lines += [f"{verb} route local {prefix} dev lo" for prefix in p.routes]
    lines += [f"{verb} claim on {claim.address}" for claim in p.claims]
    lines += [f"{verb} user {user}" for user in p.users]
    lines += [f"{verb} group {group}" for group in p.groups]
    lines += [f"{verb} {name}" for name in p.files]
    if p.software_root:
        lines.append(f"{verb} software_root {p.software_root}")
    if p.instance_root:
        lines.append(f"{verb} instance_root {p.instance_root}")
    lines += p.kept
    if p.empty() and not outcome.stopped:
        lines.append("nothing to remove: this node is not formatted here")
    return lines


# -- IO: what is there ---------------------------------------------------------------------------

def unformat(config: NodeConfig, *, dry_run: bool = False, stop: bool = False,
             everything: bool = False) -> Outcome:
    """Undo `slapos node format` (see the module docstring); an UnformatError, changing nothing,
    when something of the node runs and `stop` is not given."""
    with _command_locks(config):
        root = os.geteuid() == 0
        _check_owner(config.instance_root)
        netns = claims.current_netns()
        record = claims.read_record(config.instance_root) if root else None
        if record is not None and record.netns != netns:
            raise UnformatError(f"the node of {config.instance_root} was formatted in another network namespace "
                                f"(inode {record.netns}, this one {netns}): run slapos node unformat there")
        facts = gather(config, record, netns)
        outcome = Outcome(plan(facts, everything), dry_run=dry_run)
        running = gather_running(config, facts, outcome.plan)
        reason = blocker(running, str(config.supervisor_socket))
        if dry_run:
            outcome.stopped += [f"would stop (--stop): {part}"
                                for part in what_runs(running, str(config.supervisor_socket))]
            return outcome
        if reason is not None and not stop:
            raise UnformatError(f"nothing removed: {reason}")
        if reason is not None:
            outcome.stopped = _stop(config, running)
        _apply(config, outcome.plan, netns)
    return outcome


def _check_owner(instance_root: Path) -> None:
    """An UnformatError unless this user may unformat the node of `instance_root` (root, or the
    user of a single-user node, who owns it)."""
    try:
        owner = os.lstat(instance_root).st_uid
    except FileNotFoundError:
        return
    except OSError as error:
        raise UnformatError(f"cannot read instance_root {instance_root}: {error.strerror}") from None
    if os.geteuid() not in (0, owner):
        raise UnformatError(f"nothing removed: {instance_root} is uid {owner}'s: run slapos node unformat as root "
                            "(or as that user)")


@contextmanager
def _command_locks(config: NodeConfig) -> Iterator[None]:
    """The locks of the node commands that exist (none are made): held, or an UnformatError."""
    directory = config.instance_root / "var" / "run"
    with ExitStack() as stack:
        for kind in COMMAND_KINDS:
            path = directory / f"node-{kind}.lock"
            if not path.is_file() or path.is_symlink():
                continue
            try:
                held = stack.enter_context(try_lock(path))
            except OSError as error:
                raise UnformatError(f"cannot check {path}: {error.strerror}") from None
            if not held:
                raise UnformatError(f"nothing removed: 'slapos node run' (or 'slapos node {kind}') is running "
                                    "for this node: stop it first")
        yield


def gather(config: NodeConfig, record: claims.Record | None, netns: int) -> Facts:
    """What there is of the node on this machine."""
    root = os.geteuid() == 0
    instance_root = str(config.instance_root)
    claims_here: dict[str, claims.Claim] = {}
    used_elsewhere: set[str] = set()
    if root and claims.CLAIMS_DIRECTORY.is_dir():
        with claims.Registry(netns).locked() as view:
            claims_here = view.claims()
            others = {c.instance_root for c in view.every_claim()} - {instance_root}
        for other in sorted(others):
            found = made.read(Path(other))
            used_elsewhere |= set(found.users if found else ())
    present: tuple[network.InterfaceAddress, ...] = ()
    routes: frozenset[str] = frozenset()
    if record is not None:
        try:
            present = tuple(network.interface_addresses(network.check_interface_name(record.interface)))
        except PartitaError:
            present = ()  # the interface is gone, and its addresses with it
        routes = frozenset(network.local_routes())
    record_made = made.read(config.instance_root) if root else None
    noted = made.machine_created() if root else {}
    machine_users = {name.removeprefix("user.") for name, number in noted.items() if name.startswith("user.")
                     and (found := users.lookup(name.removeprefix("user."))) is not None and found.uid == number}
    machine_groups = {name.removeprefix("group.") for name, number in noted.items()
                      if name.startswith("group.") and users.group_id(name.removeprefix("group.")) == number}
    software = config.software_root
    return Facts(instance_root=instance_root, partition_base_name=config.partition_base_name,
                 ipv4_network=config.ipv4_local_network, entries=_entries(config.instance_root),
                 record=record, netns=netns, present=present, routes=routes, claims_here=claims_here,
                 made=record_made, existing_users=frozenset(users.all_users()), members=users.group_members(),
                 used_elsewhere=frozenset(used_elsewhere), machine_users=frozenset(machine_users),
                 machine_groups=frozenset(machine_groups), software_root=str(software),
                 software_root_exists=_is_directory(software),
                 software_root_made=record_made is not None and str(software) in record_made.directories,
                 outside=tuple((what, str(path)) for what, path in (("toolchain_directory", config.toolchain_root),
                                                                   ("cache_directory", config.cache_root))
                               if not _within(path, software) and _is_directory(path)))


def _entries(directory: Path) -> dict[str, str]:
    try:
        with open_directory(directory) as fd:
            found = {}
            for entry in os.scandir(fd):
                kind = "link" if entry.is_symlink() else "dir" if entry.is_dir(follow_symlinks=False) else "file"
                found[entry.name] = kind
            return found
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise UnformatError(f"cannot read instance_root {directory}: {error.strerror or error}") from None


def _is_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _within(path: Path, parent: Path) -> bool:
    return os.path.normpath(path) == os.path.normpath(parent) or \
        os.path.normpath(path).startswith(os.path.normpath(parent) + os.sep)


def node_users(config: NodeConfig, facts: Facts, the_plan: Plan) -> list[str]:
    """The users whose processes are the node's: its partitions' users, and the users it deletes."""
    if os.geteuid() != 0:
        return []
    if facts.made is not None:
        names = set(facts.made.users) - {config.software_user}
    else:
        indexes = (partition_index(config.partition_base_name, name) for name in facts.entries)
        names = {f"{config.user_base_name}{index}" for index in indexes if index is not None}
    return sorted(names | set(the_plan.users))


def gather_running(config: NodeConfig, facts: Facts, the_plan: Plan) -> Running:
    uids: dict[int, str] = {}
    for name in node_users(config, facts, the_plan):
        user = users.lookup(name)
        if user is not None and user.uid not in (0, os.geteuid()):
            uids[user.uid] = name
    processes = tuple((p.pid, uids[p.uid]) for p in sorted(read_processes(), key=lambda p: p.pid) if p.uid in uids)
    return Running(_supervisord_running(config), processes)


def _supervisord_running(config: NodeConfig) -> bool:
    if not config.supervisor_socket.exists():
        return False
    try:
        return Supervisor(config).running()
    except PartitaError:
        return True  # something answers there, oddly: stop it before removing what it runs


# -- IO: changes ---------------------------------------------------------------------------------

def _stop(config: NodeConfig, running: Running) -> list[str]:
    """Shut the node's supervisord down and kill its users' processes; what was done."""
    done = []
    if running.supervisord:
        try:
            Supervisor(config).shutdown()
        except SupervisorError as error:
            raise UnformatError(f"nothing removed: cannot stop the node's supervisord: {error}") from None
        done.append("stopped the node's supervisord")
    names = dict((pid, user) for pid, user in running.processes)
    targets = {user: users.lookup(user) for user in set(names.values())}
    for _ in range(KILL_ROUNDS):  # a process that forks meanwhile is caught at the next round
        left = [p for p in read_processes() if any(u is not None and p.uid == u.uid for u in targets.values())]
        if not left:
            return done
        for name, user in sorted(targets.items()):
            if user is not None:
                done += [f"killed process {pid} of {name}" for pid in kill_orphans(user.uid, set(), wait=2.0)]
        time.sleep(0.05)
    raise UnformatError(f"processes of {', '.join(sorted(targets))} survive SIGKILL: nothing else removed")


def _apply(config: NodeConfig, p: Plan, netns: int) -> None:
    root = config.instance_root
    records = [name for name in p.files if name in RECORDS]
    if p.partitions or p.files:
        with open_directory(root) as root_fd:
            for name in p.partitions + [f for f in p.files if f not in RECORDS]:
                _remove_entry(root_fd, name, root)
    for address, prefixlen in p.addresses:
        network.remove_address(p.interface, address, prefixlen)
    for prefix in p.routes:
        network.remove_local_route(prefix)
    if p.claims:
        with claims.Registry(netns).locked() as view:
            view.release(p.claims)
    for user in p.users:
        users.remove_user(user, remove_group=False)
    for group in p.groups:
        users.remove_group(group)
    made.forget_created([f"user.{user}" for user in p.users] + [f"group.{group}" for group in p.groups])
    if p.software_root:
        _empty_tree(Path(p.software_root), remove=p.software_root_whole)
    if records:
        with open_directory(root) as root_fd:
            for name in records:
                _remove_entry(root_fd, name, root)
    if p.instance_root:
        try:
            os.rmdir(root)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise UnformatError(f"cannot remove {root}: {error.strerror}") from None


def _remove_entry(dir_fd: int, name: str, parent: Path) -> None:
    """Remove `name` of the directory `dir_fd`: a tree through descriptors (a link in it is
    removed, never followed), anything else unlinked."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except (OSError, RecursionError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise UnformatError(f"cannot remove {parent / name}: {reason}") from None


def _empty_tree(path: Path, *, remove: bool) -> None:
    """Remove what `path` holds (through descriptors), and `path` itself if `remove`."""
    try:
        with open_directory(path) as fd:
            for name in sorted(os.listdir(fd)):
                _remove_entry(fd, name, path)
        if remove:
            os.rmdir(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise UnformatError(f"cannot remove {path}: {error.strerror or error}") from None
