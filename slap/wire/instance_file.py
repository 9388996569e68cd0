"""``instance.json``: what the node tells an instance buildout about its instance.

The node writes it to ``<partition>/.slapgrid/instance.json`` before every run of the instance
buildout (`node.instance`), from the instance's `NodeInstanceDocument`, the partition's addresses
and its own configuration, and names it in ``[slap-connection] instance-file``
(`slap.wire.connection`). The ``partita:slapconfiguration`` recipe parses it and exposes its
values as buildout options. Both sides run the same version of Partita (the node's toolchain),
so the file carries no version.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partita.slap.wire._fields import Fields, to_json
from partita.slap.wire.instance import INSTANCE_STATES, SharedInstance, read_shared


@dataclass(frozen=True)
class InstanceFile:
    computer_id: str
    partition_id: str
    server_url: str                      # the master
    instance_guid: str
    title: str
    root_instance_title: str
    software_release_uri: str
    software_type: str
    state: str                           # requested: started | stopped
    parameters: dict[str, Any]
    connection_parameters: dict[str, Any]
    ip_list: tuple[tuple[str, str], ...]   # the partition's (interface, address) pairs
    shared_instance_list: tuple[SharedInstance, ...]
    timestamp: float
    software_path: str                   # where the software release is built
    partition_path: str                  # the partition's directory
    ipv6_range: str | None = None        # the partition's IPv6 range ("2001:db8::1:0/112"), if any


def render_instance_file(document: InstanceFile) -> dict[str, Any]:
    """The file's content as a JSON object (the node writes it with sorted keys)."""
    return to_json(document)


def parse_instance_file(raw: object, where: str = "instance.json") -> InstanceFile:
    """The file's JSON object read back; a MalformedDocument naming the field otherwise."""
    fields = Fields(raw, where)
    return InstanceFile(
        computer_id=fields.text("computer_id"), partition_id=fields.text("partition_id"),
        server_url=fields.text("server_url"), instance_guid=fields.text("instance_guid"),
        title=fields.text("title"), root_instance_title=fields.text("root_instance_title"),
        software_release_uri=fields.text("software_release_uri"), software_type=fields.text("software_type"),
        state=fields.choice("state", INSTANCE_STATES), parameters=fields.mapping("parameters"),
        connection_parameters=fields.mapping("connection_parameters"), ip_list=fields.ip_list("ip_list"),
        shared_instance_list=tuple(read_shared(entry) for entry in fields.objects("shared_instance_list")),
        timestamp=fields.number("timestamp"), software_path=fields.text("software_path"),
        partition_path=fields.text("partition_path"),
        ipv6_range=fields.optional_text("ipv6_range") if "ipv6_range" in fields.raw else None,
    )
