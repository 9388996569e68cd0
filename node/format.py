"""`slapos node format`: make this machine's partitions, then declare them to the master.

A partition ``slappartN`` is the directory ``instance_root/slappartN`` (mode 0750), its owner and
two addresses (`node.network`). Who owns it depends on the mode:

- **root** (``alter_user``, the default as root): the user ``<user_base_name>N`` in its own group
  and in the group of ``software_user``, the build user, who owns the software directories in
  ``software_root`` (root owns ``software_root`` itself: `node.software_root`); users and groups
  are created when missing (`node.users`);
- **root with existing users** (``alter_user = false``): the same users, which must exist;
- **single-user** (not root): the node's own user owns everything; nothing is created on the
  network, IPv6 is declared only where the address is already on the interface.

Each partition gets a ``.slapos-resource`` file (JSON: its user and addresses, and its IPv6 range
with ``partition_has_ipv6_range``, routed to this machine as a ``local`` route on loopback when
altering the network). Then the list is posted to the master
(``slapos.put.v0.compute_node_format``; the master's API has no field for a range yet).

Before it changes anything, a node that alters the network claims its addresses machine-wide
(`node.claims`): an address another node holds, or one already on the interface that no node
claims, is refused (`AddressInUse`, naming it); the claims of addresses it no longer uses are
released, and those addresses taken off, at the end, with the ``local`` routes of the ranges its
record lists that it no longer gives (`stale_routes`: another ``ipv6_prefixshift``, ranges off).

Growing adds partitions. Shrinking never touches a busy partition: the master's state is read
first, a busy partition beyond ``partition_amount`` is kept (and posted) with a warning, a free
one is dropped (its directory removed if it holds nothing but ``.slapos-resource``, its addresses
removed). Users are never deleted. When the master cannot be reached, the local part is done
(nothing is dropped, since nobody can tell what is busy) and `FormatReport.master_error` says why.

As root, the users and groups format created (not those it found) and the roots it made are
recorded (`node.made`): `slapos node unformat` removes those and nothing else.

The plan (`plan_partitions`) and the documents sent or written (`partition_entry`,
`resource_document`) are pure; `format_node` does the IO.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.node import claims, desired, made, network, software_root, users
from partita.node.config import NodeConfig
from partita.node.errors import AddressInUse, NodeError, SetupError
from partita.node.files import read_text
from partita.node.layout import RESOURCE_FILE
from partita.node.locks import file_lock
from partita.slap.client import MasterClient
from partita.slap.errors import ConfigurationError, MasterUnreachable, PartitaError, RemoteError
from partita.slap.fileio import atomic_write
from partita.slap.wire.node_state import ComputePartition

log = logging.getLogger(__name__)

LOCK_FILE = ".slapos-format.lock"
LOCK_TIMEOUT = 120.0
ROOT_MODE = 0o755
PARTITION_MODE = 0o750
RESOURCE_MODE = 0o640
RESOURCE_LIMIT = 64 * 1024

MODE_ROOT = "root"
MODE_EXISTING_USERS = "root-existing-users"
MODE_SINGLE_USER = "single-user"


# -- plain data --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FormatPlan:
    """Which partition numbers to format (and post), drop, or leave alone."""

    keep: tuple[int, ...]
    busy_extra: tuple[int, ...] = ()  # in `keep`: beyond partition_amount but busy
    drop: tuple[int, ...] = ()  # beyond partition_amount and free
    unknown: tuple[int, ...] = ()  # beyond partition_amount, the master could not say


@dataclass(frozen=True)
class FormattedPartition:
    partition_id: str
    user: str
    ipv4: str
    ipv6: str | None
    busy_extra: bool = False
    ipv6_range: str | None = None  # partition_has_ipv6_range


@dataclass
class FormatReport:
    mode: str
    user: str  # single-user: the node's user; root: the software user
    master_url: str
    partitions: list[FormattedPartition] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    posted: bool = False
    master_error: str | None = None

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)


# -- pure --------------------------------------------------------------------------------------

def node_mode(config: NodeConfig, euid: int) -> str:
    """The mode for this configuration and effective uid; a ConfigurationError if impossible."""
    if euid != 0:
        for key in ("alter_user", "alter_network"):
            if getattr(config, key):
                raise ConfigurationError(f"[slapformat] {key} = true needs root: run as root, "
                                         f"or set {key} = false")
        return MODE_SINGLE_USER
    return MODE_ROOT if config.alter_user else MODE_EXISTING_USERS


def partition_index(base_name: str, name: str) -> int | None:
    """N for ``<base_name>N`` (no leading zeros), else None."""
    match = re.fullmatch(re.escape(base_name) + r"(0|[1-9][0-9]{0,5})", name)
    return int(match.group(1)) if match else None


def plan_partitions(amount: int, base_name: str, local: Iterable[str],
                    master: Sequence[ComputePartition] | None) -> FormatPlan:
    """What to do with partitions 0..amount-1 and with the extra ones found locally or on the master.

    `master` is the master's ``compute_partition_list`` (None when it could not be read): an extra
    partition is busy when its ``instance`` is not null or its ``state`` is ``busy``.
    """
    busy: set[int] = set()
    extra: set[int] = set()
    for name in local:
        index = partition_index(base_name, name)
        if index is not None and index >= amount:
            extra.add(index)
    for entry in master or []:
        index = partition_index(base_name, entry.compute_partition_id)
        if index is None or index < amount:
            continue
        extra.add(index)
        if entry.instance is not None or entry.state == "busy":
            busy.add(index)
    if master is None:
        return FormatPlan(keep=tuple(range(amount)), unknown=tuple(sorted(extra)))
    return FormatPlan(keep=tuple(range(amount)) + tuple(sorted(busy)), busy_extra=tuple(sorted(busy)),
                      drop=tuple(sorted(extra - busy)))


def ip_entry(interface: str, address: str, prefixlen: int) -> dict[str, str]:
    return {"ip-address": address, "network-interface": interface,
            "netmask": network.netmask(address, prefixlen)}


def partition_entry(partition: FormattedPartition, interface: str, prefixes: tuple[int, int]) -> dict[str, Any]:
    """One item of ``compute_partition_list`` for ``slapos.put.v0.compute_node_format``."""
    ips = [ip_entry(interface, partition.ipv4, prefixes[0])]
    if partition.ipv6:
        ips.append(ip_entry(interface, partition.ipv6, prefixes[1]))
    entry: dict[str, Any] = {"partition_id": partition.partition_id, "ip_list": ips}
    if partition.ipv6_range:
        entry["ipv6_range"] = partition.ipv6_range
    return entry


def resource_document(partition: FormattedPartition, interface: str, user: users.PartitionUser) -> str:
    """The content of a partition's ``.slapos-resource`` file."""
    document: dict[str, Any] = {
        "partition_id": partition.partition_id,
        "user": user.name, "uid": user.uid, "gid": user.gid,
        "network_interface": interface,
        "ipv4_address": partition.ipv4, "ipv6_address": partition.ipv6,
    }
    if partition.ipv6_range:
        document["ipv6_range"] = partition.ipv6_range
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def read_resource(partition_path: Path) -> dict[str, Any]:
    """A partition's ``.slapos-resource`` document ({} if missing or unreadable)."""
    try:
        data = json.loads(_read_text(partition_path / RESOURCE_FILE) or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def stale_routes(before: claims.Record | None, after: claims.Record | None, netns: int) -> list[str]:
    """The IPv6 ranges whose ``local`` route the previous format added (its record, `before`, in
    this namespace) that the node no longer gives (`after`): a changed ``ipv6_prefixshift`` or
    network, ``partition_has_ipv6_range`` turned off, a dropped partition."""
    if before is None or before.netns != netns:
        return []
    kept = set(after.ranges.values()) if after is not None and after.netns == netns else set()
    return sorted(set(before.ranges.values()) - kept)


# -- the command -------------------------------------------------------------------------------

def format_node(config: NodeConfig, client: MasterClient) -> FormatReport:
    """Format the partitions described by `config` and post them to the master through `client`.

    Bad configuration, or an address another node holds (`node.claims`), raises before anything
    is changed. An unreachable master is reported in the result (`FormatReport.master_error`);
    any other error of the master raises.
    """
    mode = node_mode(config, os.geteuid())
    fresh = [str(path) for path in (config.instance_root, config.software_root) if not path.exists()]
    network.check_interface_name(config.interface_name)
    present = network.interface_addresses(config.interface_name)
    record = claims.read_record(config.instance_root) if config.alter_network else None
    ipv6 = _ipv6_network(config, present, record)
    _check_room(config, config.partition_amount, ipv6)
    _check_user_names(config, mode, config.partition_amount)
    report = FormatReport(mode=mode, user=_mode_user(config, mode), master_url=client.master_url)
    master = _read_master(client, config.computer_id, report)
    plan = plan_partitions(config.partition_amount, config.partition_base_name,
                           _local_partitions(config), master)
    _check_room(config, max(plan.keep, default=-1) + 1, ipv6)
    _check_user_names(config, mode, max(plan.keep, default=-1) + 1)
    use_ipv6 = _ipv6_policy(config, report)
    addresses = _Addresses(config, ipv6, use_ipv6)
    registry = claims.Registry(claims.current_netns()) if config.alter_network else None
    if registry is not None:
        _claim(config, registry, addresses, plan, present, record)
    created = users.Created()
    try:
        owners = _prepare_users(config, mode, plan.keep, created)
    except PartitaError:
        if created.users or created.groups:  # what was created before the failure is the node's
            _make_root(config.instance_root)
            _record_made(config, None, created, fresh)
        raise
    _make_root(config.instance_root)
    _make_root(config.software_root)
    if mode != MODE_SINGLE_USER:
        _record_made(config, [owner.name for owner in owners.values()], created, fresh)
    software_root.secure(config)  # root's, in root mode: the build user owns only what it builds
    with file_lock(_lock_file(config.instance_root), LOCK_TIMEOUT, "slapos node format"):
        for index in plan.keep:
            report.partitions.append(
                _format_partition(config, index, owners[index], addresses, present, report,
                                  busy_extra=index in plan.busy_extra))
        for index in plan.drop:
            _drop_partition(config, index, addresses, report)
        for index in plan.unknown:
            report.warn(f"{config.partition_base_name}{index} is beyond partition_amount and the "
                        "master cannot tell whether it is busy: left as it is")
    if registry is not None:
        _release(config, registry, addresses, plan)
        _remove_routes(stale_routes(record, claims.read_record(config.instance_root), registry.netns))
    if report.master_error is None:
        _post(config, client, report, addresses)
    return report


def _check_room(config: NodeConfig, count: int, ipv6: network.IPv6Network) -> None:
    """A ConfigurationError unless the networks (and the IPv6 ranges, if any) hold `count` partitions."""
    network.check_room(config, count, ipv6)
    if config.partition_has_ipv6_range and count > 0:
        network.partition_range(ipv6, count - 1, config.ipv6_prefixshift)


@dataclass(frozen=True)
class _Addresses:
    """The partitions' networks for this format: IPv4 from the configuration, IPv6 as chosen."""

    config: NodeConfig
    ipv6: network.IPv6Network
    use_ipv6: bool

    def of(self, index: int) -> tuple[str, str | None]:
        ipv4, ipv6 = network.partition_addresses(self.config, index, self.ipv6)
        return ipv4, ipv6 if self.use_ipv6 else None

    def range(self, index: int) -> str | None:
        """The partition's IPv6 range (``partition_has_ipv6_range``), else None."""
        if not (self.use_ipv6 and self.config.partition_has_ipv6_range):
            return None
        return network.partition_range(self.ipv6, index, self.config.ipv6_prefixshift)

    def prefixes(self) -> tuple[int, int]:
        """The prefix lengths of the partitions' IPv4 and IPv6 addresses on the interface."""
        interface = self.config.interface_name
        return (network.address_prefixlen(interface, self.config.ipv4_local_network),
                network.address_prefixlen(interface, self.ipv6.network))

    def claims(self, indexes: Iterable[int], instance_root: str, netns: int) -> list[claims.Claim]:
        """The claims on the addresses of partitions `indexes` (those beyond the networks left out)."""
        found: list[claims.Claim] = []
        for index in indexes:
            try:
                ipv4, ipv6 = self.of(index)
            except ConfigurationError:
                continue
            interface = self.config.interface_name
            found.append(claims.Claim(ipv4, instance_root, netns, "ipv4_local_network",
                                      f"ipv4_local_network {self.config.ipv4_local_network}", interface))
            if ipv6 is not None:
                found.append(claims.Claim(ipv6, instance_root, netns, "ipv6_local_network",
                                          network.ipv6_label(self.ipv6).removeprefix("[slapformat] "), interface))
        return found


def _ipv6_network(config: NodeConfig, present: list[network.InterfaceAddress],
                  record: claims.Record | None) -> network.IPv6Network:
    """Where IPv6 comes from (`network.choose_ipv6`), the node's own addresses taken from its record."""
    own = set(record.addresses) if record is not None else set()
    same = record is not None and record.interface == config.interface_name
    before = record.ipv6_skip if record is not None and same else ()
    base = record.ipv6_base if record is not None and same else ""
    return network.choose_ipv6(config.ipv6_local_network if config.ipv6_configured else None,
                               config.ipv6_local_network, config.interface_name, present, own, before, base)


def _instance_root_name(config: NodeConfig) -> str:
    return os.path.normpath(os.path.abspath(config.instance_root))


def _claim(config: NodeConfig, registry: claims.Registry, addresses: _Addresses, plan: FormatPlan,
           present: list[network.InterfaceAddress], record: claims.Record | None) -> None:
    """Claim the addresses of the kept partitions, or raise AddressInUse changing nothing; the
    node's record then lists them (with those it still holds until `_release`)."""
    root = _instance_root_name(config)
    with registry.locked() as view:
        wanted = addresses.claims(plan.keep, root, registry.netns)
        held = view.claims()
        asked = {str(ipaddress.ip_address(c.address)) for c in wanted}
        live = [a for a, claim in held.items()
                if a in asked and (claim.instance_root == root or claims.holder_is_live(claim))]
        conflict = claims.find_conflict(wanted, held, live, [p.address for p in present],
                                        config.interface_name, _adoptable(config, addresses, plan, record))
        if conflict is not None:
            raise AddressInUse(conflict)
        _make_root(config.instance_root)
        kept = [c.address for c in held.values() if c.instance_root == root]
        _write_record(config, registry.netns, addresses, [c.address for c in wanted] + kept, plan.keep)
        view.take(wanted)


def _adoptable(config: NodeConfig, addresses: _Addresses, plan: FormatPlan,
               record: claims.Record | None) -> list[str]:
    """Without a record (a node formatted before claims existed), the addresses of the partitions
    whose directories exist in the root-owned instance root: the node's own."""
    if record is not None:
        return []
    made = [i for i in plan.keep
            if config.partition_path(f"{config.partition_base_name}{i}").is_dir()]
    return [c.address for c in addresses.claims(made, "", 0)]


def _release(config: NodeConfig, registry: claims.Registry, addresses: _Addresses, plan: FormatPlan) -> None:
    """Give up the claims on addresses the node no longer has (dropped partitions, changed ranges),
    and tidy the stale claims of nodes that are gone."""
    root = _instance_root_name(config)
    with registry.locked() as view:
        wanted = addresses.claims(plan.keep + plan.unknown, root, registry.netns)
        keep = {str(ipaddress.ip_address(c.address)) for c in wanted}
        _write_record(config, registry.netns, addresses, sorted(keep), plan.keep + plan.unknown)
        mine = [c for c in view.claims().values() if c.instance_root == root
                and str(ipaddress.ip_address(c.address)) not in keep]
        stale = [c for c in view.every_claim() if c.instance_root != root and not claims.holder_is_live(c)]
        for claim in mine:
            _take_off(claim)
        view.release(mine + stale)


def _remove_routes(ranges: Iterable[str]) -> None:
    for prefix in ranges:
        try:
            ipaddress.IPv6Network(prefix)
        except ValueError:
            continue  # not a range: nothing format would have routed
        network.remove_local_route(prefix)


def _take_off(claim: claims.Claim) -> None:
    """Take an address the node no longer uses (its networks changed) off the interface it put it on."""
    if not claim.interface:
        return
    try:
        present = network.interface_addresses(network.check_interface_name(claim.interface))
    except (SetupError, ConfigurationError):
        return  # the interface is gone, and its addresses with it
    for address in present:
        if ipaddress.ip_address(address.address) == ipaddress.ip_address(claim.address):
            network.remove_address(claim.interface, address.address, address.prefixlen)


def _write_record(config: NodeConfig, netns: int, addresses: _Addresses, held: Iterable[str],
                  partitions: Iterable[int]) -> None:
    unique = sorted({ipaddress.ip_address(a) for a in held}, key=lambda a: (a.version, a))
    ranges = {}
    for index in partitions:
        try:
            found = addresses.range(index)
        except ConfigurationError:
            continue
        if found is not None:
            ranges[f"{config.partition_base_name}{index}"] = found
    claims.write_record(config.instance_root, claims.Record(
        netns=netns, interface=config.interface_name, addresses=tuple(map(str, unique)),
        ipv6_network=addresses.ipv6.network, ipv6_skip=addresses.ipv6.skip, ranges=ranges,
        ipv6_base=addresses.ipv6.base))


def _mode_user(config: NodeConfig, mode: str) -> str:
    return users.current_user().name if mode == MODE_SINGLE_USER else config.software_user


def _check_user_names(config: NodeConfig, mode: str, count: int) -> None:
    """A SetupError now, before anything is created, if a user name would be invalid."""
    if mode == MODE_SINGLE_USER:
        return
    users.check_name(config.software_user, "software_user")
    if count > 0:
        users.check_name(f"{config.user_base_name}{count - 1}", "partition user name (user_base_name)")


def _read_master(client: MasterClient, computer_id: str,
                 report: FormatReport) -> tuple[ComputePartition, ...] | None:
    """The master's partitions of this computer ([] if it does not know it, None if unreachable)."""
    try:
        state = client.get_compute_node_state(computer_id)
    except MasterUnreachable as error:
        report.master_error = str(error)
        return None
    except RemoteError as error:
        if error.status == 404:
            return ()
        raise
    return desired.parse(state).compute_partition_list


def _local_partitions(config: NodeConfig) -> list[str]:
    try:
        entries = list(config.instance_root.iterdir())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise SetupError(f"cannot list {config.instance_root}: {error.strerror}") from None
    return [p.name for p in entries if p.is_dir() and not p.is_symlink()]


def _make_root(path: Path, owner: users.PartitionUser | None = None) -> None:
    """Create `path` (0755) if missing; give it to `owner` if given (root mode)."""
    try:
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(ROOT_MODE)
        if owner is not None:
            os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
            path.chmod(ROOT_MODE)
    except OSError as error:
        raise SetupError(f"cannot prepare {path}: {error.strerror}") from None


def _lock_file(instance_root: Path) -> Path:
    """The lock file of `slapos node format`, checked usable (a SetupError, not a traceback)."""
    path = instance_root / LOCK_FILE
    try:
        with open(path, "a"):
            pass
    except OSError as error:
        raise SetupError(f"cannot use the lock file {path}: {error.strerror}") from None
    return path


def _prepare_users(config: NodeConfig, mode: str, indexes: Iterable[int],
                   created: users.Created | None = None) -> dict[int, users.PartitionUser]:
    """The owner of each partition, created when needed (then added to `created`); key -1 is the
    owner of software_root."""
    if mode == MODE_SINGLE_USER:
        me = users.current_user()
        return {index: me for index in indexes}
    soft = config.software_user
    owners: dict[int, users.PartitionUser] = {}
    if mode == MODE_ROOT:
        owners[-1] = users.ensure_user(soft, config.software_root, soft, created=created)
    for index in indexes:
        name = f"{config.user_base_name}{index}"
        home = config.partition_path(f"{config.partition_base_name}{index}")
        if mode == MODE_ROOT:
            owners[index] = users.ensure_user(name, home, name, [soft], created)
        else:
            owners[index] = _existing_user(name)
    if mode == MODE_EXISTING_USERS:
        owners[-1] = _existing_user(soft)
    return owners


def _record_made(config: NodeConfig, names: Iterable[str] | None, created: users.Created,
                 fresh: Iterable[str]) -> None:
    """Add what this format made to the node's record (`node.made`), for `slapos node unformat`:
    `names`, the users the node uses (None: those it used, and those just created)."""
    before = made.read(config.instance_root)
    if names is None:
        names = [*(before.users if before else ()), *created.users]
    made.write(config.instance_root, made.merge(before, names, created.users, created.groups, fresh))
    noted = {f"user.{name}": user.uid for name in created.users if (user := users.lookup(name)) is not None}
    noted |= {f"group.{name}": gid for name in created.groups if (gid := users.group_id(name)) is not None}
    made.note_created(noted)


def _existing_user(name: str) -> users.PartitionUser:
    user = users.lookup(name)
    if user is None:
        raise SetupError(f"the user {name} does not exist, and [slapformat] alter_user = false "
                         "forbids creating it")
    return user


def _ipv6_policy(config: NodeConfig, report: FormatReport) -> bool:
    """Whether partitions may get IPv6 at all (saying why not, once)."""
    if not network.ipv6_enabled(config.interface_name):
        report.warn(f"IPv6 is disabled on {config.interface_name}: partitions get IPv4 only")
        return False
    return True


def _format_partition(config: NodeConfig, index: int, owner: users.PartitionUser, addresses: _Addresses,
                      present: list[network.InterfaceAddress], report: FormatReport,
                      busy_extra: bool = False) -> FormattedPartition:
    partition_id = f"{config.partition_base_name}{index}"
    path = config.partition_path(partition_id)
    _make_partition_directory(path, owner)
    ipv4, ipv6 = _partition_addresses(config, index, addresses, present, report)
    ipv6_range = addresses.range(index) if ipv6 is not None else None
    if ipv6_range is not None and config.alter_network:
        network.ensure_local_route(ipv6_range)
    formatted = FormattedPartition(partition_id, owner.name, ipv4, ipv6, busy_extra, ipv6_range)
    _write_resource(path, resource_document(formatted, config.interface_name, owner), owner)
    if busy_extra:
        report.warn(f"{partition_id} is beyond partition_amount ({config.partition_amount}) but busy: "
                    "kept until its instance is destroyed")
    return formatted


def _make_partition_directory(path: Path, owner: users.PartitionUser) -> None:
    if path.is_symlink():
        raise SetupError(f"{path} is a symbolic link: a partition must be a real directory")
    try:
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
        path.chmod(PARTITION_MODE)
    except OSError as error:
        raise SetupError(f"cannot prepare the partition {path}: {error.strerror}") from None


def _partition_addresses(config: NodeConfig, index: int, addresses: _Addresses,
                         present: list[network.InterfaceAddress], report: FormatReport) -> tuple[str, str | None]:
    """The partition's addresses, put on the interface when altering the network."""
    interface = config.interface_name
    ipv4, ipv6 = addresses.of(index)
    if config.alter_network:
        prefix4, prefix6 = addresses.prefixes()
        network.ensure_address(interface, ipv4, prefix4)
        if ipv6 is not None:
            network.ensure_address(interface, ipv6, prefix6)
        return ipv4, ipv6
    if interface != network.LOOPBACK and not network.has_address(present, ipv4):
        report.warn(f"IPv4: not altering the network: {config.ipv4_local_network} addresses that are not "
                    f"on {interface} are declared anyway")
    if ipv6 is not None and network.has_address(present, ipv6):
        return ipv4, ipv6
    if ipv6 is not None:
        why = "non-root" if report.mode == MODE_SINGLE_USER else "alter_network = false"
        report.warn(f"IPv6: not altering the network ({why}): partitions get IPv4 only, except "
                    f"those whose address is already on {interface}")
    return ipv4, None


def _write_resource(path: Path, content: str, owner: users.PartitionUser) -> None:
    """Write ``.slapos-resource`` by renaming a new file over it (never following a link the
    partition's user may have put there); unchanged content is not rewritten."""
    target = path / RESOURCE_FILE
    if not target.is_symlink() and _read_text(target) == content:
        return
    try:
        atomic_write(target, content, mode=RESOURCE_MODE,
                     owner=(owner.uid, owner.gid) if os.geteuid() == 0 else None)
    except OSError as error:
        raise SetupError(f"cannot write {target}: {error.strerror}") from None


def _read_text(path: Path) -> str | None:
    """A small file of a partition, read as `node.files.read_text` does (no link, FIFO or hard
    link followed or blocked on)."""
    return read_text(path, limit=RESOURCE_LIMIT)


def _drop_partition(config: NodeConfig, index: int, addresses: _Addresses, report: FormatReport) -> None:
    """Remove a free partition beyond partition_amount: its empty directory and its addresses."""
    partition_id = f"{config.partition_base_name}{index}"
    path = config.partition_path(partition_id)
    if path.is_dir() and not path.is_symlink():
        try:
            leftovers = sorted(set(os.listdir(path)) - {RESOURCE_FILE})
        except OSError as error:
            leftovers = [f"unreadable: {error.strerror}"]
        if leftovers:
            report.warn(f"{partition_id} is dropped but holds files ({', '.join(leftovers[:3])}): "
                        "its directory is kept")
        else:
            try:
                (path / RESOURCE_FILE).unlink(missing_ok=True)
                path.rmdir()
            except OSError as error:
                raise SetupError(f"cannot remove {path}: {error.strerror}") from None
    report.removed.append(partition_id)
    if config.alter_network:
        _drop_addresses(config, index, addresses)


def _drop_addresses(config: NodeConfig, index: int, addresses: _Addresses) -> None:
    """Take a dropped partition's addresses (as computed, never as read from its files) off."""
    try:
        ipv4, ipv6 = addresses.of(index)
    except ConfigurationError:
        return  # beyond the configured networks: not one of ours
    prefix4, prefix6 = addresses.prefixes()
    network.remove_address(config.interface_name, ipv4, prefix4)
    if ipv6 is not None:
        network.remove_address(config.interface_name, ipv6, prefix6)
    try:
        ipv6_range = addresses.range(index)
    except ConfigurationError:
        return
    if ipv6_range is not None:
        network.remove_local_route(ipv6_range)


def _post(config: NodeConfig, client: MasterClient, report: FormatReport, addresses: _Addresses) -> None:
    entries = [partition_entry(p, config.interface_name, addresses.prefixes()) for p in report.partitions]
    try:
        client.format_compute_node(config.computer_id, entries)
    except MasterUnreachable as error:
        report.master_error = str(error)
        return
    except RemoteError as error:
        raise NodeError(f"formatted {len(report.partitions)} partitions locally, but the master "
                        f"refused them: {error}") from None
    report.posted = True
