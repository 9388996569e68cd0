"""`slapos node instance`: one pass over the busy partitions: deploy what changed, check the
promises of the rest, and report to the master."""
from __future__ import annotations

import click

from partita.node.cli.common import EXIT_FAILED, cfg_option, command_lock, load_config, show_progress
from partita.node.context import open_context
from partita.node.passes import fetch, instance_pass


@click.command("instance")
@cfg_option
def command(cfg: str | None) -> None:
    """Deploy the instances of this computer's partitions (one pass)."""
    show_progress()
    config = load_config(cfg)
    with command_lock(config, "instance"):
        ctx = open_context(config)
        summary, _ = instance_pass(ctx, fetch(ctx))
    if summary.failed:
        click.echo(f"slapos: {len(summary.failed)} partition(s) failed: {', '.join(summary.failed)} "
                   "(slapos info TITLE tells why)", err=True)
        raise SystemExit(EXIT_FAILED)
