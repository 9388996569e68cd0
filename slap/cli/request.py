"""``slapos request TITLE URL``: ask for an instance of a software release (or change it).

It prints the instance's state, its partition and its connection parameters. Exit status:
0 when the instance has a partition; 2 when the master stored the request but it waits (for a
free partition, a host instance ...), with the reason printed, as SlapOS's "Instance requested.
Master is provisioning it" (exit 2); 1 on errors.

``--wait`` polls the master every `POLL_INTERVAL` seconds until `is_ready`, or exits 2 with the
last status after ``--timeout`` seconds.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import click

from partita.slap.cli.common import (
    EXIT_NOT_READY, cfg_option, format_option, is_allocated, open_client, read_instance, show_instance,
)
from partita.slap.cli.output import echo_err
from partita.slap.cli.parameters import (
    SERIALISATIONS, expand_greedy, parse_pairs, read_parameters_file, serialise,
)
from partita.slap.client import MasterClient
from partita.slap.errors import RemoteError, ValidationError
from partita.slap.wire.instance import InstanceDocument

POLL_INTERVAL = 1.0
DEFAULT_WAIT_TIMEOUT = 600.0
GREEDY_FLAGS = ("--parameters", "--node")


def is_ready(doc: InstanceDocument) -> bool:
    """Whether an instance is where its owner asked it to be (a pure rule, the one `--wait` uses).

    - destroyed: the node reported it destroyed, or it has no partition any more;
    - otherwise it needs a partition (a host, for a shared instance), and then:
      - shared: its host published its connection parameters;
      - not shared: the node reported the requested state with no further message, i.e. the
        master's status reason is that state itself (`master.services.status.describe` gives
        "started" only once the software is built and the node reported started without a
        failing promise or error message).
    """
    state = doc.state
    allocated = doc.compute_partition_id is not None
    if state == "destroyed":
        return doc.reported_state == "destroyed" or not allocated
    if not allocated:
        return False
    if doc.shared:
        return bool(doc.connection_parameters)
    return doc.reported_state == state and doc.status_reason == state


class RequestCommand(click.Command):
    """Lets ``--parameters`` and ``--node`` take several ``k=v`` words after one flag."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_greedy(args, GREEDY_FLAGS))


@click.command("request", cls=RequestCommand)
@click.argument("title")
@click.argument("software_url", metavar="URL")
@click.option("--type", "software_type", default="default", show_default=True, help="Software type.")
@click.option("--state", type=click.Choice(["started", "stopped", "destroyed"]),
              help="Requested state (default: started for a new instance, unchanged otherwise).")
@click.option("--parameters", "pairs", multiple=True, metavar="K=V [K=V ...]", help="Instance parameters.")
@click.option("--parameters-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Instance parameters from a .json or .yaml file holding a mapping.")
@click.option("--force-serialisation", type=click.Choice(SERIALISATIONS),
              help="Send the file's parameters as flat strings (xml) or as one JSON '_' (json-in-xml).")
@click.option("--node", "node_pairs", multiple=True, metavar="K=V [K=V ...]",
              help="Where to deploy it (SLA), e.g. computer_guid=COMP-1.")
@click.option("--slave", "--shared", "shared", is_flag=True, help="A shared instance, served by a host instance.")
@click.option("--wait", is_flag=True, help="Wait until the instance is ready.")
@click.option("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, show_default=True,
              help="Seconds --wait waits.")
@cfg_option
@format_option
def command(title: str, software_url: str, software_type: str, state: str | None, pairs: tuple[str, ...],
            parameters_file: str | None, force_serialisation: str | None, node_pairs: tuple[str, ...],
            shared: bool, wait: bool, timeout: float, cfg: str | None, output_format: str) -> None:
    """Request an instance TITLE of the software release URL (or update it)."""
    parameters = build_parameters(pairs, parameters_file, force_serialisation)
    sla = parse_pairs(node_pairs, "--node")
    with open_client(cfg) as client:
        doc = read_instance(client.request_instance(title, software_url, software_type, parameters=parameters,
                                                    shared=shared, state=state, sla_parameters=sla))
        if wait:
            doc, ready = wait_until_ready(client, doc, timeout)
        else:
            ready = is_allocated(doc) or doc.state == "destroyed"
    show_instance(doc, output_format)
    if not ready:
        reason = doc.status_reason or "not ready"
        if wait:
            echo_err(f"not ready after {timeout:g}s: {reason}")
        else:
            echo_err(f"Instance requested; the master is provisioning it: {reason}")
        raise click.exceptions.Exit(EXIT_NOT_READY)


def build_parameters(pairs: tuple[str, ...], parameters_file: str | None,
                     force: str | None) -> dict[str, Any]:
    """The parameters to send, from ``--parameters`` or ``--parameters-file`` (not both)."""
    if pairs and parameters_file:
        raise ValidationError("give --parameters or --parameters-file, not both")
    if parameters_file:
        return serialise(read_parameters_file(parameters_file), force)
    return parse_pairs(pairs, "--parameters")


def wait_until_ready(client: MasterClient, doc: InstanceDocument,
                     timeout: float) -> tuple[InstanceDocument, bool]:
    """Poll the instance until `is_ready` or `timeout`; the last document and whether it is ready."""
    deadline = time.monotonic() + timeout
    guid = doc.instance_guid
    last_reason = None
    while True:
        if is_ready(doc):
            return doc, True
        reason = doc.status_reason
        if reason != last_reason:
            echo_err(f"waiting: {reason}")
            last_reason = reason
        if time.monotonic() + POLL_INTERVAL > deadline or not guid:
            return doc, False
        time.sleep(POLL_INTERVAL)
        try:
            doc = read_instance(client.get_instance(guid))
        except RemoteError as error:
            if error.code == "NOT_FOUND" and doc.state == "destroyed":
                return dataclasses.replace(doc, compute_partition_id=None, reported_state="destroyed"), True
            raise
