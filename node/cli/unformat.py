"""``slapos node unformat [--stop] [--all] [--dry-run]``: undo what ``slapos node format`` made on
this machine (`node.unformat`), printing each thing removed, then what it keeps and why.

Exit status: 0 when done (also when there was nothing to remove: it is idempotent); 1 with one
line, nothing changed, while ``slapos node run`` or the node's services run (``--stop`` stops
the services: supervisord, and every process of the node's users), or on an error.
"""
from __future__ import annotations

import click

from partita.node.cli.common import cfg_option, load_config
from partita.node.unformat import describe, unformat


@click.command("unformat")
@click.option("--stop", is_flag=True,
              help="Stop the node's supervisord and kill its users' processes first (else: refuse).")
@click.option("--all", "everything", is_flag=True,
              help="Remove software_root too (built software, and the toolchain and caches in it).")
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@cfg_option
def command(stop: bool, everything: bool, dry_run: bool, cfg: str | None) -> None:
    """Remove the partitions, addresses, routes, claims, users and groups that format made.

    Users and groups that existed before format, addresses the machine had, and what another
    node still uses are kept. software_root is kept unless --all.
    """
    config = load_config(cfg)
    outcome = unformat(config, dry_run=dry_run, stop=stop, everything=everything)
    for line in describe(outcome):
        click.echo(line)
