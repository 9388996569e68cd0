"""``slapos computer network set COMP-ID NETWORK``: the network an SLA's ``network_guid`` and
``mode=unique_by_network`` match; ``""`` takes the computer out of any (owner or admin)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client


@click.command("set")
@click.argument("computer_guid", metavar="COMP-ID")
@click.argument("network", metavar="NETWORK")
@cfg_option
def command(computer_guid: str, network: str, cfg: str | None) -> None:
    """Put the computer COMP-ID in NETWORK ("" for none)."""
    with open_client(cfg) as client:
        answer = client.set_compute_node_network(computer_guid, network)
    click.echo(f"{computer_guid}: network {answer.get('network_guid') or '(none)'}")
