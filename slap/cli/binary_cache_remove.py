"""``slapos binary-cache remove KEY`` or ``slapos binary-cache remove --uploader COMP-ID``: remove
one entry of the master's binary cache, or every entry a computer uploaded (what an admin does
once a builder is no longer trusted, after ``slapos computer builder unset``); admin only. Prints
one line per entry removed. Nodes that need a removed release build it themselves."""
from __future__ import annotations

from typing import Any

import click

from partita.slap.cli.common import cfg_option, open_client


def describe(entry: dict[str, Any]) -> str:
    """``removed KEY (URL, uploaded by COMP-1)``, ``uploading`` said when it was not complete."""
    state = "" if entry.get("state") == "complete" else f", {entry.get('state')}"
    return (f"removed {entry.get('key')} ({entry.get('software_release_uri')}, uploaded by "
            f"{entry.get('uploader')}{state})")


@click.command("remove")
@click.argument("key", required=False)
@click.option("--uploader", metavar="COMP-ID", help="Remove every entry this computer uploaded.")
@cfg_option
def command(key: str | None, uploader: str | None, cfg: str | None) -> None:
    """Remove the entry KEY, or every entry of --uploader COMP-ID."""
    if (key is None) == (uploader is None):
        raise click.UsageError("give either a KEY or --uploader COMP-ID")
    with open_client(cfg) as client:
        removed = client.remove_binary_cache_entries(key=key, uploader=uploader)
    if not removed:
        click.echo(f"{uploader} uploaded nothing to the binary cache: nothing removed")
    for entry in removed:
        click.echo(describe(entry))
