"""``slapos experiment status``: the table of hosts again, from the master (each node online,
unreachable or never seen) and from each host (its daemon alive); exit status 1 if anything is
not running."""
from __future__ import annotations

import sys

import click

from partita.experiment import report
from partita.experiment.cli.common import client_hint, dir_option, load_context


@click.command("status")
@dir_option
def command(directory: str) -> None:
    """Show the experiment's hosts: role, computer, partitions, state."""
    context = load_context(directory)
    if not context.state.running:
        click.echo(f"the experiment under {context.directory} is down")
        sys.exit(1)
    rows = report.rows(context)
    click.echo(report.render(rows))
    click.echo(f"master: {context.state.master_url}")
    click.echo(client_hint(context))
    if not report.alive(rows):
        sys.exit(1)
