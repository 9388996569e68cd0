"""The node's part of a written configuration: ``instance_root``/``software_root`` and the
``[slapformat]`` section, shared by `slapos configure local` (proxy) and `slapos node register`
(node) so that both write the same defaults and refuse the same mistakes.

Pure: settings in, text out (``ValidationError`` for a bad value, one line).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from partita.slap.errors import ValidationError

DEFAULT_INSTANCE_ROOT = "/srv/slapgrid"
DEFAULT_SOFTWARE_ROOT = "/opt/slapgrid"
DEFAULT_IPV4_NETWORK = "127.0.1.0/24"


@dataclass(frozen=True)
class FormatSettings:
    partitions: int = 10
    interface: str = "lo"
    ipv4_network: str = DEFAULT_IPV4_NETWORK
    ipv6_network: str = ""  # unset: the node takes the interface's global prefix (or its default on lo)
    instance_root: str = DEFAULT_INSTANCE_ROOT
    software_root: str = DEFAULT_SOFTWARE_ROOT
    as_root: bool = True


def check_format(settings: FormatSettings) -> None:
    """A ValidationError naming the first bad value."""
    if not 1 <= settings.partitions <= 1000:
        raise ValidationError(f"partition number must be between 1 and 1000, not {settings.partitions}")
    check_network(settings.ipv4_network, 4, settings.partitions)
    if settings.ipv6_network:
        check_network(settings.ipv6_network, 6, settings.partitions)
    check_absolute(settings.instance_root, settings.software_root)


def check_network(text: str, version: int, partitions: int) -> None:
    """A ValidationError unless `text` is an IPv`version` network with room for `partitions`
    (never its network address; in IPv4, nor its broadcast address)."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValidationError(f"bad IPv{version} network {text!r}") from None
    reserved = 2 if version == 4 else 1
    if network.version != version or network.num_addresses < partitions + reserved:
        raise ValidationError(f"{text} has no room for {partitions} partitions")


def check_absolute(*paths: str) -> None:
    for path in paths:
        if not path.startswith("/") or "\n" in path:
            raise ValidationError(f"paths must be absolute: {path!r}")


def roots_lines(settings: FormatSettings) -> list[str]:
    """The ``[slapos]`` lines of the node's roots."""
    return [f"instance_root = {settings.instance_root}", f"software_root = {settings.software_root}",
            f"root_check = {settings.as_root}"]


def format_section(settings: FormatSettings) -> str:
    """The ``[slapformat]`` section (checked first)."""
    check_format(settings)
    ipv6 = f"ipv6_local_network = {settings.ipv6_network}\n" if settings.ipv6_network else ""
    return f"""[slapformat]
partition_amount = {settings.partitions}
interface_name = {settings.interface}
ipv4_local_network = {settings.ipv4_network}
{ipv6}partition_base_name = slappart
user_base_name = slapuser
software_user = slapsoft
alter_user = {settings.as_root}
alter_network = {settings.as_root}
"""
