"""``slapos computer tag set COMP-ID NAME=VALUE...``: tags an SLA's ``tag.NAME=VALUE`` matches
(owner or admin)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client
from partita.slap.cli.computers import show_tags


@click.command("set")
@click.argument("computer_guid", metavar="COMP-ID")
@click.argument("tags", metavar="NAME=VALUE...", nargs=-1, required=True)
@cfg_option
def command(computer_guid: str, tags: tuple[str, ...], cfg: str | None) -> None:
    """Set tags of the computer COMP-ID (e.g. region=rennes gpu=a100)."""
    pairs = {}
    for item in tags:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"a tag is NAME=VALUE, not {item!r}")
        pairs[name] = value
    with open_client(cfg) as client:
        answer = client.tag_compute_node(computer_guid, pairs)
    click.echo(f"{computer_guid}: {show_tags(answer.get('tags'))}")
