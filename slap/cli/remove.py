"""``slapos remove URL COMPUTER``: ask a computer to remove a software release."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option
from partita.slap.cli.supply import supply_state


@click.command("remove")
@click.argument("software_url", metavar="URL")
@click.argument("computer", metavar="COMPUTER")
@cfg_option
@format_option
def command(software_url: str, computer: str, cfg: str | None, output_format: str) -> None:
    """Remove the software release URL from the computer COMPUTER."""
    supply_state(software_url, computer, "destroyed", cfg, output_format)
