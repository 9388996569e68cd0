"""Reading SlapOS-format configuration files (``slapos.cfg``, ``slapos-client.cfg``).

One file can drive the proxy, the master, the node and the client: each reads its own sections.

- ``[slapos]``: ``computer_id``, ``master_url``, ``master_rest_url``, ``key_file``, ``cert_file``,
  ``instance_root``, ``software_root``, ...; and Partita's ``partita_ca_file`` (the master CA, PEM,
  the client verifies the master against; not SlapOS's ``master_ca_file``, which slapos.core refuses)
  and ``api_token`` (``<id>.<secret>``, sent as ``Authorization: Bearer``, for scripts)
- ``[slapconsole]``: ``key_file``, ``cert_file``, ``partita_ca_file`` when ``[slapos]`` has none (the
  real slapos.core client reads its certificate from either section)
- ``[slapproxy]``: ``host``, ``port``, ``database_uri``, and the quotas below
- ``[slapformat]``: ``partition_amount``, ``interface_name``, ... (read by the node)
- ``[slapmaster]``: what only Partita's master has: ``database_uri``, ``host``, ``port``,
  ``workers``, ``threads``, ``pki_directory`` (default ``pki`` beside the file),
  ``packages_directory`` (the wheels of its package index, default ``packages`` beside the
  file), ``binary_cache_directory`` (the built software nodes share, default ``binary-cache``
  beside the file) and ``binary_cache_max_entry`` (bytes, default 2 GiB), ``tls_names`` and
  ``tls_addresses`` (the master certificate's DNS names and IP addresses, whitespace- or
  comma-separated; empty means the defaults of ``slapos master init``), ``authentication``
  (``certificates``, the default: HTTPS, every caller proves who it is; ``none``: plain HTTP on
  loopback only, every caller believed, as the proxy), ``tls_frontends`` (addresses of
  TLS-terminating front ends allowed to pass a client certificate in a header) and
  ``user_certificate_days``/``computer_certificate_days``/``partition_certificate_days``,
  ``allowed_hosts`` (more names a request's ``Host`` may carry besides loopback names, ``host``
  and ``tls_names``: a load balancer's; ``*`` for any)
- quotas of every owner, in ``[slapmaster]`` or ``[slapproxy]``: ``max_instances_per_owner``
  (default 10000) and ``max_parameter_bytes_per_owner`` (default 268435456, 256 MiB); empty
  means the master's default

Which file (`find_config_file`, one order for every command; `config_candidates` is the rule):

1. ``--cfg FILE``;
2. else the environment: ``$SLAPOS_CLIENT_CONFIGURATION`` for the client commands (``request``,
   ``info``, ...), ``$SLAPOS_CONFIGURATION`` for the node, proxy and master commands (SlapOS's
   variables). A file named by 1 or 2 must exist;
3. else the first of these that exists: ``~/.slapos/slapos-client.cfg`` (client commands only:
   what ``slapos configure client`` writes), ``~/.slapos/slapos.cfg`` (what ``slapos configure
   local`` writes for a user other than root), ``/etc/opt/slapos/slapos.cfg`` (what it and
   ``slapos node register`` write as root).
"""
from __future__ import annotations

import configparser
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from partita.slap.errors import ConfigurationError
from partita.slap.tokens import TokenFormatError, parse_token

NODE_ENV = "SLAPOS_CONFIGURATION"
CLIENT_ENV = "SLAPOS_CLIENT_CONFIGURATION"
NODE_DEFAULT = "/etc/opt/slapos/slapos.cfg"
USER_DEFAULT = "~/.slapos/slapos.cfg"
CLIENT_DEFAULT = "~/.slapos/slapos-client.cfg"

# the help of every ``--cfg`` option that reads a configuration
CFG_HELP = f"Configuration file (default: ${NODE_ENV}, else {USER_DEFAULT}, else {NODE_DEFAULT})."
CLIENT_CFG_HELP = (f"Client configuration file (default: ${CLIENT_ENV}, else {CLIENT_DEFAULT}, "
                   f"else {USER_DEFAULT}, else {NODE_DEFAULT}).")

