"""``slapos list`` (also ``slapos service list``): your instance trees (each read as a
`slap.wire.instance.TreeEntry`).

The table fits the terminal (80 columns included, `slap.cli.output.print_fitted_table`): long
titles and software release URLs are shortened in the middle (a URL keeps its last segment,
``https://exam…/software.cfg``); status reasons are one line of at most `STATUS_MAX`
characters and, like partitions, are cut at the end. ``--format json`` keeps every value whole.
"""
from __future__ import annotations

from typing import Any

import click

from partita.slap.cli.common import cfg_option, format_option, open_client, read_tree, where
from partita.slap.cli.output import (
    Fit, print_fitted_table, print_json, shorten_end, shorten_middle, shorten_url, single_line,
)
from partita.slap.wire.instance import TreeEntry

COLUMNS = ("title", "state", "status", "software release", "partition")
FITS = (Fit(12, shorten_middle), Fit(9), Fit(12, shorten_end, weight=1.5),
        Fit(24, shorten_url, weight=2.2), Fit(10, shorten_end, weight=0.6))
STATUS_MAX = 60


@click.command("list")
@cfg_option
@format_option
def command(cfg: str | None, output_format: str) -> None:
    """List your instance trees: title, state, status, software release, partition."""
    with open_client(cfg) as client:
        trees = [read_tree(tree) for tree in client.list_instance_trees()]
    if output_format == "json":
        print_json([tree_row(tree) for tree in trees])
        return
    if not trees:
        click.echo("No instances.")
        return
    rows = []
    for tree in trees:
        row = tree_row(tree)
        status = shorten_end(single_line(row["status_reason"]), STATUS_MAX)
        rows.append([row["title"], row["state"], status, row["software_release"], where(tree)])
    print_fitted_table(COLUMNS, rows, FITS)


def tree_row(tree: TreeEntry) -> dict[str, Any]:
    """One instance tree as `list --format json` shows it."""
    return {
        "title": tree.title,
        "instance_guid": tree.instance_guid,
        "state": tree.state,
        "status_reason": tree.status_reason,
        "software_release": tree.software_release_uri,
        "software_type": tree.software_type,
        "computer": tree.computer_guid,
        "partition": tree.compute_partition_id,
    }
