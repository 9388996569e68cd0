"""Which node holds which partition address on this machine (issue 13).

Several nodes may run on one machine (each with its own configuration and instance root); with
the same settings they would put the same addresses on the same interface and their services
would answer for each other. So a node that puts addresses on an interface (root,
``alter_network = true``) first *claims* them in a machine-wide registry, and
`slapos node format` refuses, changing nothing, an address that:

- another node holds a live claim on: "127.0.1.1 is already used by the node of /srv/slapgrid
  (ipv4_local_network 127.0.1.0/24); give this node another ipv4_local_network";
- is already on the interface and claimed by no node (someone else put it there): "… is already
  on lo and no Partita node claims it; …". A node that has no record yet (formatted by a version
  without claims) adopts the addresses of the partitions whose directories it already has.

The registry, ``/var/lib/partita/address-claims``, is root's (mode 0700; refused if it is a link,
not root's, or writable by others), one file per address named ``<netns>-<address>`` (``netns``:
the inode of the network namespace, so nodes in different namespaces may use the same
addresses), JSON naming the holder's instance root. Every change happens under an ``flock`` of
``.lock`` in it; files are opened relative to the directory's descriptor, never through a link,
and replaced by rename. Partition users cannot reach it.

Each such node keeps a *record* of what it holds, ``instance_root/.slapos-addresses`` (root's, in
the root-owned instance root): its addresses, its IPv6 network and each partition's IPv6 range,
which the node's squat check (`node.instance`) also reads. A claim is **live** while its holder's instance root holds a record,
in the same namespace, that lists the address; otherwise it is **stale** and taken over: a node
whose instance root was removed, or that formatted fewer partitions or another range, holds
nothing. A node that was killed but whose instance root remains still holds its addresses: the
message names the instance root to remove.

Claims are released when the node drops partitions (format with fewer partitions) or changes its
ranges (the addresses it no longer uses are then taken off their interface), and stale claims (of any namespace) are removed whenever a node releases its own; single-user nodes and ``alter_network = false`` neither claim nor check (they put no
address anywhere; the operator chose the addresses).

Pure: `find_conflict`, `parse_claim`, `render_claim`, `parse_record`. IO: `Registry`,
`read_record`, `write_record`, `holder_is_live`, `current_netns`.
"""
from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from partita.node import files
from partita.node.errors import LockTimeout, SetupError
from partita.slap.fileio import open_directory, write_at

CLAIMS_DIRECTORY = Path("/var/lib/partita/address-claims")
RECORD_FILE = ".slapos-addresses"
LOCK_NAME = ".lock"
LOCK_TIMEOUT = 60.0
FILE_LIMIT = 64 * 1024
RECORD_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Claim:
    """`address` held by the node of `instance_root` in the network namespace `netns`, from the
    network `label` names (``ipv4_local_network 127.0.1.0/24``); `option` is the setting that
    changes it."""

    address: str
    instance_root: str
    netns: int
    option: str
    label: str
    interface: str = ""  # where the node put it

    @property
    def name(self) -> str:
        return claim_name(self.netns, self.address)


@dataclass(frozen=True)
class Record:
    """What a node holds (``instance_root/.slapos-addresses``)."""

    netns: int
    interface: str
    addresses: tuple[str, ...] = ()
    ipv6_network: str = ""
    ipv6_skip: tuple[str, ...] = field(default=())
    ranges: Mapping[str, str] = field(default_factory=dict)  # partition id -> its IPv6 range
    ipv6_base: str = ""  # the interface's address the IPv6 prefix was taken from

    def partition_range(self, partition_id: str) -> ipaddress.IPv6Network | None:
        """The IPv6 range of `partition_id` the node gave it, if any."""
        value = self.ranges.get(partition_id)
        try:
            return ipaddress.IPv6Network(value) if value else None
        except ValueError:
            return None


# -- pure --------------------------------------------------------------------------------------

def claim_name(netns: int, address: str) -> str:
    return f"{netns}-{ipaddress.ip_address(address)}"


def render_claim(claim: Claim) -> str:
    return json.dumps(asdict(claim), sort_keys=True) + "\n"


def parse_claim(text: str | None) -> Claim | None:
    """A claim file's content (None if it is not one: such a file is overwritten)."""
    try:
        data: Any = json.loads(text or "")
        claim = Claim(str(data["address"]), str(data["instance_root"]), int(data["netns"]),
                      str(data["option"]), str(data["label"]), str(data.get("interface", "")))
        ipaddress.ip_address(claim.address)
    except (ValueError, KeyError, TypeError):
        return None
    return claim


def render_record(record: Record) -> str:
    return json.dumps({**asdict(record), "ranges": dict(record.ranges)}, indent=1, sort_keys=True) + "\n"


