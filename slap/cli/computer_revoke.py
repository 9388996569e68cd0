"""``slapos computer revoke COMP-ID``: refuse every certificate of a computer and of its partitions
from the next call on (a lost or compromised node; enrol it again with ``computer token create
--computer COMP-ID``)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option, open_client


@click.command("revoke")
@click.argument("computer_guid", metavar="COMP-ID")
@cfg_option
def command(computer_guid: str, cfg: str | None) -> None:
    """Revoke the certificates of the computer COMP-ID and of its partitions."""
    with open_client(cfg) as client:
        answer = client.revoke_compute_node(computer_guid)
    count = int(answer.get("revoked") or 0)
    noun = "certificate" if count == 1 else "certificates"
    click.echo(f"revoked {count} {noun} of {computer_guid}")
