"""What ``slapos request`` and ``slapos software info`` share about a release: its URL when given
a short name, its descriptor, and its parameters shown as a table.

- `resolve`: ``product.NAME`` is asked of the master (``slapos.get.v0.software_release_name``):
  the master knows the names an admin published and the releases shipped beside it, so every
  client gets the same answer. Any other URL is itself.
- `read_descriptor`: the descriptor with its schemas (`slap.release_schema`), read by the client
  itself (a local path, file: or http(s), time and size bounded). One that cannot be used is one
  warning line and the release is treated as declaring nothing (as SlapOS's client does).
- `print_parameters`: one table per software type: parameter, type, default, description (and,
  for a request, the value this request gives).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from partita.slap import release_schema, software_names
from partita.slap.cli.output import echo_err, print_table
from partita.slap.client import MasterClient
from partita.slap.release_schema import Descriptor, SoftwareType
from partita.slap.software_descriptor import DescriptorProblem


def resolve(url: str, client: Callable[[], MasterClient]) -> str:
    """`url`, or the URL the master gives the short name ``product.NAME``."""
    if not software_names.is_short_name(url):
        return url
    software_names.split_name(url)  # a bad name is refused before asking
    with client() as master:
        answer = master.call("slapos.get.v0.software_release_name", {"name": url})
    resolved = answer.get("software_release_uri") if isinstance(answer, dict) else None
    if not isinstance(resolved, str) or not resolved:
        raise DescriptorProblem(f"the master gave no URL for {url!r}")
    return resolved


def read_descriptor(url: str) -> Descriptor | None:
    """The release's descriptor, or None (none, or unusable: then one warning line)."""
    try:
        return release_schema.load_descriptor(url)
    except DescriptorProblem as problem:
        echo_err(f"warning: not checking parameters: the descriptor of {url} cannot be used: {problem}")
        return None


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def ordered_types(descriptor: Descriptor) -> list[SoftwareType]:
    return sorted(descriptor.types, key=lambda entry: (entry.index is None, entry.index or 0, entry.key))


def type_heading(entry: SoftwareType) -> str:
    shared = " (shared instances)" if entry.shared else ""
    about = f": {entry.title}" if entry.title else ""
    text = f"software type {entry.name!r}{shared}{about}"
    return text + (f" - {entry.description}" if entry.description else "")


def print_parameters(entry: SoftwareType, given: dict[str, Any] | None = None) -> None:
    """The parameters of `entry` as a table; with `given`, a column with what the request sets
    (or ``(default)``)."""
    rows = release_schema.parameter_rows(entry.request)
    if entry.request is None:
        click.echo(f"{type_heading(entry)}\n  (no parameter schema)")
        return
    if not rows:
        click.echo(f"{type_heading(entry)}\n  (no parameters)")
        return
    columns = ["parameter", "type", "default", "description"]
    if given is not None:
        columns.insert(3, "this request")
    table = []
    for row in rows:
        name = row.name + (" *" if row.required else "")
        default = _value(row.default) if row.has_default else ""
        line = [name, row.type, default, row.description]
        if given is not None:
            line.insert(3, _value(given[row.name]) if row.name in given else "(default)")
        table.append(line)
    print_table(columns, table, title=type_heading(entry))
