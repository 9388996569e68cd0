"""``slapos experiment collect DIR``: every host's logs and configuration (never a private key)
and the master's catalog into DIR, with a README (see `partita.experiment.gather`)."""
from __future__ import annotations

from pathlib import Path

import click

from partita.experiment import gather
from partita.experiment.cli.common import dir_option, load_context


@click.command("collect")
@click.argument("target", metavar="DIR", type=click.Path(file_okay=False))
@dir_option
def command(target: str, directory: str) -> None:
    """Copy every host's logs and configuration and the catalog into DIR."""
    context = load_context(directory)
    written = gather.collect(context, Path(target).absolute())
    click.echo(f"collected {len(written)} files into {Path(target).absolute()} (see its README)")
