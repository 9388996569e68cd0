"""``slapos user token NAME``: a new single-use enrolment token for an existing user (admin), e.g.
after their certificate expired or was lost. Output as ``user create``: the token alone on
stdout, the command the user runs on stderr."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from partita.slap.cli.common import cfg_option, client_from, load_client_config
from partita.slap.cli.durations import expiry_phrase, parse_duration
from partita.slap.cli.output import echo_err


@click.command("token")
@click.argument("name")
@click.option("--ttl", metavar="DURATION", help="How long the token may be used: 30m, 2h, 7d "
              "(default: the master's).")
@cfg_option
def command(name: str, ttl: str | None, cfg: str | None) -> None:
    """Print a new enrolment token for the existing user NAME."""
    seconds = parse_duration(ttl) if ttl is not None else None
    config = load_client_config(cfg)
    with client_from(config) as client:
        answer = client.create_user_token(name, ttl=seconds)
    token = answer["token"]
    click.echo(token)
    echo_err(f"enrolment token {answer.get('token_id')} for {answer.get('name', name)}, single use, "
             f"{expiry_phrase(answer.get('expires_at'), datetime.now(timezone.utc))}")
    echo_err(f"the user runs: slapos configure client --token {token} --master-url {config.master_url}")
