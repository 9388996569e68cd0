"""``slapos request TITLE URL``: ask for an instance of a software release (or change it).

It prints the instance's state, its partition and its connection parameters. Exit status:
0 when the instance has a partition; 2 when the master stored the request but it waits (for a
free partition, a host instance ...), with the reason printed, as SlapOS's "Instance requested.
Master is provisioning it" (exit 2); 1 on errors.

A request replaces the instance's parameters with the ones it sends (SlapOS's semantics): a
request without parameters for an instance that has some warns on stderr (`dropped_warning`);
``slapos start|stop|destroy TITLE`` change the state alone.

Parameters of ``--parameters-file`` follow the serialisation the release declares
(`slap.cli.parameters`, `slap.software_descriptor`).

Checks before sending (`check_parameters`): when the release has a readable descriptor with a
schema for the software type, the parameters are checked as the instance will read them
(`slap.release_schema`); a mismatch is one error line naming the field, exit 1, and nothing is
sent. ``slapos -v request`` also prints the defaults the instance gets for what the request does
not set; ``--help-parameters`` prints the software type's parameters (type, default, description,
what this request gives) and exits without sending. ``URL`` may be ``product.NAME``: the master
resolves it (`slap.cli.release_view.resolve`) and the request carries the URL it gives.

``--wait`` (`slap.cli.waiting`) polls the master until the instance is ready (exit 0), the node
reports a failure that needs the user (its reason once, exit 1), or ``--timeout`` seconds pass
(exit 2 with the last status), showing the status reason meanwhile.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import click

from partita.slap import release_schema, software_descriptor
from partita.slap.cli.common import cfg_option, format_option, open_client, read_instance
from partita.slap.cli.output import echo_err
from partita.slap.cli.release_view import print_parameters, read_descriptor, resolve
from partita.slap.cli.parameters import (
    SERIALISATIONS, expand_greedy, parse_pairs, read_parameters_file, serialise,
)
from partita.slap.cli.waiting import DEFAULT_WAIT_TIMEOUT, conclude
from partita.slap.client import MasterClient
from partita.slap.errors import RemoteError, ValidationError
from partita.slap.wire.instance import InstanceDocument

GREEDY_FLAGS = ("--parameters", "--node")


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
              help="Instance parameters from a .json or .yaml file holding a mapping, sent as the release's "
                   "software.cfg.json declares (xml: each value as a string; json-in-xml: one JSON '_').")
@click.option("--force-serialisation", type=click.Choice(SERIALISATIONS),
              help="Send the file's parameters as flat strings (xml) or as one JSON '_' (json-in-xml), "
                   "whatever the release declares.")
@click.option("--node", "node_pairs", multiple=True, metavar="K=V [K=V ...]",
              help="Where to deploy it (SLA), e.g. computer_guid=COMP-1.")
@click.option("--slave", "--shared", "shared", is_flag=True, help="A shared instance, served by a host instance.")
@click.option("--wait", is_flag=True,
              help="Wait until the instance is ready (exit 0), the node reports a failure that needs you (exit 1) "
                   "or --timeout passes (exit 2).")
@click.option("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, show_default=True,
              help="Seconds --wait waits.")
@click.option("--help-parameters", is_flag=True,
              help="Show the software type's parameters (type, default, description, what this request gives) "
                   "and exit without sending anything.")
@cfg_option
@format_option
def command(title: str, software_url: str, software_type: str, state: str | None, pairs: tuple[str, ...],
            parameters_file: str | None, force_serialisation: str | None, node_pairs: tuple[str, ...],
            shared: bool, wait: bool, timeout: float, help_parameters: bool, cfg: str | None,
            output_format: str) -> None:
    """Request an instance TITLE of the software release URL or product.NAME (or update it)."""
    software_url = resolve(software_url, partial(open_client, cfg))
    parameters = build_parameters(pairs, parameters_file, force_serialisation, software_url)
    sla = parse_pairs(node_pairs, "--node")
    if help_parameters:
        show_parameters(software_url, software_type, shared, parameters)
        return
    if state != "destroyed":
        instance_gets = check_parameters(software_url, software_type, shared, parameters)
        if instance_gets is not None and _verbose():
            echo_err(defaults_line(parameters, instance_gets))
    with open_client(cfg) as client:
        drops = not parameters and state != "destroyed"
        previous = existing_instance(client, title) if drops or wait else None
        warning = dropped_warning(title, previous.parameters if previous and drops else {})
        if warning:
            echo_err(warning)
        doc = read_instance(client.request_instance(title, software_url, software_type, parameters=parameters,
                                                    shared=shared, state=state, sla_parameters=sla))
        conclude(client, doc, wait=wait, timeout=timeout, output_format=output_format, previous=previous)


def build_parameters(pairs: tuple[str, ...], parameters_file: str | None,
                     force: str | None, software_url: str) -> dict[str, Any]:
    """The parameters to send, from ``--parameters`` or ``--parameters-file`` (not both); a
    file's follow `force`, else the serialisation the release declares."""
    if pairs and parameters_file:
        raise ValidationError("give --parameters or --parameters-file, not both")
    if parameters_file:
        parameters = read_parameters_file(parameters_file)
        declared = None if force else software_descriptor.serialisation_of(software_url)
        return serialise(parameters, force, declared)
    return parse_pairs(pairs, "--parameters")


