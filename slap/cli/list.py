"""``slapos list`` (also ``slapos service list``): your instance trees (each read as a
`slap.wire.instance.TreeEntry`)."""
from __future__ import annotations

from typing import Any

import click

from partita.slap.cli.common import cfg_option, format_option, open_client, read_tree, where
from partita.slap.cli.output import print_json, print_table
from partita.slap.wire.instance import TreeEntry

COLUMNS = ("title", "state", "status", "software release", "partition")


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
        rows.append([row["title"], row["state"], row["status_reason"], row["software_release"], where(tree)])
    print_table(COLUMNS, rows)


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
