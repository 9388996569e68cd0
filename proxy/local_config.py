"""The all-in-one configuration written by `slapos configure local` (pure: settings -> text)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from partita.slap.config import url_host
from partita.slap.errors import ValidationError


@dataclass(frozen=True)
class LocalSettings:
    directory: str
    computer_id: str = "local_computer"
    host: str = "127.0.0.1"
    port: int = 8080
    partitions: int = 10
    interface: str = "lo"
    ipv4_network: str = "127.0.1.0/24"
    instance_root: str = "/srv/slapgrid"
    software_root: str = "/opt/slapgrid"
    as_root: bool = True


def check(settings: LocalSettings) -> None:
    if not 1 <= settings.port <= 65535:
        raise ValidationError(f"port must be between 1 and 65535, not {settings.port}")
    if not 1 <= settings.partitions <= 1000:
        raise ValidationError(f"partition number must be between 1 and 1000, not {settings.partitions}")
    try:
        network = ipaddress.ip_network(settings.ipv4_network, strict=False)
    except ValueError:
        raise ValidationError(f"bad IPv4 network {settings.ipv4_network!r}") from None
    if network.version != 4 or network.num_addresses < settings.partitions + 2:
        raise ValidationError(f"{settings.ipv4_network} has no room for {settings.partitions} partitions")
    for path in (settings.directory, settings.instance_root, settings.software_root):
        if not path.startswith("/"):
            raise ValidationError(f"paths must be absolute: {path!r}")


def render(settings: LocalSettings) -> str:
    check(settings)
    host = url_host(settings.host)
    return f"""# All-in-one Partita configuration: proxy, node and client read this one file.
[slapos]
computer_id = {settings.computer_id}
master_url = http://{host}:{settings.port}
instance_root = {settings.instance_root}
software_root = {settings.software_root}
root_check = {settings.as_root}

[slapproxy]
host = {settings.host}
port = {settings.port}
database_uri = {settings.directory}/proxy.db

[slapformat]
partition_amount = {settings.partitions}
interface_name = {settings.interface}
ipv4_local_network = {settings.ipv4_network}
partition_base_name = slappart
user_base_name = slapuser
software_user = slapsoft
alter_user = {settings.as_root}
alter_network = {settings.as_root}
"""
