"""``slapos start TITLE``: request the instance TITLE started, and change nothing else (`slap.cli.state_change`)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option
from partita.slap.cli.state_change import change_state, wait_options


@click.command("start")
@click.argument("title")
@wait_options
@cfg_option
@format_option
def command(title: str, wait: bool, timeout: float, cfg: str | None, output_format: str) -> None:
    """Start the instance TITLE: request it started, keeping its release, type, parameters and SLA."""
    change_state(title, "started", wait=wait, timeout=timeout, cfg=cfg, output_format=output_format)
