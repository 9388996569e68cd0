"""What ``slapos start|stop|destroy TITLE`` share: change an instance's requested state alone.

A SLAP request replaces everything it names (SlapOS's semantics: ``slapos request TITLE URL
--state stopped`` drops the parameters). These commands read the instance tree's root instance
from the master and request it again with its own software release, type, parameters (as
stored: a ``_`` stays the same ``_``), SLA and shared flag, and the new state only. An unknown
title is one error line naming it.

`same_request` is the pure part: which request keeps an instance as it is but for its state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from partita.slap.cli.common import open_client, read_instance
from partita.slap.cli.waiting import DEFAULT_WAIT_TIMEOUT, conclude
from partita.slap.errors import NotFound, RemoteError
from partita.slap.wire.instance import InstanceDocument


@dataclass(frozen=True)
class SameRequest:
    title: str
    software_release_uri: str
    software_type: str
    parameters: dict[str, Any]
    sla_parameters: dict[str, Any]
    shared: bool
    state: str


def same_request(doc: InstanceDocument, state: str) -> SameRequest:
    """The request that changes `doc`'s requested state to `state` and nothing else."""
    return SameRequest(title=doc.title, software_release_uri=doc.software_release_uri,
                       software_type=doc.software_type, parameters=dict(doc.parameters),
                       sla_parameters=dict(doc.sla_parameters), shared=doc.shared, state=state)


def wait_options(func: Any) -> Any:
    """``--wait`` and ``--timeout``, as `request` has them."""
    func = click.option("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, show_default=True,
                        help="Seconds --wait waits.")(func)
    return click.option("--wait", is_flag=True,
                        help="Wait until the node did it (exit 0), reports a failure that needs you (exit 1) "
                             "or --timeout passes (exit 2).")(func)


def change_state(title: str, state: str, *, wait: bool, timeout: float, cfg: str | None,
                 output_format: str) -> None:
    """Request `state` for the instance `title`, keeping everything else; show the outcome."""
    with open_client(cfg) as client:
        try:
            current = read_instance(client.get_instance_tree(title))
        except RemoteError as error:
            if error.code == "NOT_FOUND":
                raise NotFound(f"no instance titled {title!r} (slapos list shows yours)") from None
            raise
        want = same_request(current, state)
        doc = read_instance(client.request_instance(
            want.title, want.software_release_uri, want.software_type, parameters=want.parameters,
            shared=want.shared, state=want.state, sla_parameters=want.sla_parameters))
        conclude(client, doc, wait=wait, timeout=timeout, output_format=output_format, previous=current)
