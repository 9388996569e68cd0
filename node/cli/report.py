"""`slapos node report`: destroy the instances requested destroyed and free their partitions."""
from __future__ import annotations

import click

from partita.node.cli.common import EXIT_FAILED, cfg_option, command_lock, load_config, show_progress
from partita.node.context import open_context
from partita.node.passes import fetch, report_pass


@click.command("report")
@cfg_option
def command(cfg: str | None) -> None:
    """Destroy what is requested destroyed and free its partitions."""
    show_progress()
    config = load_config(cfg)
    with command_lock(config, "report"):
        ctx = open_context(config)
        summary = report_pass(ctx, fetch(ctx))
    if summary.failed:
        click.echo(f"slapos: cannot destroy {', '.join(summary.failed)} (see the log above)", err=True)
        raise SystemExit(EXIT_FAILED)
