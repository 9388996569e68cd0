"""``slapos software publish NAME URL``: publish a software release under a short name (admin).

Afterwards ``slapos request TITLE product.NAME`` (and ``slapos supply product.NAME COMPUTER``)
use URL, on every client: the master resolves names (`master.services.software_names`).
Publishing a name again points it at the new URL; a published name hides a shipped release of
the same name. Only an admin may publish (the proxy's local user too).
"""
from __future__ import annotations

import click

from partita.slap import software_names
from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.output import print_json


@click.command("publish")
@click.argument("name")
@click.argument("software_url", metavar="URL")
@cfg_option
@format_option
def command(name: str, software_url: str, cfg: str | None, output_format: str) -> None:
    """Publish the software release URL as product.NAME (admin only)."""
    name = software_names.split_name(name)
    with open_client(cfg) as client:
        answer = client.call("slapos.put.v0.software_release_name", {"name": name, "software_release_uri": software_url})
    if output_format == "json":
        print_json(answer)
        return
    click.echo(f"Published {answer.get('software_release_uri', software_url)} as "
               f"{software_names.PREFIX}{answer.get('name', name)}.")
