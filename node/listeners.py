"""Which partition listens where (issue 10): a partition's services may not take another's address.

Every partition's addresses are on the node (``lo`` by default), and Linux lets any user bind any
local address, so partition A's user could bind B's address before B's services do. The node has
no firewall to stop the bind itself (no ``nft``/``iptables`` on these machines; an owner match
would not stop a bind anyway), so it checks after the fact, in root mode, where each partition has
its own user: after starting a partition's services and at every check, the sockets the kernel
lists in ``/proc/net/{tcp,tcp6,udp,udp6}`` (listening TCP, bound UDP) owned by the partition's
user are compared with the node's partition networks (``ipv4_local_network``,
``ipv6_local_network``). A socket on an address of those networks that is not one of the
partition's own is a *squat*: the node stops the partition's services, kills every process of the
partition's user that still holds a squatting socket (one that left supervisord's care by forking
away, say), and says so as its status (the next pass starts the services again, and stops them
again while they squat). A process is killed through a descriptor of its own (``pidfd``), opened
before its user and sockets are checked, so a pid reused meanwhile is never signalled.

Not covered: a wildcard bind (``0.0.0.0``, ``::``), which takes a port on every address (B then
cannot bind that port); a socket opened between two checks and closed before the next; addresses
outside the partition networks (the host's own). Single-user mode has one user for every
partition: nothing to tell apart.

Orphans (issue 13): when the node's supervisord dies hard (SIGKILL), the services it started live
on with parent 1, holding their addresses, and the supervisord started next knows nothing of
them. `kill_orphans` finds the processes of a partition's user that do not descend from the
current supervisord (nor from the node itself) and kills them the same way, through pidfds; in
single-user mode, where every partition shares the node's user, only those holding a listening
socket on the partition's own addresses.

Pure parsing and comparison (`parse_proc_net`, `squats`, `orphans`) with thin readers around them.
"""
from __future__ import annotations

import ipaddress
import os
import select
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC_NET = (("tcp", "/proc/net/tcp"), ("tcp6", "/proc/net/tcp6"),
            ("udp", "/proc/net/udp"), ("udp6", "/proc/net/udp6"))
LISTEN = "0A"       # TCP_LISTEN
UNCONNECTED = "07"  # TCP_CLOSE: a bound, unconnected UDP socket

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Listener:
    protocol: str
    address: str
    port: int
    uid: int
    inode: int = field(default=0, compare=False)  # the socket's, to find the processes holding it

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {host}:{self.port}"


