"""``slapos computer token create``: a single-use enrolment token for a node (admin).

The token goes alone to stdout (``T=$(slapos computer token create)``); when it expires and the
command to run on the node go to stderr. ``--computer COMP-ID`` re-enrols an existing computer
(after its certificate expired or was lost).
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from partita.slap.cli.common import cfg_option, client_from, load_client_config
from partita.slap.cli.durations import expiry_phrase, parse_duration
from partita.slap.cli.output import echo_err


@click.command("create")
@click.option("--title", help="What the token is for (shown in token list and the audit log).")
@click.option("--ttl", metavar="DURATION", help="How long it may be used: 30m, 2h, 7d (default: the "
              "master's, 1h; at most 7d).")
@click.option("--computer", "computer_guid", metavar="COMP-ID",
              help="Re-enrol this existing computer instead of creating one.")
@cfg_option
def command(title: str | None, ttl: str | None, computer_guid: str | None, cfg: str | None) -> None:
    """Create a token a new node enrols with (slapos node register --token ...)."""
    seconds = parse_duration(ttl) if ttl is not None else None
    config = load_client_config(cfg)
    with client_from(config) as client:
        answer = client.create_compute_node_token(title=title, ttl=seconds, computer_guid=computer_guid)
    token = answer["token"]
    click.echo(token)
    for_what = f"computer {answer['computer_guid']}" if answer.get("computer_guid") else "a new computer"
    echo_err(f"enrolment token {answer.get('token_id')} for {for_what}, single use, "
             f"{expiry_phrase(answer.get('expires_at'), datetime.now(timezone.utc))}")
    echo_err(f"on the node, run: slapos node register --token {token} --master-url {config.master_url}")