def existing_instance(client: MasterClient, title: str) -> InstanceDocument | None:
    """The root instance titled `title` as it is before the request (None when there is none)."""
    try:
        return read_instance(client.get_instance_tree(title))
    except RemoteError as error:
        if error.code == "NOT_FOUND":
            return None
        raise


def dropped_warning(title: str, existing: dict[str, Any]) -> str | None:
    """The warning for a request without parameters of an instance that has `existing` ones."""
    if not existing:
        return None
    names = ", ".join(sorted(existing)[:5]) + (", …" if len(existing) > 5 else "")
    return (f"warning: {title!r} has parameters ({names}) and this request sends none: they are dropped; "
            f"to change only its state, use slapos start|stop|destroy {title}")


def check_parameters(software_url: str, software_type: str, shared: bool,
                     parameters: dict[str, Any]) -> dict[str, Any] | None:
    """What the instance will read (defaults filled) when the release's schema could check the
    parameters; None when it could not (no descriptor, no schema for the type: a warning line
    when the descriptor is unusable or does not declare the type). A mismatch raises
    ParameterMismatch (one line naming the field)."""
    descriptor = read_descriptor(software_url)
    if descriptor is None:
        return None
    if descriptor.find(software_type, shared) is None and descriptor.types:
        known = ", ".join(descriptor.type_names())
        echo_err(f"warning: the release does not declare the {'shared ' if shared else ''}software type "
                 f"{software_type!r} (known: {known}): parameters not checked")
        return None
    try:
        return release_schema.check_parameters(descriptor, software_type, parameters, shared)
    except release_schema.SchemaProblem as problem:
        echo_err(f"warning: not checking parameters: {problem}")
        return None


def defaults_line(parameters: dict[str, Any], instance_gets: dict[str, Any]) -> str:
    """Which defaults the instance gets, on one line."""
    given = set(release_schema.instance_parameters(parameters, {}) if parameters else {})
    defaults = {key: value for key, value in instance_gets.items() if key not in given}
    if not defaults:
        return "defaults: none (the request sets every parameter that has one)"
    return "defaults the instance gets: " + ", ".join(f"{key}={value!r}" for key, value in sorted(defaults.items()))


def show_parameters(software_url: str, software_type: str, shared: bool, parameters: dict[str, Any]) -> None:
    """``--help-parameters``: the type's parameters and what this request gives each."""
    descriptor = read_descriptor(software_url)
    if descriptor is None:
        raise ValidationError(f"{software_url} declares no parameters (no readable {software_url}.json)")
    entry = descriptor.find(software_type, shared)
    if entry is None:
        known = ", ".join(descriptor.type_names()) or "none"
        raise ValidationError(f"no {'shared ' if shared else ''}software type {software_type!r} in "
                              f"{software_url} (known: {known})")
    given = release_schema.instance_parameters(parameters, entry.request or {}) if parameters else {}
    print_parameters(entry, given)


def _verbose() -> bool:
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("verbose"))
