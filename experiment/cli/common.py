"""What the experiment commands share: ``--dir`` and loading the state."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from partita.experiment.context import Context
from partita.experiment.state import require

DEFAULT_DIR = "partita-experiment"


def dir_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True, metavar="DIR",
                        help="The experiment's local directory (state, client configuration, wheels).")(function)


def load_context(directory: str) -> Context:
    path = Path(directory).absolute()
    return Context(path, require(path))


def client_hint(context: Context) -> str:
    return (f"client configuration: {context.client_config}\n"
            f"  export SLAPOS_CLIENT_CONFIGURATION={context.client_config}   "
            f"(or: slapos ... --cfg {context.client_config})")
