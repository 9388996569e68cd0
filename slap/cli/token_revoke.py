"""``slapos token revoke TOKEN_ID``: revoke a token by its public id (the first 12 hex digits of
the token, as ``token list`` shows it): the caller's own, or any for an admin."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client


@click.command("revoke")
@click.argument("token_id")
@cfg_option
def command(token_id: str, cfg: str | None) -> None:
    """Revoke the token TOKEN_ID."""
    token_id = token_id.strip().split(".")[0]  # a whole token names its id too; never echo the secret
    with open_client(cfg) as client:
        answer = client.revoke_api_token(token_id)
    title = answer.get("title") if isinstance(answer, dict) else None
    click.echo(title or f"token {token_id} revoked")
