"""``slapos computer list``: the computers the caller may see (an admin: all; a user: their own),
with their allocation scope, whether their node calls (online, unreachable, never seen), its last
contact, their instances (busy partitions over all) and their newest certificate's state, in 80
columns."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.computers import COLUMNS, FITS, row
from partita.slap.cli.output import print_fitted_table, print_json


@click.command("list")
@cfg_option
@format_option
def command(cfg: str | None, output_format: str) -> None:
    """List computers: scope, node state, last contact, instances, certificate."""
    with open_client(cfg) as client:
        entries = client.list_compute_nodes()
    if output_format == "json":
        print_json(entries)
        return
    if not entries:
        click.echo("No computers.")
        return
    print_fitted_table(COLUMNS, [row(entry) for entry in entries], FITS)
