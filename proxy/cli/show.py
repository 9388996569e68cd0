"""`slapos proxy show`: the proxy's catalog as tables (or JSON), read from its database."""
from __future__ import annotations

import click

from partita.master.bootstrap import open_database
from partita.slap.catalog_file import private_umask
from partita.proxy.snapshot import SECTIONS, catalog_rows
from partita.slap.cli.output import print_json, print_table
from partita.slap.config import CFG_HELP, proxy_config, read_config


@click.command("show")
@click.option("--cfg", metavar="FILE", help=CFG_HELP)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--computers", "only", flag_value="computers", help="Only the computers.")
@click.option("--partitions", "only", flag_value="partitions", help="Only the partitions.")
@click.option("--instances", "--slaves", "only", flag_value="instances", help="Only the instances.")
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
    for name in sections:
        if not rows[name]:
            click.echo(f"{name.capitalize()}\n  (none)")
            continue
        columns = list(rows[name][0])
        print_table(columns, [[row[c] for c in columns] for row in rows[name]], title=name.capitalize())