def _address(hex_address: str) -> str:
    """A /proc/net address: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net(text: str, protocol: str) -> list[Listener]:
    """The listening (TCP) or bound (UDP) sockets of one ``/proc/net`` table."""
    wanted = LISTEN if protocol.startswith("tcp") else UNCONNECTED
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted:
            continue
        try:
            host, port = fields[1].split(":")
            found.append(Listener(protocol, _address(host), int(port, 16), int(fields[7]), int(fields[9])))
        except ValueError:
            continue
    return found


def read_listeners() -> list[Listener]:
    found: list[Listener] = []
    for protocol, path in PROC_NET:
        try:
            with open(path, encoding="ascii") as stream:
                found += parse_proc_net(stream.read(), protocol)
        except OSError:
            continue
    return found


def squats(listeners: Iterable[Listener], uid: int, own: Iterable[str], networks: Iterable[Network]) -> list[Listener]:
    """The sockets of `uid` on an address of `networks` that is not one of `own`."""
    mine = {ipaddress.ip_address(address) for address in own}
    nets = list(networks)
    found = []
    for listener in listeners:
        if listener.uid != uid:
            continue
        address = ipaddress.ip_address(listener.address)
        if address in mine or address.is_unspecified:
            continue
        if any(address.version == net.version and address in net for net in nets):
            found.append(listener)
    return found


def _owner(status: str) -> int | None:
    """The real uid in a ``/proc/<pid>/status`` text."""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def _holds(fd_directory: Path, wanted: set[str]) -> bool:
    try:
        names = os.listdir(fd_directory)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(fd_directory / name) in wanted:
                return True
        except OSError:
            continue
    return False


def kill_squatters(found: Iterable[Listener], uid: int, proc: Path = Path("/proc")) -> list[int]:
    """SIGKILL every process of `uid` holding one of the sockets `found`; the pids killed."""
    wanted = {f"socket:[{listener.inode}]" for listener in found if listener.inode}
    if not wanted:
        return []
    killed = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pidfd = os.pidfd_open(int(entry.name))
        except OSError:
            continue  # gone already
        try:
            # checked after the pidfd is open: if these still say uid and socket, it is this process
            if _owner((entry / "status").read_text()) == uid and _holds(entry / "fd", wanted):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                killed.append(int(entry.name))
        except OSError:
            continue
        finally:
            os.close(pidfd)
    return killed


# -- orphans of a dead supervisord (issue 13) ----------------------------------------------------

@dataclass(frozen=True)
class ProcessFacts:
    pid: int
    ppid: int
    uid: int


def descends_from(pid: int, keepers: set[int], parents: dict[int, int]) -> bool:
    """Whether `pid` is one of `keepers` or below one of them in `parents` (pid -> parent pid)."""
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        if pid in keepers:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return pid in keepers


def orphans(processes: Iterable[ProcessFacts], uid: int, keepers: set[int]) -> list[int]:
    """The pids of `uid` that neither are nor descend from one of `keepers` (pure)."""
    table = list(processes)
    parents = {process.pid: process.ppid for process in table}
    return sorted(process.pid for process in table
                  if process.uid == uid and not descends_from(process.pid, keepers, parents))


def _facts(entry: Path) -> ProcessFacts | None:
    try:
        stat = (entry / "stat").read_text()
        owner = _owner((entry / "status").read_text())
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if owner is None or len(fields) < 2 or fields[0] in ("Z", "X"):
        return None
    return ProcessFacts(int(entry.name), int(fields[1]), owner)


def read_processes(proc: Path = Path("/proc")) -> list[ProcessFacts]:
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            facts = _facts(entry)
            if facts is not None:
                found.append(facts)
    return found


def kill_orphans(uid: int, keepers: set[int], *, addresses: Iterable[str] | None = None,
                 proc: Path = Path("/proc"), wait: float = 5.0) -> list[int]:
    """SIGKILL the processes of `uid` outside the trees of `keepers` (with `addresses`, only those
    holding a listening socket on one of them), then wait up to `wait` seconds for them to end
    (their sockets closed); the pids killed. Each is signalled through a pidfd opened before its
    facts are read again, so a pid reused meanwhile is never signalled."""
    wanted: set[str] | None = None
    if addresses is not None:
        own = {ipaddress.ip_address(address) for address in addresses}
        wanted = {f"socket:[{listener.inode}]" for listener in read_listeners()
                  if listener.uid == uid and listener.inode and ipaddress.ip_address(listener.address) in own}
        if not wanted:
            return []
    candidates = orphans(read_processes(proc), uid, keepers)
    killed, pidfds = [], []
    for pid in candidates:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue  # gone already
        try:
            facts = _facts(proc / str(pid))
            if facts is None or facts.uid != uid or facts.ppid in keepers:
                os.close(pidfd)
                continue
            if wanted is not None and not _holds(proc / str(pid) / "fd", wanted):
                os.close(pidfd)
                continue
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            os.close(pidfd)
            continue
        killed.append(pid)
        pidfds.append(pidfd)
    try:
        _wait_ended(pidfds, wait)
    finally:
        for pidfd in pidfds:
            os.close(pidfd)
    return killed


def _wait_ended(pidfds: list[int], seconds: float) -> None:
    """Wait until every pidfd says its process ended (readable), at most `seconds`."""
    deadline = time.monotonic() + seconds
    poller = select.poll()
    for pidfd in pidfds:
        poller.register(pidfd, select.POLLIN)
    pending = set(pidfds)
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        for fd, _event in poller.poll(left * 1000):
            pending.discard(fd)
            poller.unregister(fd)
