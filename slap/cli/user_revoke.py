"""``slapos user revoke NAME`` (admin): a user who leaves; every certificate and token of theirs is
refused from the next call on. Their instances stay until an admin destroys them."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client


@click.command("revoke")
@click.argument("name")
@cfg_option
def command(name: str, cfg: str | None) -> None:
    """Revoke every certificate and token of the user NAME."""
    with open_client(cfg) as client:
        answer = client.revoke_user(name)
    click.echo(str(answer.get("title") or f"revoked {name}"))
