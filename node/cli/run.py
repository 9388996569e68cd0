"""`slapos node run`: the node daemon, in the foreground (see docs/node.md for a systemd unit)."""
from __future__ import annotations

import signal
from types import FrameType

import click

from partita.node.cli.common import cfg_option, command_lock, load_config, show_progress
from partita.node.context import open_context
from partita.node.daemon import Daemon


@click.command("run")
@cfg_option
def command(cfg: str | None) -> None:
    """Converge continuously: wake up on every change the master announces."""
    show_progress()
    config = load_config(cfg)
    with command_lock(config, "software", "instance", "report"):
        daemon = Daemon(open_context(config))

        def stop(signum: int, _frame: FrameType | None) -> None:
            # While waiting for the master: stop now. During work: finish the current step first
            # (a second signal stops at once). Either way supervisord keeps the services running.
            if daemon.waiting or daemon.stop.is_set():
                raise SystemExit(0)
            daemon.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"slapos node run: computer {config.computer_id}, master {config.master_url}", err=True)
        daemon.run()
