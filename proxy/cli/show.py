"""`slapos proxy show`: the proxy's catalog as tables (or JSON), read from its database.

The tables fit the terminal, 80 columns included (`slap.cli.output.print_fitted_table`, as
``slapos list``): each section shows its important columns, cut to one line (software release
URLs in the middle, keeping their last segment; values and status reasons at the end). An
instance's parameters are a table of their own, one key a line, after the instances (as the
connection parameters are); an instance's partition names its computer only when there are
several. ``--format json`` keeps every field whole (guids, trees, software types, ``shared``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from partita.master.bootstrap import open_database
from partita.proxy.snapshot import SECTIONS, catalog_rows
from partita.slap.catalog_file import private_umask
from partita.slap.cli.output import Fit, print_fitted_table, print_json, shorten_end, shorten_middle, shorten_url
from partita.slap.config import CFG_HELP, proxy_config, read_config


@dataclass(frozen=True)
class Column:
    """One column of a section's table: its header, the row's key it shows, how it gives up room."""
    header: str
    key: str
    fit: Fit


TABLES: dict[str, tuple[Column, ...]] = {
    "computers": (Column("computer", "computer", Fit(12, shorten_middle)),
                  Column("partitions", "partitions", Fit(10)), Column("generation", "generation", Fit(10))),
    "partitions": (Column("computer", "computer", Fit(10, shorten_middle)),
                   Column("partition", "partition", Fit(10, shorten_middle)), Column("state", "state", Fit(5)),
                   Column("addresses", "addresses", Fit(12, shorten_end, weight=1.5)),
                   Column("instance", "instance", Fit(10, shorten_middle))),
    "instances": (Column("title", "title", Fit(12, shorten_middle, weight=1.5)), Column("state", "state", Fit(9)),
                  Column("partition", "partition", Fit(10, shorten_middle)),
                  Column("software release", "software_release", Fit(24, shorten_url, weight=2.2)),
                  Column("status", "status", Fit(8, shorten_end))),
    "parameters": (Column("instance", "instance", Fit(10, shorten_middle)),
                   Column("key", "key", Fit(10, shorten_middle)),
                   Column("value", "value", Fit(20, shorten_end, weight=2))),
    "supplies": (Column("computer", "computer", Fit(10, shorten_middle)),
                 Column("software release", "software_release", Fit(24, shorten_url, weight=2.2)),
                 Column("requested", "requested", Fit(9)), Column("reported", "reported", Fit(9))),
    "connections": (Column("instance", "instance", Fit(10, shorten_middle)),
                    Column("key", "key", Fit(10, shorten_middle)),
                    Column("value", "value", Fit(20, shorten_end, weight=2))),
}


@click.command("show")
@click.option("--cfg", metavar="FILE", help=CFG_HELP)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--computers", "only", flag_value="computers", help="Only the computers.")
@click.option("--partitions", "only", flag_value="partitions", help="Only the partitions.")
@click.option("--instances", "--slaves", "only", flag_value="instances",
              help="Only the instances (and their parameters).")
@click.option("--software", "only", flag_value="supplies", help="Only the supplied software releases.")
@click.option("--params", "--connections", "only", flag_value="connections",
              help="Only the connection parameters.")
def command(cfg: str | None, output_format: str, only: str | None) -> None:
    """Print computers, partitions, instances, supplies and connection parameters."""
    database_uri = proxy_config(read_config(cfg)).database_uri
    private_umask()
    db = open_database(database_uri)
    try:
        with db.read() as session:
            rows = catalog_rows(session)
    finally:
        db.dispose()
    sections = [only] if only else list(SECTIONS)
    if output_format == "json":
        print_json({name: rows[name] for name in sections})
        return
    rows["parameters"] = parameter_rows(rows["instances"])
    if len(rows["computers"]) <= 1:  # the usual proxy: the partition alone says where
        rows["instances"] = [{**row, "partition": row["partition"].rpartition("/")[2]} for row in rows["instances"]]
    for name in sections:
        print_section(name, rows[name])
        if name == "instances" and rows["parameters"]:
            print_section("parameters", rows["parameters"])


def parameter_rows(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each instance's parameters, one key a row (a value that is not a string as compact JSON)."""
    return [{"instance": instance["title"], "key": key,
             "value": value if isinstance(value, str) else json.dumps(value, sort_keys=True)}
            for instance in instances for key, value in sorted((instance["parameters"] or {}).items())]


def print_section(name: str, rows: list[dict[str, Any]]) -> None:
    """One section: its title, then its table fitted to the terminal, or ``(none)``."""
    click.echo(name.capitalize())
    if not rows:
        click.echo("  (none)")
        return
    columns = TABLES[name]
    print_fitted_table([column.header for column in columns], [[row[c.key] for c in columns] for row in rows],
                       [column.fit for column in columns])
