"""``slapos configure client --token T --master-url URL``: enrol this user and write the client
configuration.

What it writes (``~/.slapos`` unless ``--cfg`` names another file; its directory is made 0700)::

    client.key             0600  the user's EC key, made here (never sent)
    client.crt             0644  the certificate the master signed for it
    master-ca.crt          0644  the master's CA (its fingerprint was checked against the token)
    slapos-client.cfg      0600  [slapos] master_url, key_file, cert_file, partita_ca_file and
                                 [slapconsole] key_file, cert_file (the real slapos.core client
                                 reads either section)

It refuses to overwrite an existing configuration (any of those files) without ``--force``,
before the token is used. A refused token (reused, expired, revoked, of another master) is one
line and exit 1 with nothing written: the files are written only once the certificate came back.
"""
from __future__ import annotations

from pathlib import Path

import click

from partita.slap.config import CLIENT_DEFAULT
from partita.slap.enrolment import (
    Enrolled, PrivateKey, check_master_url, enrol, new_key, private_directory, write_certificate, write_key,
)
from partita.slap.errors import ClientError, Conflict
from partita.slap.fileio import atomic_write

KEY, CERT, CA = "client.key", "client.crt", "master-ca.crt"


def client_files(config_path: Path) -> dict[str, Path]:
    """The files written beside the configuration file."""
    directory = config_path.parent
    return {"key": directory / KEY, "cert": directory / CERT, "ca": directory / CA, "config": config_path}


def render_client_config(master_url: str, files: dict[str, Path]) -> str:
    """The client configuration's text (pure)."""
    key, cert, ca = files["key"], files["cert"], files["ca"]
    return f"""# Partita client configuration, written by slapos configure client.
[slapos]
master_url = {master_url}
key_file = {key}
cert_file = {cert}
partita_ca_file = {ca}

[slapconsole]
key_file = {key}
cert_file = {cert}
"""


def write_client_files(files: dict[str, Path], master_url: str, key: PrivateKey, enrolled: Enrolled) -> None:
    """Write the four files (the directory 0700, the key and the configuration 0600)."""
    private_directory(files["config"].parent)
    write_certificate(files["ca"], enrolled.ca_pem)
    write_certificate(files["cert"], enrolled.certificate_pem)
    write_key(files["key"], key)
    atomic_write(files["config"], render_client_config(master_url, files), mode=0o600)


@click.command("client")
@click.option("--token", required=True, help="The enrolment token the master's admin gave you.")
@click.option("--master-url", required=True, help="The master's https:// URL.")
@click.option("--cfg", metavar="FILE", default=CLIENT_DEFAULT, show_default=True,
              help="The configuration file to write (the key and certificates go beside it).")
@click.option("--force", is_flag=True, help="Overwrite an existing configuration.")
def command(token: str, master_url: str, cfg: str, force: bool) -> None:
    """Enrol as a user with TOKEN and write the client configuration."""
    url = check_master_url(master_url)
    files = client_files(Path(cfg).expanduser().absolute())
    existing = [str(path) for name, path in sorted(files.items(), key=lambda item: item[0] != "config")
                if path.exists() or path.is_symlink()]
    if existing and not force:
        raise Conflict(f"{existing[0]} exists; give --force to replace the client configuration")
    key = new_key()
    enrolled = enrol(url, token, key)
    if enrolled.kind != "user":
        raise ClientError(f"this token enrolled the {enrolled.kind} {enrolled.name}, not a user: "
                          "use it with slapos node register (nothing was written)")
    write_client_files(files, url, key, enrolled)
    click.echo(f"enrolled as user {enrolled.name}; certificate valid until {enrolled.not_after.isoformat()}")
    click.echo(f"wrote {files['config']}")
