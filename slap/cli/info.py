"""``slapos info TITLE`` (also ``slapos service info``): an instance tree's root instance.

JSON output has at least the keys title, state, partition, computer, software_release,
software_type, status_reason, parameters and connection_parameters (`slap.cli.common.summary`).
"""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option, open_client, read_instance
from partita.slap.cli.instance_view import show_instance


@click.command("info")
@click.argument("title")
@cfg_option
@format_option
def command(title: str, cfg: str | None, output_format: str) -> None:
    """Show the instance TITLE: state, partition, status, parameters, connection parameters."""
    with open_client(cfg) as client:
        doc = read_instance(client.get_instance_tree(title))
    show_instance(doc, output_format)
