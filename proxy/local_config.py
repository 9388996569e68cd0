"""The all-in-one configuration written by `slapos configure local` (pure: settings -> text).

The node's part (roots and ``[slapformat]``) is `slap.format_settings`, shared with
`slapos node register`."""
from __future__ import annotations

from dataclasses import dataclass

from partita.slap.config import url_host
from partita.slap.errors import ValidationError
from partita.slap.format_settings import (
    DEFAULT_INSTANCE_ROOT, DEFAULT_SOFTWARE_ROOT, FormatSettings, check_absolute, format_section, roots_lines,
)


@dataclass(frozen=True)
class LocalSettings:
    directory: str
    computer_id: str = "local_computer"
    host: str = "127.0.0.1"
    port: int = 8080
    partitions: int = 10
    interface: str = "lo"
    ipv4_network: str = "127.0.1.0/24"
    ipv6_network: str = ""
    instance_root: str = "/srv/slapgrid"
    software_root: str = "/opt/slapgrid"
    as_root: bool = True

    def node(self) -> FormatSettings:
        return FormatSettings(partitions=self.partitions, interface=self.interface,
                              ipv4_network=self.ipv4_network, ipv6_network=self.ipv6_network,
                              instance_root=self.instance_root,
                              software_root=self.software_root, as_root=self.as_root)


def default_roots(directory: str, as_root: bool) -> tuple[str, str]:
    """The instance and software roots when none is given: the system's as root, else inside the
    configuration directory (``~/.slapos`` by default), where the user can write."""
    if as_root:
        return DEFAULT_INSTANCE_ROOT, DEFAULT_SOFTWARE_ROOT
    return f"{directory}/srv/slapgrid", f"{directory}/opt/slapgrid"


def check(settings: LocalSettings) -> None:
    if not 1 <= settings.port <= 65535:
        raise ValidationError(f"port must be between 1 and 65535, not {settings.port}")
    check_absolute(settings.directory)


def render(settings: LocalSettings) -> str:
    check(settings)
    slapformat = format_section(settings.node())
    host = url_host(settings.host)
    roots = "\n".join(roots_lines(settings.node()))
    return f"""# All-in-one Partita configuration: proxy, node and client read this one file.
[slapos]
computer_id = {settings.computer_id}
master_url = http://{host}:{settings.port}
{roots}

[slapproxy]
host = {settings.host}
port = {settings.port}
database_uri = {settings.directory}/proxy.db

{slapformat}"""
