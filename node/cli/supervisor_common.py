"""What ``slapos node start|stop|restart|status|tail|supervisorctl`` share: they run supervisor's
own ``supervisorctl`` against the node's supervisord, as SlapOS does.

``slapos node VERB ARGS…`` runs ``python -m supervisor.supervisorctl -c
<instance_root>/etc/supervisord.conf VERB ARGS…`` in place of itself (so its exit status, its
output and Ctrl-C are supervisorctl's); ``slapos node supervisorctl ARGS…`` passes ARGS alone (no
ARGS: the interactive shell). Options the command does not know (``tail -f``) go to supervisorctl.

When nothing answers on the socket, the command says so in one line and exits 1.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from partita.node.cli.common import cfg_option, load_config
from partita.node.config import NodeConfig
from partita.node.supervisor import Supervisor, main_config_path
from partita.node.errors import SupervisorError

_exec = os.execv  # the seam tests replace


def supervisorctl_argv(config: NodeConfig, args: Sequence[str]) -> list[str]:
    """The supervisorctl command line for the node's supervisord."""
    return [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(main_config_path(config)), *args]


def check_running(config: NodeConfig) -> None:
    """A SupervisorError (one line) unless the node's supervisord answers."""
    if not Supervisor(config).running():
        raise SupervisorError(f"the node's supervisord is not running (socket {config.supervisor_socket})")


def run_supervisorctl(cfg: str | None, args: Sequence[str]) -> NoReturn:
    """Become supervisorctl with `args`, once the node's supervisord is known to answer."""
    config = load_config(cfg)
    check_running(config)
    argv = supervisorctl_argv(config, args)
    sys.stdout.flush()
    sys.stderr.flush()
    _exec(argv[0], argv)
    raise SystemExit(0)  # only reached when the seam does not replace the process


def shortcut(verb: str | None, short_help: str, help_text: str) -> click.Command:
    """The click command ``slapos node <verb> ARGS…`` (``supervisorctl ARGS…`` when verb is None)."""

    @click.command(verb or "supervisorctl", short_help=short_help, help=help_text,
                   context_settings={"ignore_unknown_options": True})
    @cfg_option
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(cfg: str | None, args: tuple[str, ...]) -> None:
        run_supervisorctl(cfg, [verb, *args] if verb else list(args))

    return command
