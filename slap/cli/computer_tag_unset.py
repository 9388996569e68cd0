"""``slapos computer tag unset COMP-ID NAME...``: remove tags of a computer (owner or admin)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client
from partita.slap.cli.computers import show_tags


@click.command("unset")
@click.argument("computer_guid", metavar="COMP-ID")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@cfg_option
def command(computer_guid: str, names: tuple[str, ...], cfg: str | None) -> None:
    """Remove the tags NAME... of the computer COMP-ID."""
    with open_client(cfg) as client:
        answer = client.tag_compute_node(computer_guid, unset=list(names))
    click.echo(f"{computer_guid}: {show_tags(answer.get('tags'))}")
