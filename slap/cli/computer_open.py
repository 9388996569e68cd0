"""``slapos computer open COMP-ID``: the computer takes new instances again (owner or admin)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option
from partita.slap.cli.computers import set_scope


@click.command("open")
@click.argument("computer_guid", metavar="COMP-ID")
@cfg_option
def command(computer_guid: str, cfg: str | None) -> None:
    """The computer COMP-ID takes new instances again."""
    set_scope(cfg, computer_guid, "open")
