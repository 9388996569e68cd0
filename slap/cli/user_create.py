"""``slapos user create NAME``: a new user and the single-use token they enrol with (admin).

The token goes alone to stdout; the command the user runs (``slapos configure client --token T
--master-url URL``, which makes their key and certificate) goes to stderr.
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from partita.slap.cli.common import cfg_option, client_from, load_client_config
from partita.slap.cli.durations import expiry_phrase, parse_duration
from partita.slap.cli.output import echo_err


@click.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The user administers the master (computers, users, tokens).")
@click.option("--ttl", metavar="DURATION", help="How long the enrolment token may be used: 30m, 2h, 7d "
              "(default: the master's).")
@cfg_option
def command(name: str, admin: bool, ttl: str | None, cfg: str | None) -> None:
    """Create the user NAME and print the token they enrol with."""
    seconds = parse_duration(ttl) if ttl is not None else None
    config = load_client_config(cfg)
    with client_from(config) as client:
        answer = client.create_user(name, admin=admin, ttl=seconds)
    token = answer["token"]
    click.echo(token)
    role = "admin" if answer.get("admin") else "user"
    echo_err(f"{role} {answer.get('name', name)} created; enrolment token {answer.get('token_id')}, single use, "
             f"{expiry_phrase(answer.get('expires_at'), datetime.now(timezone.utc))}")
    echo_err(f"the user runs: slapos configure client --token {token} --master-url {config.master_url}")
