"""`slapos node prune [--dry-run]`: remove the entries of the node's pip and cmmi stores that no
software release on disk uses any more (`node.prune`). The node never prunes by itself."""
from __future__ import annotations

import click

from partita.node.cli.common import cfg_option, load_config
from partita.node.prune import Outcome, human_size, prune


@click.command("prune")
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
@cfg_option
def command(dry_run: bool, cfg: str | None) -> None:
    """Remove the store entries (pip wheels, cmmi builds) no software release uses."""
    config = load_config(cfg)
    outcome = prune(config, dry_run=dry_run)
    show(outcome, dry_run)


def show(outcome: Outcome, dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    if outcome.unknown:
        click.echo(f"slapos: warning: software {', '.join(outcome.unknown)} was built before the stores "
                   "recorded their users: keeping every store entry (rebuild it to prune)", err=True)
    for entry in outcome.busy:
        click.echo(f"busy {entry} (a build holds it): kept")
    for item in outcome.removed:
        click.echo(f"{verb} {item.entry} ({human_size(item.size)})")
    count = len(outcome.removed)
    click.echo(f"{verb} {count} store {'entry' if count == 1 else 'entries'}, {human_size(outcome.total)}")