DEFAULT_COMPUTER_ID = "local_computer"
DEFAULT_PROXY_HOST = "127.0.0.1"
DEFAULT_PROXY_PORT = 8080


def url_host(host: str) -> str:
    """`host` as it stands in a URL or a bind address: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def config_candidates(cfg: str | None, *, client: bool, environ: Mapping[str, str],
                      home: Path) -> tuple[list[Path], str]:
    """The files to look at, in order, and where they come from: ``--cfg``, the environment
    variable (either names the one file), or the default paths (the first that exists)."""
    if cfg:
        return [_expand(cfg, home)], "--cfg"
    variable = CLIENT_ENV if client else NODE_ENV
    if environ.get(variable):
        return [_expand(environ[variable], home)], f"${variable}"
    defaults = ([CLIENT_DEFAULT] if client else []) + [USER_DEFAULT, NODE_DEFAULT]
    return [_expand(path, home) for path in defaults], "default"


def _expand(path: str, home: Path) -> Path:
    return home / path[2:] if path == "~" or path.startswith("~/") else Path(path).expanduser()


def find_config_file(cfg: str | None, *, client: bool) -> Path:
    """The configuration file to read (module docstring); a ConfigurationError when none of the
    defaults exists."""
    candidates, origin = config_candidates(cfg, client=client, environ=os.environ, home=Path.home())
    if origin != "default":
        return candidates[0]
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(str(path) for path in candidates)
    raise ConfigurationError(f"no configuration file found (looked for {looked}); give one with --cfg, "
                             "or write one with slapos configure local")


def read_config(cfg: str | None, *, client: bool = False) -> configparser.ConfigParser:
    """Parse the configuration file; a missing or unreadable file is a ConfigurationError."""
    path = find_config_file(cfg, client=client)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        where = "give one with --cfg" if cfg else f"named by ${CLIENT_ENV if client else NODE_ENV}"
        raise ConfigurationError(f"configuration file not found: {path} ({where})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read configuration file {path}: {exc}") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigurationError(f"bad configuration file {path}: {first_line}") from None
    parser.source_path = str(path)  # type: ignore[attr-defined]
    return parser


def get_option(parser: configparser.ConfigParser, section: str, key: str, default: str | None = None) -> str | None:
    if parser.has_option(section, key):
        value = parser.get(section, key).strip()
        return value if value != "" else default
    return default


def get_int(parser: configparser.ConfigParser, section: str, key: str, default: int) -> int:
    raw = get_option(parser, section, key)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"[{section}] {key} must be an integer, not {raw!r}") from None


@dataclass(frozen=True)
class ClientConfig:
    """What the client commands (``slapos request``, ``slapos token create``, ...) need: where the
    master is, how to trust it (``ca_file``) and who we are (certificate pair or ``api_token``)."""

    master_url: str
    master_rest_url: str | None = None
    key_file: str | None = None
    cert_file: str | None = None
    computer_id: str | None = None
    ca_file: str | None = None
    api_token: str | None = None


@dataclass(frozen=True)
class ProxyConfig:
    """What ``slapos proxy start`` needs: one local computer, a SQLite file, a loopback address."""

    computer_id: str
    host: str
    port: int
    database_uri: str
    quotas: Quotas | None = None


@dataclass(frozen=True)
class Quotas:
    """The per-owner quotas a configuration sets (None: the master's default)."""

    max_instances_per_owner: int | None = None
    max_parameter_bytes_per_owner: int | None = None

    def settings(self) -> dict[str, int]:
        """As keyword arguments of the master's `AppSettings` (only those set)."""
        return {key: value for key, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class MasterConfig:
    """What ``slapos master init|start`` need."""

    database_uri: str
    host: str
    port: int
    workers: int
    threads: int
    pki_directory: str = "pki"
    tls_names: tuple[str, ...] = ()
    tls_addresses: tuple[str, ...] = ()
    authentication: str = "certificates"
    tls_frontends: tuple[str, ...] = ()
    user_certificate_days: int = 90
    computer_certificate_days: int = 30
    partition_certificate_days: int = 30
    allowed_hosts: tuple[str, ...] = ()
    quotas: Quotas | None = None
    unreachable_after: int = 120  # seconds without a call before a node is shown unreachable
    packages_directory: str = "packages"
    binary_cache_directory: str = "binary-cache"
    binary_cache_max_entry: int = 2 * 1024 ** 3


def split_list(value: str | None) -> tuple[str, ...]:
    """A whitespace- or comma-separated option as its items (none for a missing option)."""
    return tuple(item for item in re.split(r"[\s,]+", value or "") if item)


def check_addresses(values: tuple[str, ...], where: str) -> tuple[str, ...]:
    """`values` if each is an IP address (IPv6 may be in brackets); a ConfigurationError naming `where`."""
    for value in values:
        try:
            ipaddress.ip_address(value.strip("[]"))
        except ValueError:
            raise ConfigurationError(f"{where}: {value!r} is not an IP address") from None
    return values


def client_config(parser: configparser.ConfigParser) -> ClientConfig:
    master_url = get_option(parser, "slapos", "master_url")
    if not master_url:
        raise ConfigurationError("[slapos] master_url is missing from the configuration")
    return ClientConfig(
        master_url=master_url,
        master_rest_url=get_option(parser, "slapos", "master_rest_url"),
        key_file=_client_path(parser, "key_file"),
        cert_file=_client_path(parser, "cert_file"),
        computer_id=get_option(parser, "slapos", "computer_id"),
        ca_file=_client_path(parser, "partita_ca_file"),
        api_token=_api_token(get_option(parser, "slapos", "api_token")),
    )


def _client_path(parser: configparser.ConfigParser, key: str) -> str | None:
    """``[slapos] key``, else ``[slapconsole] key``, with ``~`` expanded."""
    value = get_option(parser, "slapos", key) or get_option(parser, "slapconsole", key)
    return os.path.expanduser(value) if value else None


def _api_token(value: str | None) -> str | None:
    """The API token text if it has a token's shape (a ConfigurationError otherwise, without
    repeating the secret)."""
    if value is None:
        return None
    try:
        return parse_token(value, enrolment=False).text()
    except TokenFormatError as error:
        raise ConfigurationError(f"[slapos] api_token is {error}") from None


def database_uri_from(value: str, base_dir: Path) -> str:
    """A SQLAlchemy URL from a config value: URLs are kept, paths become SQLite files."""
    if "://" in value:
        if value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value[len("postgresql://"):]
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return f"sqlite:///{path}"


def proxy_config(parser: configparser.ConfigParser) -> ProxyConfig:
    base_dir = Path(getattr(parser, "source_path", ".")).parent
    database = get_option(parser, "slapproxy", "database_uri")
    if not database:
        raise ConfigurationError("[slapproxy] database_uri is missing from the configuration")
    return ProxyConfig(
        computer_id=get_option(parser, "slapos", "computer_id", DEFAULT_COMPUTER_ID) or DEFAULT_COMPUTER_ID,
        host=get_option(parser, "slapproxy", "host", DEFAULT_PROXY_HOST) or DEFAULT_PROXY_HOST,
        port=get_int(parser, "slapproxy", "port", DEFAULT_PROXY_PORT),
        database_uri=database_uri_from(database, base_dir),
        quotas=quotas_config(parser, "slapproxy"),
    )


def quotas_config(parser: configparser.ConfigParser, section: str) -> Quotas:
    """The quotas of `section` (``max_instances_per_owner``, ``max_parameter_bytes_per_owner``)."""
    values: dict[str, int | None] = {}
    for key in ("max_instances_per_owner", "max_parameter_bytes_per_owner"):
        if get_option(parser, section, key) is None:
            values[key] = None  # missing or empty: the master's default
            continue
        value = get_int(parser, section, key, 0)
        if value < 0:
            raise ConfigurationError(f"[{section}] {key} must be a positive integer, not {value}")
        values[key] = value
    return Quotas(**values)


def master_config(parser: configparser.ConfigParser) -> MasterConfig:
    base_dir = Path(getattr(parser, "source_path", ".")).parent
    database = get_option(parser, "slapmaster", "database_uri")
    if not database:
        raise ConfigurationError("[slapmaster] database_uri is missing from the configuration")
    return MasterConfig(
        database_uri=database_uri_from(database, base_dir),
        host=get_option(parser, "slapmaster", "host", DEFAULT_PROXY_HOST) or DEFAULT_PROXY_HOST,
        port=get_int(parser, "slapmaster", "port", DEFAULT_PROXY_PORT),
        workers=get_int(parser, "slapmaster", "workers", 2),
        threads=get_int(parser, "slapmaster", "threads", 32),
        pki_directory=str(_path_from(get_option(parser, "slapmaster", "pki_directory", "pki") or "pki", base_dir)),
        tls_names=split_list(get_option(parser, "slapmaster", "tls_names")),
        tls_addresses=check_addresses(split_list(get_option(parser, "slapmaster", "tls_addresses")),
                                      "[slapmaster] tls_addresses"),
        authentication=_choice(parser, "slapmaster", "authentication", ("certificates", "none")),
        tls_frontends=check_addresses(split_list(get_option(parser, "slapmaster", "tls_frontends")),
                                      "[slapmaster] tls_frontends"),
        user_certificate_days=_days(parser, "user_certificate_days", 90),
        computer_certificate_days=_days(parser, "computer_certificate_days", 30),
        partition_certificate_days=_days(parser, "partition_certificate_days", 30),
        allowed_hosts=split_list(get_option(parser, "slapmaster", "allowed_hosts")),
        quotas=quotas_config(parser, "slapmaster"),
        unreachable_after=_unreachable_after(parser),
        packages_directory=str(_path_from(get_option(parser, "slapmaster", "packages_directory", "packages")
                                          or "packages", base_dir)),
        binary_cache_directory=str(_path_from(get_option(parser, "slapmaster", "binary_cache_directory",
                                                         "binary-cache") or "binary-cache", base_dir)),
        binary_cache_max_entry=_positive(parser, "binary_cache_max_entry", 2 * 1024 ** 3),
    )


def _unreachable_after(parser: configparser.ConfigParser) -> int:
    """``[slapmaster] unreachable_after`` (seconds): longer than a node's long poll (30 s, capped
    by the master at 60 s), or a node that waits would be shown unreachable."""
    seconds = get_int(parser, "slapmaster", "unreachable_after", 120)
    if not 90 <= seconds <= 7 * 86400:
        raise ConfigurationError(f"[slapmaster] unreachable_after is a number of seconds from 90 to 604800 "
                                 f"(longer than a node's long poll), not {seconds}")
    return seconds


def _positive(parser: configparser.ConfigParser, key: str, default: int) -> int:
    value = get_int(parser, "slapmaster", key, default)
    if value < 1:
        raise ConfigurationError(f"[slapmaster] {key} must be a positive number of bytes, not {value}")
    return value


def _choice(parser: configparser.ConfigParser, section: str, key: str, choices: tuple[str, ...]) -> str:
    value = get_option(parser, section, key, choices[0]) or choices[0]
    if value not in choices:
        raise ConfigurationError(f"[{section}] {key} is one of {', '.join(choices)}, not {value!r}")
    return value


def _days(parser: configparser.ConfigParser, key: str, default: int) -> int:
    days = get_int(parser, "slapmaster", key, default)
    if not 1 <= days <= 3650:
        raise ConfigurationError(f"[slapmaster] {key} is a number of days from 1 to 3650, not {days}")
    return days


def _path_from(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir.absolute() / path
