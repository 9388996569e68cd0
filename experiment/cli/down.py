"""``slapos experiment down``: every node stopped and unformatted, the master and PostgreSQL
stopped, the remote directories removed (see `partita.experiment.teardown`); the local state
then says the experiment is down (the wheels are kept for the next ``up``)."""
from __future__ import annotations

import shutil

import click

from partita.experiment import teardown
from partita.experiment.cli.common import dir_option, load_context
from partita.experiment.state import save


@click.command("down")
@dir_option
def command(directory: str) -> None:
    """Stop everything the experiment started and leave the hosts as found."""
    context = load_context(directory)
    seconds = teardown.down(context)
    state = context.state
    state.running = False
    state.master_url = state.client_config = ""
    state.postgres_user_created = False
    for host in state.hosts:
        host.address = host.interface = host.computer_id = ""
        host.partitions = 0
    save(context.directory, state)
    shutil.rmtree(context.client_config.parent, ignore_errors=True)
    steps = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    click.echo(f"down: {len(state.hosts)} hosts left as found ({steps})")
