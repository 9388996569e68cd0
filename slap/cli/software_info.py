"""``slapos software info URL``: the software types of a release and their parameters.

It reads the release's ``software.cfg.json`` and the schemas it names (`slap.release_schema`)
itself, from a local path, a file: URL or http(s); ``product.NAME`` is first resolved by the
master (`slap.cli.release_view.resolve`). For each software type: its title and description, and
a table of its parameters (type, default, description; ``*`` marks a required one).
``--type T`` shows one type; ``--format json`` prints the descriptor's summary
(`slap.release_schema.summary`: types, parameters, and the raw ``request``/``response`` schemas).

A release without a descriptor is one error line (exit 1), as is one that cannot be used.
"""
from __future__ import annotations

from functools import partial

import click

from partita.slap import release_schema
from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.output import print_json
from partita.slap.cli.release_view import ordered_types, print_parameters, resolve
from partita.slap.errors import ValidationError


@click.command("info")
@click.argument("software_url", metavar="URL")
@click.option("--type", "software_type", metavar="TYPE", help="Only this software type.")
@cfg_option
@format_option
def command(software_url: str, software_type: str | None, cfg: str | None, output_format: str) -> None:
    """Show the software types of the release URL (or product.NAME) and their parameters."""
    url = resolve(software_url, partial(open_client, cfg))
    descriptor = release_schema.load_descriptor(url)
    if descriptor is None:
        raise ValidationError(f"{url} has no descriptor ({url}.json): its parameters are not declared")
    entries = ordered_types(descriptor)
    if software_type is not None:
        entries = [entry for entry in entries if entry.name == software_type]
        if not entries:
            known = ", ".join(descriptor.type_names()) or "none"
            raise ValidationError(f"no software type {software_type!r} in {url} (known: {known})")
    if output_format == "json":
        summary = release_schema.summary(descriptor)
        if software_type is not None:
            summary["software_types"] = [t for t in summary["software_types"] if t["software_type"] == software_type]
        print_json({"software_release": url, **summary})
        return
    title = descriptor.name or url
    click.echo(f"{title}: {descriptor.description}" if descriptor.description else title)
    if url != software_url or descriptor.name:
        click.echo(f"  {url}")
    click.echo(f"  serialisation: {descriptor.serialisation or '(not declared)'}")
    for entry in entries:
        click.echo("")
        print_parameters(entry)
