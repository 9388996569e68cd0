"""``slapos computer list``: the computers the caller may see (an admin: all; a user: their own),
with their partitions and the state of their newest certificate."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.computers import COLUMNS, row
from partita.slap.cli.output import print_json, print_table


@click.command("list")
@cfg_option
@format_option
def command(cfg: str | None, output_format: str) -> None:
    """List computers: owner, partitions busy/total, certificate state and expiry."""
    with open_client(cfg) as client:
        entries = client.list_compute_nodes()
    if output_format == "json":
        print_json(entries)
        return
    if not entries:
        click.echo("No computers.")
        return
    print_table(COLUMNS, [row(entry) for entry in entries])
