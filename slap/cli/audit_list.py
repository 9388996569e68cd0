"""``slapos audit list``: what happened on the master, newest first (an admin: everything; a user:
what they did): who (actor, address), what (action, target), the outcome and a detail.

``--since`` takes a duration ago (``30m``, ``2h``, ``7d``) or an ISO date (``2026-12-01``).
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.durations import parse_since, show_time
from partita.slap.cli.output import print_json, print_table

COLUMNS = ("at", "actor", "address", "action", "target", "outcome", "detail")
MAX_LIMIT = 1000


@click.command("list")
@click.option("--since", metavar="DURATION|ISO-DATE", help="Only events since then: 30m, 2h, 7d, 2026-12-01.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), help="At most this many events (master's default: 100).")
@cfg_option
@format_option
def command(since: str | None, limit: int | None, cfg: str | None, output_format: str) -> None:
    """List audit events, newest first."""
    since_epoch = parse_since(since, datetime.now(timezone.utc)) if since is not None else None
    with open_client(cfg) as client:
        events = client.list_audit_events(since=since_epoch, limit=limit)
    if output_format == "json":
        print_json(events)
        return
    if not events:
        click.echo("No events.")
        return
    print_table(COLUMNS, [
        [show_time(e.get("at"), seconds=True), e.get("actor"), e.get("address"), e.get("action"), e.get("target"),
         e.get("outcome"), e.get("detail")] for e in events])
