"""`slapos configure local`: write a working all-in-one configuration (proxy + node + client)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from partita.slap.listen import check_loopback
from partita.proxy.local_config import LocalSettings, render
from partita.slap.errors import Conflict
from partita.slap.fileio import atomic_write


def _default_directory() -> str:
    return "/etc/opt/slapos" if os.geteuid() == 0 else str(Path("~/.slapos").expanduser())


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
@click.option("--slapos-instance-root", "instance_root", default="/srv/slapgrid", show_default=True)
@click.option("--slapos-software-root", "software_root", default="/opt/slapgrid", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing slapos.cfg.")
def command(directory: str, force: bool, **options: object) -> None:
    """Write DIRECTORY/slapos.cfg for a proxy and a node on this machine."""
    directory = str(Path(directory).expanduser().absolute())
    check_loopback(str(options["host"]), "--daemon-listen-ip")
    settings = LocalSettings(directory=directory, as_root=os.geteuid() == 0, **options)  # type: ignore[arg-type]
    text = render(settings)
    target = Path(directory) / "slapos.cfg"
    if target.exists() and not force:
        raise Conflict(f"{target} exists; give --force to overwrite it")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the catalog goes there (issue 10)
    atomic_write(target, text, mode=0o644)
    click.echo(f"wrote {target}")
    click.echo(f"next: slapos proxy start --cfg {target}")
