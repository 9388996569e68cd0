"""``slapos node format``: create the partitions (directories, users, addresses), declare them to
the master, and print what was done.

Exit status: 0 when done and posted; 1 for an error (one line; nothing is changed when the
configuration is wrong); 2 when the partitions were formatted locally but the master could not be
reached (as SlapOS's "offline success"): run the command again when the master is back.
Warnings (IPv6 missing, busy partitions kept, leftover files) go to the log (stderr).
"""
from __future__ import annotations

import click

from partita.node.cli.common import cfg_option, load_config
from partita.node.context import master_client
from partita.node.format import MODE_EXISTING_USERS, MODE_ROOT, FormatReport, format_node

EXIT_OFFLINE = 2


def summary_lines(report: FormatReport) -> list[str]:
    """What the command prints on stdout (pure)."""
    if report.mode == MODE_ROOT:
        mode = f"mode: root, one user per partition (software user {report.user})"
    elif report.mode == MODE_EXISTING_USERS:
        mode = f"mode: root, existing users (alter_user = false; software user {report.user})"
    else:
        mode = f"mode: single-user as {report.user}"
    lines = [mode]
    width = max((len(p.partition_id) for p in report.partitions), default=0)
    user_width = max((len(p.user) for p in report.partitions), default=0)
    for partition in report.partitions:
        note = f"  range {partition.ipv6_range}" if partition.ipv6_range else ""
        note += "  (busy, beyond partition_amount)" if partition.busy_extra else ""
        lines.append(f"{partition.partition_id:<{width}}  {partition.user:<{user_width}}  "
                     f"{partition.ipv4:<15}  {partition.ipv6 or '-'}{note}")
    if report.removed:
        lines.append(f"dropped: {', '.join(report.removed)}")
    if report.posted:
        lines.append(f"posted to {report.master_url}")
    return lines


@click.command("format")
@cfg_option
def command(cfg: str | None) -> None:
    """Create the partitions (users, directories, addresses) and declare them to the master.

    As root: one user per partition and addresses on the configured interface. As another user:
    single-user mode (every partition runs as that user, IPv4 on loopback).
    """
    config = load_config(cfg)
    with master_client(config) as client:
        report = format_node(config, client)
    for line in summary_lines(report):
        click.echo(line)
    if report.master_error is not None:
        click.echo(f"slapos: error: formatted {len(report.partitions)} partitions locally; "
                   f"{report.master_error}", err=True)
        raise click.exceptions.Exit(EXIT_OFFLINE)
