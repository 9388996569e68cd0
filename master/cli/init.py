"""`slapos master init`: create or migrate the catalog's database, the certificate authority and
the first admin.

A SQLite catalog, its directory and its ``-wal``/``-shm`` are owner-only (`slap.catalog_file`: a
file others could read is made ``0600`` and said; a link or a directory others may write is refused),
and everything the command creates is its user's only (umask ``077``).

The first admin (``--admin``, default ``admin``) is made on the first run; while it has never
enrolled (or with ``--new-admin-token``), the command prints a single-use enrolment token for it,
valid 24 hours, which carries the CA's fingerprint (older unused ones are revoked). Running the
command on the master's machine is what proves the right to that token.

The CA and the master's TLS certificate live in the PKI directory (``[slapmaster] pki_directory``,
default ``pki/`` beside the configuration file; see `master.pki.store`). The certificate's names and
addresses come from ``--tls-name``/``--tls-address`` if given, else from ``[slapmaster] tls_names``/
``tls_addresses``, else the defaults: the host's FQDN (its host name when the FQDN is only
``localhost``) and ``localhost``, 127.0.0.1 and ::1. The
address the master listens on (``[slapmaster] host``) is always added when it is a literal IP other
than a wildcard. Names and addresses are checked before anything is written.
"""
from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import click

from partita.master.bootstrap import open_database
from partita.master.db import migrate
from partita.master.pki import certificates, store
from partita.master.pki.errors import CertificateRequestError
from partita.master.services import users
from partita.slap.catalog_file import private_umask
from partita.slap.config import (
    MasterConfig, check_addresses, database_uri_from, master_config, read_config, url_host,
)

DEFAULT_ADDRESSES = ("127.0.0.1", "::1")
ADMIN_TOKEN_TTL = 24 * 3600


@click.command("init")
@click.option("--cfg", help="Configuration file with a [slapmaster] section.")
@click.option("--database-uri", help="SQLite file or postgresql:// URL instead of [slapmaster] database_uri.")
@click.option("--tls-name", "tls_names", multiple=True,
              help="A DNS name of the master's certificate (repeatable; replaces [slapmaster] tls_names).")
@click.option("--tls-address", "tls_addresses", multiple=True,
              help="An IP address of the master's certificate (repeatable; replaces [slapmaster] tls_addresses).")
@click.option("--admin", "admin_name", default="admin", show_default=True, help="The first admin's user name.")
@click.option("--new-admin-token", is_flag=True, help="Print a new enrolment token for the admin even if it enrolled.")
def command(cfg: str | None, database_uri: str | None, tls_names: tuple[str, ...],
            tls_addresses: tuple[str, ...], admin_name: str, new_admin_token: bool) -> None:
    """Create the database schema (or bring it to the newest version), the CA, the master's
    certificate and the first admin."""
    private_umask()
    config = master_config(read_config(cfg)) if cfg or not database_uri else None
    names, addresses = certificate_subjects(config, tls_names, tls_addresses)
    pki_directory = config.pki_directory if config else str(Path.cwd() / "pki")
    store.Pki(pki_directory).prepare()
    url = database_uri_from(database_uri, Path.cwd()) if database_uri else config.database_uri  # type: ignore[union-attr]
    db = open_database(url, say=lambda line: click.echo(line, err=True))
    try:
        click.echo(f"database ready at revision {migrate.current_revision(db.engine)}")
        report = store.ensure(pki_directory, names, addresses)
        echo_report(report)
        if config is None or config.authentication == "certificates":
            _, token = db.run_write(lambda session: users.ensure_first_admin(
                session, admin_name, ADMIN_TOKEN_TTL, report.ca_fingerprint, new_admin_token))
            echo_admin(admin_name, token, master_url(config, report))
    finally:
        db.dispose()


def master_url(config: MasterConfig | None, report: store.EnsureReport) -> str:
    """The URL a client on another machine would use (the first certificate name for a wildcard)."""
    host = config.host if config else "127.0.0.1"
    port = config.port if config else 8080
    if listen_address(host) is None and host not in report.names:
        host = report.names[0] if report.names else str(report.addresses[0])
    return f"https://{url_host(host)}:{port}"


def echo_admin(name: str, token: str | None, url: str) -> None:
    if token is None:
        click.echo(f"admin {name!r} has enrolled (a new token: slapos master init --new-admin-token)")
        return
    click.echo(f"admin {name!r} enrolment token (single use, valid 24 hours): {token}")
    click.echo(f"  on the admin's machine: slapos configure client --master-url {url} --token {token}")


def certificate_subjects(config: MasterConfig | None, tls_names: tuple[str, ...],
                         tls_addresses: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The master certificate's DNS names and IP addresses, checked (see the module docstring)."""
    given_names = tuple(value.strip() for value in tls_names) or (config.tls_names if config else ())
    given_addresses = check_addresses(tuple(value.strip() for value in tls_addresses), "--tls-address")
    given_addresses = given_addresses or (config.tls_addresses if config else ())
    names = list(given_names) or default_names()
    addresses = [str(certificates.parse_address(a)) for a in (given_addresses or DEFAULT_ADDRESSES)]
    host = listen_address(config.host) if config else None
    if host and host not in addresses:
        addresses.append(host)
    for name in names:
        certificates.check_dns_name(name)
    return list(dict.fromkeys(names)), list(dict.fromkeys(addresses))


def default_names() -> list[str]:
    """The host's fully qualified name (when it is a usable DNS name) and ``localhost``."""
    names = []
    fqdn = socket.getfqdn().rstrip(".").lower()
    if fqdn in ("", "localhost", "localhost.localdomain"):
        fqdn = socket.gethostname().rstrip(".").lower()  # no better name than the host's own
    try:
        ipaddress.ip_address(fqdn)
    except ValueError:
        try:
            names.append(certificates.check_dns_name(fqdn))
        except CertificateRequestError:
            pass
    return list(dict.fromkeys([*names, "localhost"]))


def listen_address(host: str) -> str | None:
    """`host` as an address for the certificate, if it is a literal IP and not a wildcard."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def echo_report(report: store.EnsureReport) -> None:
    click.echo(f"PKI directory: {report.directory}")
    click.echo(f"CA: {'created' if report.ca_created else 'kept'} ({report.directory / store.CA_CERT})")
    why = f" ({report.master_reason})" if report.master_reason and report.master_reason not in ("missing", "new CA") else ""
    click.echo(f"master certificate: {report.master_action}{why}, expires {report.master_not_after:%Y-%m-%d}")
    click.echo(f"  names: {', '.join(report.names) or '-'}")
    click.echo(f"  addresses: {', '.join(str(a) for a in report.addresses) or '-'}")
    click.echo(f"CA fingerprint: {report.ca_fingerprint}")
