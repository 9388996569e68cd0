"""``slapos master packages list``: what the master's package index serves (name, version, size)."""
from __future__ import annotations

import click

from partita.master.services.packages import Wheelhouse, version_of
from partita.slap.config import CFG_HELP, master_config, read_config


@click.command("list")
@click.option("--cfg", metavar="FILE", help=CFG_HELP)
def command(cfg: str | None) -> None:
    """List the files of the master's package index."""
    directory = master_config(read_config(cfg)).packages_directory
    files = sorted(Wheelhouse(directory).files(), key=lambda item: (item.project, item.name))
    if not files:
        click.echo(f"no packages in {directory} (slapos master packages fetch adds some)")
        return
    width = max(len(item.project) for item in files)
    for item in files:
        click.echo(f"{item.project:<{width}}  {version_of(item.name):<14} {item.size:>12,}  {item.name}")
