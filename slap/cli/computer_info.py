"""``slapos computer info COMP-ID``: one computer, its certificates (newest first) and partitions."""
from __future__ import annotations

from typing import Any

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.computers import (certificate_expiry, certificate_state, instance_count, partitions, scope,
                                        show_tags)
from partita.slap.cli.durations import ago, show_time
from partita.slap.cli.output import print_json, print_mapping, print_table

CERTIFICATE_COLUMNS = ("serial", "not before", "not after", "state", "revoked")
PARTITION_COLUMNS = ("partition", "state")


@click.command("info")
@click.argument("computer_guid", metavar="COMP-ID")
@cfg_option
@format_option
def command(computer_guid: str, cfg: str | None, output_format: str) -> None:
    """Show the computer COMP-ID: owner, partitions, placement, node, certificates."""
    with open_client(cfg) as client:
        entry = client.get_compute_node(computer_guid)
    if output_format == "json":
        print_json(entry)
        return
    show(entry)


def _scope_line(entry: dict[str, Any]) -> str:
    shown = scope(entry)
    if shown == "draining":
        count = int(entry.get("busy_partition_count") or 0)
        return f"draining ({count} instance{'s' if count != 1 else ''} remain{'' if count != 1 else 's'})"
    return shown


def show(entry: dict[str, Any]) -> None:
    """The computer as a key/value table, then its certificates and partitions."""
    print_mapping({
        "computer": entry.get("computer_guid"),
        "title": entry.get("title"),
        "owner": entry.get("owner"),
        "created": show_time(entry.get("created_at")),
        "partitions busy/total": partitions(entry),
        "instances": str(instance_count(entry)),
        "allocation scope": _scope_line(entry),
        "node": f"{entry.get('contact_state') or 'never seen'} (last contact {ago(entry.get('last_contact'))})",
        "tags": show_tags(entry.get("tags")),
        "network": entry.get("network_guid") or "(none)",
        "builder": "yes (fills the binary cache)" if entry.get("builder") else "no",
        "certificate": certificate_state(entry),
        "expires": certificate_expiry(entry),
    })
    certificates = entry.get("certificates") or []
    click.echo("Certificates:")
    if certificates:
        print_table(CERTIFICATE_COLUMNS, [
            [c.get("serial"), show_time(c.get("not_before")), show_time(c.get("not_after")), c.get("state"),
             show_time(c.get("revoked_at"))] for c in certificates])
    else:
        click.echo("  (none)")
    click.echo("Partitions:")
    partition_list = entry.get("partitions") or []
    if partition_list:
        print_table(PARTITION_COLUMNS, [[p.get("partition_id"), p.get("state")] for p in partition_list])
    else:
        click.echo("  (none)")
