"""`slapos proxy start`: serve the all-in-one master on loopback, in the foreground."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from partita.master.server import ServeOptions, bind_address, bind, check_options, serve
from partita.proxy.app import make_app, prepare
from partita.slap.catalog_file import private_umask
from partita.slap.listen import check_loopback
from partita.slap.config import CFG_HELP, database_uri_from, proxy_config, read_config


@click.command("start")
@click.option("--cfg", metavar="FILE", help=CFG_HELP)
@click.option("--host", help="Loopback address to listen on (default: [slapproxy] host, else 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: [slapproxy] port, else 8080).")
@click.option("-u", "--database-uri", help="SQLite file (or database URL) instead of [slapproxy] database_uri.")
@click.option("--threads", type=int, default=32, show_default=True, help="Threads serving requests.")
@click.option("--ready-file", metavar="FILE", help="Write FILE (JSON: pid, url) once the proxy answers; "
                                                   "removed when it stops.")
def command(cfg: str | None, host: str | None, port: int | None, database_uri: str | None, threads: int,
            ready_file: str | None) -> None:
    """Start the proxy: a master with one local computer, on a SQLite file.

    A port already in use is one error line (exit 1); nothing is announced until the port is
    bound."""
    parser = read_config(cfg)
    if database_uri:
        if not parser.has_section("slapproxy"):
            parser.add_section("slapproxy")
        parser.set("slapproxy", "database_uri", database_uri_from(database_uri, Path.cwd()))
    config = proxy_config(parser)
    config = dataclasses.replace(config, host=host or config.host, port=port or config.port)
    check_loopback(config.host, "--host" if host else "[slapproxy] host")
    options = ServeOptions(config.host, config.port, workers=1, threads=threads, ready_file=ready_file)
    check_options(options, sqlite=config.database_uri.startswith("sqlite"))
    listener = bind(config.host, config.port)  # a port in use stops it here, before the catalog is touched
    private_umask()
    prepare(config)  # the catalog made owner-only (or refused) by open_database, then migrated
    serve(lambda: make_app(config), options, sqlite=config.database_uri.startswith("sqlite"), listener=listener,
          banner=f"Partita proxy for computer {config.computer_id} on http://{bind_address(config.host, config.port)}/")
