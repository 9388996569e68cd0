"""``slapos token create``: an API token for scripts, used as ``[slapos] api_token`` (sent as
``Authorization: Bearer``) instead of a certificate. It acts as the user who created it.

The token goes alone to stdout (``T=$(slapos token create --title ci)``); its id and expiry to
stderr. ``--ttl never`` makes a token that does not expire (revoke it with ``token revoke``).
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from partita.slap.cli.common import cfg_option, open_client
from partita.slap.cli.durations import expiry_phrase, parse_ttl
from partita.slap.cli.output import echo_err


@click.command("create")
@click.option("--title", help="What the token is for (shown in token list and the audit log).")
@click.option("--ttl", metavar="DURATION|never", help="How long it is valid: 30m, 2h, 7d, or never "
              "(default: the master's).")
@cfg_option
def command(title: str | None, ttl: str | None, cfg: str | None) -> None:
    """Create an API token and print it."""
    seconds = parse_ttl(ttl) if ttl is not None else None
    with open_client(cfg) as client:
        answer = client.create_api_token(title=title, ttl=seconds, never_expires=ttl is not None and seconds is None)
    click.echo(answer["token"])
    echo_err(f"API token {answer.get('token_id')}, "
             f"{expiry_phrase(answer.get('expires_at'), datetime.now(timezone.utc))}; "
             "scripts put it in [slapos] api_token of their client configuration")
