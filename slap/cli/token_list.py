"""``slapos token list``: tokens (the caller's; an admin's: all), API and enrolment tokens alike,
with their state (active, used, expired, revoked). Secrets are never shown: the master keeps
only their hash."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.durations import show_time
from partita.slap.cli.output import print_json, print_table

COLUMNS = ("id", "kind", "title", "owner", "state", "created", "expires", "last used")


@click.command("list")
@cfg_option
@format_option
def command(cfg: str | None, output_format: str) -> None:
    """List tokens: id, kind, title, owner, state, dates."""
    with open_client(cfg) as client:
        tokens = client.list_api_tokens()
    if output_format == "json":
        print_json(tokens)
        return
    if not tokens:
        click.echo("No tokens.")
        return
    print_table(COLUMNS, [
        [t.get("token_id"), t.get("kind"), t.get("title"), t.get("owner"), t.get("state"),
         show_time(t.get("created_at")), show_time(t.get("expires_at")) or "never",
         show_time(t.get("last_used_at"))] for t in tokens])