def parse_record(text: str | None) -> Record | None:
    try:
        data: Any = json.loads(text or "")
        return Record(int(data["netns"]), str(data["interface"]),
                      tuple(str(a) for a in data.get("addresses", ())),
                      str(data.get("ipv6_network", "")), tuple(str(a) for a in data.get("ipv6_skip", ())),
                      {str(k): str(v) for k, v in dict(data.get("ranges", {})).items()},
                      str(data.get("ipv6_base", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def find_conflict(wanted: Sequence[Claim], held: Mapping[str, Claim], live: Iterable[str],
                  present: Iterable[str], interface: str, adoptable: Iterable[str] = ()) -> str | None:
    """The message for the first address of `wanted` (in order) this node may not take, or None.

    `held`: the claims of the namespace by address; `live`: the addresses whose claim is live;
    `present`: the addresses on the interface. An address is taken if another node's claim on it
    is live, or if it is on the interface without a claim (this node's own, or a stale one, are
    fine: it is this node's, or left by a node that is gone) unless it is `adoptable`: the
    address of a partition this node formatted before it kept claims (its directory exists)."""
    live_set = {str(ipaddress.ip_address(a)) for a in live}
    present_set = {str(ipaddress.ip_address(a)) for a in present} - {str(ipaddress.ip_address(a)) for a in adoptable}
    for want in wanted:
        address = str(ipaddress.ip_address(want.address))
        claim = held.get(address)
        if claim is not None and address in live_set and claim.instance_root != want.instance_root:
            return (f"{address} is already used by the node of {claim.instance_root} ({claim.label}); "
                    f"give this node another {want.option}")
        if claim is None and address in present_set:
            return (f"{address} is already on {interface} and no Partita node claims it; remove it "
                    f"from {interface} or give this node another {want.option}")
    return None


# -- the node's record ---------------------------------------------------------------------------

def read_record(instance_root: Path) -> Record | None:
    """The record of the node of `instance_root` (None if missing, unreadable, not a regular file
    or, as root, not root's)."""
    text = files.read_record(instance_root / RECORD_FILE, RECORD_LIMIT, owner=0 if os.geteuid() == 0 else None)
    return None if text is None else parse_record(text)


def write_record(instance_root: Path, record: Record) -> None:
    files.write_record(instance_root, RECORD_FILE, render_record(record))


def holder_is_live(claim: Claim) -> bool:
    """Whether the claim's holder still holds its address (see the module docstring)."""
    record = read_record(Path(claim.instance_root))
    if record is None or record.netns != claim.netns:
        return False
    return any(ipaddress.ip_address(a) == ipaddress.ip_address(claim.address) for a in record.addresses)


def current_netns() -> int:
    """The identity of this process's network namespace."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError as error:
        raise SetupError(f"cannot read the network namespace (/proc/self/ns/net): {error.strerror}") from None


# -- the registry --------------------------------------------------------------------------------

class Registry:
    """The claims of one network namespace in `directory` (root only)."""

    def __init__(self, netns: int, directory: Path = CLAIMS_DIRECTORY) -> None:
        self.netns = netns
        self.directory = directory

    @contextmanager
    def locked(self) -> Iterator[RegistryView]:
        """The registry, open and locked, for checks and changes."""
        self._make()
        try:
            with open_directory(self.directory) as dir_fd:
                _check_private(dir_fd, self.directory)
                with _flock(dir_fd, self.directory):
                    yield RegistryView(self.netns, dir_fd, self.directory)
        except OSError as error:
            raise SetupError(f"cannot use the address claims in {self.directory}: {error.strerror}") from None

    def _make(self) -> None:
        try:
            self.directory.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            self.directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise SetupError(f"cannot make {self.directory}: {error.strerror}") from None


@dataclass
class RegistryView:
    netns: int
    dir_fd: int
    directory: Path

    def claims(self) -> dict[str, Claim]:
        """This namespace's claims by address (unreadable ones left out: they get overwritten)."""
        return {str(ipaddress.ip_address(c.address)): c for c in self.every_claim(f"{self.netns}-")}

    def every_claim(self, prefix: str = "") -> list[Claim]:
        """The claims whose file name starts with `prefix` (of every namespace by default)."""
        found: list[Claim] = []
        for name in sorted(os.listdir(self.dir_fd)):
            if not name.startswith(prefix) or name.startswith(".") or name.endswith(".tmp"):
                continue
            claim = parse_claim(self._read(name))
            if claim is not None and claim.name == name:
                found.append(claim)
        return found

    def take(self, claims: Iterable[Claim]) -> None:
        for claim in claims:
            write_at(self.dir_fd, claim.name, render_claim(claim), mode=0o600)

    def release(self, claims: Iterable[Claim]) -> None:
        for claim in claims:
            try:
                os.unlink(claim.name, dir_fd=self.dir_fd)
            except FileNotFoundError:
                pass

    def _read(self, name: str) -> str | None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.dir_fd)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, FILE_LIMIT).decode("utf-8", "replace")
        except OSError:
            return None
        finally:
            os.close(fd)


def _check_private(dir_fd: int, path: Path) -> None:
    info = os.fstat(dir_fd)
    if info.st_uid != 0 or info.st_mode & 0o077:
        raise SetupError(f"refusing the address claims directory {path}: it must be root's with mode 0700 "
                         f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})")


@contextmanager
def _flock(dir_fd: int, directory: Path) -> Iterator[None]:
    fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"the address claims in {directory} are busy: still locked after "
                                      f"{LOCK_TIMEOUT:g}s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)

