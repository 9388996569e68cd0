"""`slapos configure local`: write a working all-in-one configuration (proxy + node + client).

Where, by default: as root, ``/etc/opt/slapos/slapos.cfg`` with the node's roots in
``/srv/slapgrid`` and ``/opt/slapgrid``; as another user, everything in ``~/.slapos``:
``slapos.cfg``, the catalog ``proxy.db``, the instance root ``srv/slapgrid`` (partitions, the
node's logs and run directory) and the software root ``opt/slapgrid``. Roots given by option are
kept; otherwise a non-root configuration keeps its roots in the configuration directory it is
written to. Both default files are found by every command without ``--cfg``
(`slap.config.find_config_file`).
"""
from __future__ import annotations

import os
from pathlib import Path

import click

from partita.proxy.local_config import LocalSettings, default_roots, render
from partita.slap.config import NODE_DEFAULT, USER_DEFAULT, find_config_file
from partita.slap.errors import ConfigurationError, Conflict
from partita.slap.fileio import atomic_write
from partita.slap.listen import check_loopback


def _default_directory() -> str:
    return str(Path(NODE_DEFAULT).parent) if os.geteuid() == 0 else str(Path(USER_DEFAULT).expanduser().parent)


@click.command("local")
@click.option("--slapos-configuration-directory", "directory", default=_default_directory,
              show_default="/etc/opt/slapos as root, ~/.slapos otherwise", help="Where to write slapos.cfg.")
@click.option("--computer-id", default="local_computer", show_default=True)
@click.option("--daemon-listen-ip", "host", default="127.0.0.1", show_default=True,
              help="Proxy address (loopback only: the proxy has no authentication).")
@click.option("--daemon-listen-port", "port", type=int, default=8080, show_default=True, help="Proxy port.")
@click.option("--partition-number", "partitions", type=int, default=10, show_default=True)
@click.option("--interface-name", "interface", default="lo", show_default=True)
@click.option("--ipv4-local-network", "ipv4_network", default="127.0.1.0/24", show_default=True)
@click.option("--ipv6-local-network", "ipv6_network", default="",
              help="The partitions' IPv6 network (unset: the interface's global prefix; on lo a unique-local /64).")
@click.option("--slapos-instance-root", "instance_root",
              show_default="/srv/slapgrid as root, DIRECTORY/srv/slapgrid otherwise")
@click.option("--slapos-software-root", "software_root",
              show_default="/opt/slapgrid as root, DIRECTORY/opt/slapgrid otherwise")
@click.option("--force", is_flag=True, help="Overwrite an existing slapos.cfg.")
def command(directory: str, force: bool, **options: object) -> None:
    """Write DIRECTORY/slapos.cfg for a proxy and a node on this machine.

    As root: /etc/opt/slapos/slapos.cfg, roots /srv/slapgrid and /opt/slapgrid. As another user:
    everything under ~/.slapos (the catalog, srv/slapgrid, opt/slapgrid). Every command then finds
    the file without --cfg."""
    directory = str(Path(directory).expanduser().absolute())
    check_loopback(str(options["host"]), "--daemon-listen-ip")
    as_root = os.geteuid() == 0
    instance_root, software_root = default_roots(directory, as_root)
    options["instance_root"] = str(Path(str(options["instance_root"] or instance_root)).expanduser())
    options["software_root"] = str(Path(str(options["software_root"] or software_root)).expanduser())
    settings = LocalSettings(directory=directory, as_root=as_root, **options)  # type: ignore[arg-type]
    text = render(settings)
    target = Path(directory) / "slapos.cfg"
    if target.exists() and not force:
        raise Conflict(f"{target} exists; give --force to overwrite it")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the catalog goes there (issue 10)
    atomic_write(target, text, mode=0o644)
    click.echo(f"wrote {target}")
    click.echo(f"next: slapos proxy start{'' if _found_by_default(target) else f' --cfg {target}'}")


def _found_by_default(path: Path) -> bool:
    """Whether every command reads `path` when given no ``--cfg``."""
    try:
        return find_config_file(None, client=False) == path
    except ConfigurationError:
        return False
