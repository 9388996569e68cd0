"""What `slapos node register` writes: the node's configuration and its TLS files.

::

    <config dir>/slapos.cfg          0644  [slapos] computer_id (the name the master returned),
                                           master_url, key_file, cert_file, partita_ca_file,
                                           certificate_repository_path, instance_root,
                                           software_root, package_index (if given) +
                                           [slapformat] (`slap.format_settings`, the same
                                           defaults as `slapos configure local`)
    <config dir>/ssl/                0711  the node's; searchable so that partition users reach
                                           their own keys below it (`node.certificates`)
        computer.key                 0600  made on this node, never sent
        computer.crt                 0644
        master-ca.crt                0644  checked against the token's fingerprint
        partition_pki/               0711  the partitions' keys and certificates

Registering again where a configuration exists (a token the admin made with ``--computer
COMP-ID`` after the certificate expired or was lost) replaces the key and the certificate at the
paths that configuration names and keeps everything else; the master must answer the same
computer. ``--force`` writes a new configuration instead.

`render_node_config` and `registration_target` are pure; `write_registration` is the IO.
"""
from __future__ import annotations

import configparser
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from partita.node.certificates import REPOSITORY_MODE, replace_pair
from partita.slap.config import get_option
from partita.slap.enrolment import Enrolled, PrivateKey, write_certificate
from partita.slap.errors import Conflict, ValidationError
from partita.slap.fileio import atomic_write
from partita.slap.format_settings import FormatSettings, format_section, roots_lines

SSL_DIRECTORY = "ssl"
KEY, CERT, CA, REPOSITORY = "computer.key", "computer.crt", "master-ca.crt", "partition_pki"
SSL_MODE = 0o711


@dataclass(frozen=True)
class NodeFiles:
    """The files of a registered node."""

    config: Path
    key: Path
    cert: Path
    ca: Path
    repository: Path


@dataclass(frozen=True)
class Target:
    """Where a registration writes: new files, or those of an existing configuration."""

    files: NodeFiles
    computer_id: str | None      # the computer an existing configuration is (re-registration)
    write_config: bool


def default_files(config_path: Path) -> NodeFiles:
    """The files of a new registration, beside the configuration file."""
    ssl = config_path.parent / SSL_DIRECTORY
    return NodeFiles(config_path, ssl / KEY, ssl / CERT, ssl / CA, ssl / REPOSITORY)


def registration_target(config_path: Path, existing: configparser.ConfigParser | None, master_url: str,
                        force: bool) -> Target:
    """Where to write (pure): a new configuration unless one `existing` describes a node of the
    same master with its certificate files, which is re-registered in place. A Conflict, before
    the token is used, for anything else without `force`."""
    if existing is None or force:
        return Target(default_files(config_path), None, True)
    computer_id = get_option(existing, "slapos", "computer_id")
    names = {key: get_option(existing, "slapos", key) for key in
             ("key_file", "cert_file", "partita_ca_file", "certificate_repository_path")}
    missing = [key for key, value in names.items() if not value]
    if not computer_id or missing:
        what = ", ".join(missing) if missing else "computer_id"
        raise Conflict(f"{config_path} exists but has no [slapos] {what}: give --force to replace it")
    configured = (get_option(existing, "slapos", "master_url") or "").rstrip("/")
    if configured != master_url:
        raise Conflict(f"{config_path} is a node of {configured}, not {master_url}: give --force to replace it")
    base = config_path.parent
    files = NodeFiles(config_path, *(_absolute(names[key] or "", base) for key in
                                     ("key_file", "cert_file", "partita_ca_file", "certificate_repository_path")))
    return Target(files, computer_id, False)


def check_kept_package_index(existing: configparser.ConfigParser | None, target: Target,
                             package_index: str | None) -> None:
    """Re-registering in place keeps the configuration: a package index given that differs from
    the configured one is a Conflict (pure, before the token is used), not silently ignored."""
    if target.write_config or package_index is None or existing is None:
        return
    configured = get_option(existing, "slapos", "package_index")
    if configured != package_index:
        raise Conflict(f"{target.files.config} is kept when registering again, and its package_index is "
                       f"{configured or 'unset'}, not {package_index}: edit it there, or give --force to "
                       "write a new configuration")


def _absolute(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def check_enrolled(enrolled: Enrolled, target: Target) -> None:
    """The master must have enrolled a computer, and the same one when re-registering."""
    if enrolled.kind != "computer":
        raise ValidationError(f"this token enrolled the {enrolled.kind} {enrolled.name}, not a computer: "
                              "use it with slapos configure client (nothing was written)")
    if target.computer_id is not None and enrolled.name != target.computer_id:
        raise Conflict(f"the master enrolled a new computer {enrolled.name} with this token, not "
                       f"{target.computer_id} of {target.files.config}: ask for a token made for "
                       f"{target.computer_id}, or give --force to make this node {enrolled.name} "
                       "(nothing was written)")


def render_node_config(computer_id: str, master_url: str, files: NodeFiles, settings: FormatSettings,
                       package_index: str | None = None) -> str:
    """The node's configuration (pure; the format settings and `package_index` are checked)."""
    slapformat = format_section(settings)
    roots = "\n".join([*roots_lines(settings), *([f"package_index = {package_index}"] if package_index else [])])
    return f"""# Partita node configuration, written by slapos node register.
[slapos]
computer_id = {computer_id}
master_url = {master_url}
key_file = {files.key}
cert_file = {files.cert}
partita_ca_file = {files.ca}
certificate_repository_path = {files.repository}
{roots}

{slapformat}"""


def write_registration(target: Target, key: PrivateKey, enrolled: Enrolled, config_text: str | None) -> None:
    """Write the CA, the key and certificate (a crash never leaves them mismatched) and, for a
    new registration, the configuration (last: a node is configured only once it can connect)."""
    files = target.files
    for directory, mode in ((files.key.parent, SSL_MODE), (files.cert.parent, SSL_MODE),
                            (files.ca.parent, SSL_MODE), (files.repository, REPOSITORY_MODE)):
        _directory(directory, mode, enforce=target.write_config)
    write_certificate(files.ca, enrolled.ca_pem)
    replace_pair(files.key, files.cert, key, enrolled.certificate_pem)
    if target.write_config and config_text is not None:
        files.config.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(files.config, config_text, mode=0o644)


def _directory(path: Path, mode: int, *, enforce: bool) -> None:
    """Make `path` a directory of the node's user with `mode`; an existing one keeps its mode
    unless `enforce` (a new registration)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=mode)
        enforce = True
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise ValidationError(f"{path} is not a directory of this user")
    if enforce:
        os.chmod(path, mode)
