"""``slapos destroy TITLE``: request the instance TITLE destroyed, and change nothing else (`slap.cli.state_change`)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option
from partita.slap.cli.state_change import change_state, wait_options


@click.command("destroy")
@click.argument("title")
@wait_options
@cfg_option
@format_option
def command(title: str, wait: bool, timeout: float, cfg: str | None, output_format: str) -> None:
    """Destroy the instance TITLE (and what it requested): its partition is wiped and freed."""
    change_state(title, "destroyed", wait=wait, timeout=timeout, cfg=cfg, output_format=output_format)
