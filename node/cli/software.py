"""`slapos node software`: build the software releases supplied to this computer, remove the
ones supplied as destroyed, and tell the master (building, available, error with the log tail)."""
from __future__ import annotations

import click

from partita.node.cli.common import EXIT_FAILED, cfg_option, command_lock, load_config, show_progress
from partita.node.context import open_context
from partita.node.passes import fetch, software_pass


@click.command("software")
@cfg_option
def command(cfg: str | None) -> None:
    """Build (or remove) the software releases supplied to this computer."""
    show_progress()
    config = load_config(cfg)
    with command_lock(config, "software"):
        ctx = open_context(config, with_supervisor=False)
        summary = software_pass(ctx, fetch(ctx))
    if summary.failed:
        click.echo(f"slapos: {len(summary.failed)} software release(s) failed: {', '.join(summary.failed)}", err=True)
        raise SystemExit(EXIT_FAILED)
