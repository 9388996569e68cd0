"""``slapos computer builder set COMP-ID``: the computer's built software fills the binary cache (admin only:
what it uploads runs on every node that deploys the same release)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client


@click.command("set")
@click.argument("computer_guid", metavar="COMP-ID")
@cfg_option
def command(computer_guid: str, cfg: str | None) -> None:
    """Let the computer COMP-ID upload what it builds to the binary cache."""
    with open_client(cfg) as client:
        client.set_compute_node_builder(computer_guid, True)
    click.echo(f"{computer_guid}: builder (fills the binary cache)")
