"""What the node commands share: ``--cfg`` (the node's configuration) and the client of the master.

Configuration: ``--cfg FILE``, else ``$SLAPOS_CONFIGURATION``, else ``/etc/opt/slapos/slapos.cfg``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from node.config import NodeConfig, node_config
from slap.client import MasterClient
from slap.config import read_config

F = TypeVar("F", bound=Callable[..., Any])


def cfg_option(func: F) -> F:
    """``--cfg FILE``: the node configuration file."""
    return click.option(
        "--cfg", metavar="FILE",
        help="Node configuration file (default: $SLAPOS_CONFIGURATION, else /etc/opt/slapos/slapos.cfg).",
    )(func)


def load_config(cfg: str | None) -> NodeConfig:
    """The node configuration (a ConfigurationError, one line, if it is wrong)."""
    return node_config(read_config(cfg))


def open_master(config: NodeConfig, *, timeout: float | None = None) -> MasterClient:
    """A client of the node's master, with the node's certificate when it has one."""
    cert = (config.cert_file, config.key_file) if config.cert_file and config.key_file else None
    return MasterClient(config.master_url, timeout=timeout or config.http_timeout, cert=cert)
