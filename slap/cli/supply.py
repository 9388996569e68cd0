"""``slapos supply URL COMPUTER``: ask a computer to install a software release."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.output import print_json


@click.command("supply")
@click.argument("software_url", metavar="URL")
@click.argument("computer", metavar="COMPUTER")
@cfg_option
@format_option
def command(software_url: str, computer: str, cfg: str | None, output_format: str) -> None:
    """Install the software release URL on the computer COMPUTER."""
    supply_state(software_url, computer, "available", cfg, output_format)


def supply_state(software_url: str, computer: str, state: str, cfg: str | None, output_format: str) -> None:
    """Ask for `software_url` to be `state` (available or destroyed) on `computer` and say so."""
    with open_client(cfg) as client:
        answer = client.supply(computer, software_url, state)
    if output_format == "json":
        print_json({"computer": computer, "software_release": software_url, "state": state,
                    "answer": answer})
        return
    verb = "installed on" if state == "available" else "removed from"
    click.echo(f"Requested {software_url} to be {verb} {computer}.")
