"""``slapos node register --token T --master-url URL``: enrol this machine as a computer of the
master and write its configuration (`node.registration` says what and where).

The key is made here and never sent: the master gets a certificate signing request with the
token and answers the computer's certificate. Register once, then ``slapos node format`` and
``slapos node run``; after the certificate expired or was lost, register again with a token the
admin made for this computer (``--computer COMP-ID``): the key and certificate are replaced, the
rest of the configuration is kept.

Exit status 1 with one line for a refused token (reused, expired, of another master, a user's),
a configuration that exists (without ``--force``) or bad options; nothing is written then.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

from partita.node.config import check_package_index
from partita.node.registration import (
    check_enrolled, check_kept_package_index, registration_target, render_node_config, write_registration,
)
from partita.slap.config import NODE_DEFAULT, read_config
from partita.slap.enrolment import check_master_url, enrol, new_key
from partita.slap.errors import ConfigurationError
from partita.slap.format_settings import (
    DEFAULT_INSTANCE_ROOT, DEFAULT_IPV4_NETWORK, DEFAULT_SOFTWARE_ROOT, FormatSettings, check_format,
)


@click.command("register")
@click.option("--token", required=True,
              help="The enrolment token the master's admin made for this node ('-': read it from standard "
                   "input, so that it never shows in the process list).")
@click.option("--master-url", required=True, help="The master's https:// URL.")
@click.option("--cfg", metavar="FILE", default=NODE_DEFAULT, show_default=True,
              help="The node configuration to write (the TLS files go to ssl/ beside it).")
@click.option("--partition-number", "partitions", type=int, default=10, show_default=True)
@click.option("--interface-name", "interface", default="lo", show_default=True)
@click.option("--ipv4-local-network", "ipv4_network", default=DEFAULT_IPV4_NETWORK, show_default=True)
@click.option("--ipv6-local-network", "ipv6_network", default="",
              help="The partitions' IPv6 network (unset: the interface's global prefix; on lo a unique-local /64).")
@click.option("--instance-root", default=DEFAULT_INSTANCE_ROOT, show_default=True)
@click.option("--software-root", default=DEFAULT_SOFTWARE_ROOT, show_default=True)
@click.option("--package-index", metavar="URL",
              help="The package index (PEP 503) every pip of the node uses ([slapos] package_index).")
@click.option("--packages-from-master", is_flag=True,
              help="Use the master's package index (<master-url>/packages/simple/): for a node that "
                   "reaches only its master.")
@click.option("--force", is_flag=True, help="Write a new configuration over an existing one.")
def command(token: str, master_url: str, cfg: str, force: bool, package_index: str | None,
            packages_from_master: bool, **options: object) -> None:
    """Register this machine as a computer of the master at URL with TOKEN."""
    url = check_master_url(master_url)
    if token == "-":
        token = click.get_text_stream("stdin").readline(4096).strip()
        if not token:
            raise ConfigurationError("--token -: no enrolment token on standard input")
    if package_index and packages_from_master:
        raise ConfigurationError("give --package-index or --packages-from-master, not both")
    if packages_from_master:
        package_index = url.rstrip("/") + "/packages/simple/"
    if package_index:
        check_package_index(package_index, "--package-index")
    config_path = Path(cfg).expanduser().absolute()
    settings = FormatSettings(as_root=os.geteuid() == 0, **options)  # type: ignore[arg-type]
    check_format(settings)
    existing = read_config(str(config_path)) if config_path.exists() else None
    target = registration_target(config_path, existing, url, force)
    check_kept_package_index(existing, target, package_index)
    key = new_key()
    enrolled = enrol(url, token, key)
    check_enrolled(enrolled, target)
    text = (render_node_config(enrolled.name, url, target.files, settings, package_index)
            if target.write_config else None)
    write_registration(target, key, enrolled, text)
    verb = "registered" if target.write_config else "registered again"
    click.echo(f"{verb} as computer {enrolled.name}; certificate valid until {enrolled.not_after.isoformat()}")
    if target.write_config:
        click.echo(f"wrote {config_path}")
        click.echo(f"next: slapos node format --cfg {config_path}")
    else:
        click.echo(f"replaced {target.files.key} and {target.files.cert}; kept {config_path}")
