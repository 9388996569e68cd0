"""What the node commands share: ``--cfg`` (the node's configuration), progress output, the locks
that keep two node commands of one kind apart.

Configuration: ``--cfg FILE``, else ``$SLAPOS_CONFIGURATION``, else ``/etc/opt/slapos/slapos.cfg``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import click
from partita.node import progress
from partita.node.config import NodeConfig, node_config
from partita.node.errors import SetupError
from partita.node.locks import try_lock
from partita.slap.config import CFG_HELP, read_config

F = TypeVar("F", bound=Callable[..., Any])


def cfg_option(func: F) -> F:
    """``--cfg FILE``: the node configuration file."""
    return click.option(
        "--cfg", metavar="FILE",
        help=CFG_HELP,
    )(func)


def load_config(cfg: str | None) -> NodeConfig:
    """The node configuration (a ConfigurationError, one line, if it is wrong)."""
    return node_config(read_config(cfg))


EXIT_FAILED = 1
EXIT_BUSY = 10
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C), as a shell reports a command it interrupted


def show_progress() -> None:
    """Node commands say what they do, one line per step (`node.progress`), unless the user
    asked for -v (the detailed log) or -q (errors only)."""
    click.get_current_context().call_on_close(progress.show())


@contextmanager
def command_lock(config: NodeConfig, *kinds: str) -> Iterator[None]:
    """Hold the locks of the node commands `kinds` ("software", "instance", "report"); another
    node command holding one makes this one exit 10, as in SlapOS."""
    directory = config.instance_root / "var" / "run"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SetupError(f"cannot create {directory}: {error.strerror} (run slapos node format)") from None
    with ExitStack() as stack:
        for kind in kinds:
            if not stack.enter_context(try_lock(directory / f"node-{kind}.lock")):
                click.echo(f"slapos: another 'slapos node {kind}' or 'slapos node run' is running", err=True)
                raise SystemExit(EXIT_BUSY)
        yield
