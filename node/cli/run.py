"""`slapos node run`: the node daemon, in the foreground (see docs/node.md for a systemd unit).

It says what it does, one line per step (`node.progress`; ``slapos -v node run`` for the detailed
log). A toolchain that cannot be built is retried with back-off (`node.daemon.open_with_retry`).

Stopping: SIGINT (Ctrl-C) or SIGTERM stops within a second or two, whatever the node is doing:
the buildout or promise it runs is stopped (its whole process group: SIGTERM, then SIGKILL),
nothing is reported for it, one line says so, and the exit status is 130 for SIGINT, 0 for
SIGTERM. The partitions' services keep running under supervisord. A second signal exits at once.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from partita.node import runner
from partita.node.cli.common import EXIT_INTERRUPTED, cfg_option, command_lock, load_config, show_progress
from partita.node.daemon import Daemon, open_with_retry

EXIT_STOPPED = 0


class _Stop(Exception):
    """Raised by the signal handler while the node only waits (for the master, or to retry)."""


@click.command("run")
@cfg_option
def command(cfg: str | None) -> None:
    """Converge continuously: wake up on every change the master announces."""
    show_progress()
    config = load_config(cfg)
    stop = threading.Event()
    received: list[int] = []
    daemon: list[Daemon] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if received:  # a second signal: at once
            raise SystemExit(_exit_status(signum))
        received.append(signum)
        stop.set()
        runner.interrupt()  # the buildout or promise running now, with its process group
        if not daemon or daemon[0].waiting:
            raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with command_lock(config, "software", "instance", "report"):
        click.echo(f"slapos node run: computer {config.computer_id}, master {config.master_url}", err=True)
        try:
            ctx = open_with_retry(config, stop)
            if ctx is not None:
                daemon.append(Daemon(ctx, stop=stop))
                daemon[0].run()
        except _Stop:
            pass
    if received:
        name = signal.Signals(received[0]).name
        click.echo(f"slapos node run: stopped ({name}); any buildout it ran was stopped, the services keep "
                   "running under supervisord", err=True)
        raise SystemExit(_exit_status(received[0]))


def _exit_status(signum: int) -> int:
    return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_STOPPED
