"""``slapos computer builder unset COMP-ID``: the computer no longer fills the binary cache (admin only;
what it uploaded stays)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client


@click.command("unset")
@click.argument("computer_guid", metavar="COMP-ID")
@cfg_option
def command(computer_guid: str, cfg: str | None) -> None:
    """Stop the computer COMP-ID from uploading to the binary cache."""
    with open_client(cfg) as client:
        client.set_compute_node_builder(computer_guid, False)
    click.echo(f"{computer_guid}: not a builder")
