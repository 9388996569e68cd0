"""`slapos master start`: serve the master for several nodes (gunicorn, asyncio workers: `master.server`).

With ``[slapmaster] authentication = certificates`` (the default) it serves HTTPS with the
certificate `slapos master init` made, and every caller proves who it is. With ``none`` it serves
plain HTTP on loopback only and believes every caller, as the proxy does (for tests and
experiments on one machine).
"""
from __future__ import annotations

import click

from partita.master.app import create_app
from partita.master.bootstrap import open_database
from partita.master.cli.init import default_names
from partita.master.db.database import Database
from partita.master.pki import store
from partita.master.server import ServeOptions, TlsFiles, bind_address, bind, check_options, serve
from partita.master.services.certificates import Authority, Lifetimes
from partita.master.settings import LOOPBACK_HOSTS, AppSettings
from partita.slap.catalog_file import private_umask
from partita.slap.config import CFG_HELP, MasterConfig, Quotas, master_config, read_config
from partita.slap.listen import check_loopback


@click.command("start")
@click.option("--cfg", metavar="FILE", help=CFG_HELP)
@click.option("--host", help="Address to listen on.")
@click.option("--port", type=int, help="Port to listen on.")
@click.option("--workers", type=int, help="Worker processes (PostgreSQL only for more than one).")
@click.option("--threads", type=int, help="Threads per worker (requests being answered at once).")
@click.option("--ready-file", metavar="FILE", help="Write FILE (JSON: pid, url) once the master answers; "
                                                   "removed when it stops.")
def command(cfg: str | None, host: str | None, port: int | None, workers: int | None, threads: int | None,
            ready_file: str | None) -> None:
    """Start the master in the foreground.

    A port already in use is one error line (exit 1); nothing is announced until the port is
    bound."""
    config = master_config(read_config(cfg))
    secure = config.authentication == "certificates"
    host = host or config.host
    if not secure:
        check_loopback(host, "--host" if host != config.host else "[slapmaster] host",
                       server="a master with [slapmaster] authentication = none",
                       advice="remove that option to serve HTTPS with certificates")
    tls = tls_files(config) if secure else None
    options = ServeOptions(host, port or config.port, workers or config.workers, threads or config.threads, tls=tls,
                           ready_file=ready_file)
    check_options(options, sqlite=config.database_uri.startswith("sqlite"))
    listener = bind(options.host, options.port)  # a port in use stops it here, before the migration
    private_umask()  # what the master creates (catalog, -wal, -shm, logs) is its own
    open_database(config.database_uri).dispose()  # migrate once, before the workers start
    banner = (f"Partita master on {options.scheme}://{bind_address(options.host, options.port)}/ "
              f"({options.workers} workers x {options.threads} threads{'' if secure else ', no authentication'})")
    serve(lambda: build_app(config), options, sqlite=config.database_uri.startswith("sqlite"), banner=banner,
          listener=listener)


def tls_files(config: MasterConfig) -> TlsFiles:
    """The PKI files, checked now (one clear line) rather than by each worker."""
    pki = store.Pki(config.pki_directory)
    pki.load_ca()
    store.load_key(pki.path(store.MASTER_KEY))
    store.load_certificate(pki.path(store.MASTER_CERT))
    return TlsFiles(str(pki.path(store.MASTER_CERT)), str(pki.path(store.MASTER_KEY)), str(pki.path(store.CA_CERT)))


def allowed_hosts(config: MasterConfig) -> tuple[str, ...]:
    """The names a request's Host may carry: loopback, the listen host, the certificate's names and
    addresses, and ``[slapmaster] allowed_hosts`` (`master.api.origin`)."""
    tls_names = config.tls_names or tuple(default_names())  # what `slapos master init` certified
    names = (*LOOPBACK_HOSTS, config.host, *tls_names, *config.tls_addresses, *config.allowed_hosts)
    return tuple(dict.fromkeys(name for name in names if name))


def build_app(config: MasterConfig):  # type: ignore[no-untyped-def]
    """One worker's app (runs after the fork: the CA key is read by each worker)."""
    secure = config.authentication == "certificates"
    settings = AppSettings(mode="master", authentication=secure, tls_frontends=config.tls_frontends,
                           allowed_hosts=allowed_hosts(config), unreachable_after_seconds=config.unreachable_after,
                           packages_directory=config.packages_directory,
                           binary_cache_directory=config.binary_cache_directory,
                           binary_cache_max_entry=config.binary_cache_max_entry,
                           **(config.quotas or Quotas()).settings())
    authority = None
    if secure:
        lifetimes = Lifetimes(user=config.user_certificate_days, computer=config.computer_certificate_days,
                              partition=config.partition_certificate_days)
        authority = Authority(store.Pki(config.pki_directory).load_ca(), lifetimes)
    return create_app(Database(config.database_uri), settings, authority)
