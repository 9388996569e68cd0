"""`slapos master start`: serve the master for several nodes (gunicorn, threaded workers)."""
from __future__ import annotations

import click

from partita.master.app import create_app
from partita.master.bootstrap import open_database
from partita.master.db.database import Database
from partita.master.server import ServeOptions, bind_address, serve
from partita.master.settings import AppSettings
from partita.slap.config import master_config, read_config


@click.command("start")
@click.option("--cfg", help="Configuration file with a [slapmaster] section "
                            "(database_uri, host, port, workers, threads).")
@click.option("--host", help="Address to listen on.")
@click.option("--port", type=int, help="Port to listen on.")
@click.option("--workers", type=int, help="Worker processes (PostgreSQL only for more than one).")
@click.option("--threads", type=int, help="Threads per worker (each waiting node holds one).")
def command(cfg: str | None, host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Start the master in the foreground."""
    config = master_config(read_config(cfg))
    options = ServeOptions(host or config.host, port or config.port, workers or config.workers,
                           threads or config.threads)
    open_database(config.database_uri).dispose()  # migrate once, before the workers start
    click.echo(f"Partita master on http://{bind_address(options.host, options.port)}/ "
               f"({options.workers} workers x {options.threads} threads)", err=True)
    serve(lambda: create_app(Database(config.database_uri), AppSettings(mode="master")),
          options, sqlite=config.database_uri.startswith("sqlite"))
