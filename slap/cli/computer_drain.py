"""``slapos computer drain COMP-ID``: the computer takes no new instance and is reported until its
instances are gone (owner or admin)."""
from __future__ import annotations

import click

from partita.slap.cli.common import cfg_option
from partita.slap.cli.computers import set_scope


@click.command("drain")
@click.argument("computer_guid", metavar="COMP-ID")
@cfg_option
def command(computer_guid: str, cfg: str | None) -> None:
    """The computer COMP-ID takes no new instance and is reported until its instances are gone."""
    set_scope(cfg, computer_guid, "drain")
