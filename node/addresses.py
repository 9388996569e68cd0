"""Put back the partitions' addresses the interface lost (issue 13).

Linux drops a link's IPv6 addresses when the link goes down (``keep_addr_on_down = 0``, the
default): a cable pulled, a veth set down. Only `slapos node format` puts addresses on the
interface, and `slapos node run` never formats, while the master still publishes them. So at
each pass (`node.daemon`: also each retry while the master is unreachable) the daemon compares
the addresses its record lists (``instance_root/.slapos-addresses``, written by format:
`node.claims`) with the interface's, in one ``ip -j addr show``, and adds only what is missing,
with the prefix length format used, one log line per address put back.

Only the node's own addresses come back: those of its record, in its IPv4 network or its IPv6
network, in the namespace the record was written in. A node that alters no network (single
user, ``alter_network = false``) has no record: nothing to do.

Pure: `missing`. IO: `restore`.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from pathlib import Path

from partita.node import claims, network
from partita.slap.errors import PartitaError

log = logging.getLogger(__name__)


def missing(record: claims.Record, present: Iterable[network.InterfaceAddress],
            ipv4_network: str) -> list[tuple[str, int]]:
    """The record's addresses not on its interface, with the prefix length to add them with
    (addresses outside the node's IPv4 and IPv6 networks are left alone)."""
    networks = [ipaddress.ip_network(ipv4_network, strict=False)]
    if record.ipv6_network:
        networks.append(ipaddress.ip_network(record.ipv6_network, strict=False))
    there = {ipaddress.ip_address(address.address) for address in present}
    found = []
    for text in record.addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        owner = next((net for net in networks if net.version == address.version and address in net), None)
        if owner is None or address in there:
            continue
        found.append((str(address), network.address_prefixlen(record.interface, str(owner))))
    return found


def restore(instance_root: Path, ipv4_network: str) -> list[str]:
    """Add to its interface every address of the node's record that is missing there; the
    addresses added. Failures are logged, never raised: the next pass tries again."""
    record = claims.read_record(instance_root)
    if record is None or not record.addresses:
        return []
    try:
        if record.netns != claims.current_netns():
            return []
        wanted = missing(record, network.interface_addresses(record.interface), ipv4_network)
    except (PartitaError, ValueError) as error:
        log.warning("cannot check the partitions' addresses on %s: %s", record.interface, error)
        return []
    added = []
    for address, prefixlen in wanted:
        try:
            network.ensure_address(record.interface, address, prefixlen)
        except PartitaError as error:
            log.warning("cannot put %s back on %s: %s", address, record.interface, error)
            continue
        log.warning("put %s/%d back on %s (the interface had lost it)", address, prefixlen, record.interface)
        added.append(address)
    return added
