"""The node's configuration, read from a SlapOS-format file (`slap.config.read_config`).

``[slapos]``: ``computer_id``, ``master_url``, ``key_file``, ``cert_file`` (the computer's key and
certificate), ``partita_ca_file`` (the master's CA, to verify it), ``certificate_repository_path``
(where the partitions' keys and certificates go, `node.certificates`), ``instance_root``
(default ``/srv/slapgrid``), ``software_root`` (``/opt/slapgrid``), and Partita's node options:
``software_timeout`` (s, default 3600), ``buildout_timeout`` (s, 600; SlapOS's
``partition_timeout`` is read too), ``promise_timeout`` (s, 20), ``maximum_concurrency`` (4),
``toolchain_directory`` (``software_root/.toolchain``), ``cache_directory``
(``software_root/.cache``), ``toolchain_python`` (``/usr/bin/python3.11``),
``allowed_software_roots`` (directories local software releases must be in; unset: anywhere but
``instance_root`` and ``software_root``, `node.accept`), ``package_index`` (the PEP 503 index
every pip of the node uses, e.g. the master's ``<master_url>/packages/simple/``; unset: pip's
default, `node.package_index`), ``binary_cache`` (true: deploy releases from the master's binary
cache, and upload them on a builder, `node.binary_cache`).

``[slapformat]``: ``partition_amount`` (10), ``partition_base_name`` (``slappart``),
``user_base_name`` (``slapuser``), ``software_user`` (``slapsoft``), ``interface_name`` (``lo``),
``ipv4_local_network`` (``127.0.1.0/24``), ``ipv6_local_network`` (unset: the prefix of the
interface's global IPv6 address, or on loopback a unique-local /64: `node.network`),
``partition_has_ipv6_range`` (false) and ``ipv6_prefixshift`` (16: each partition also gets an
IPv6 range that many bits longer than the IPv6 network), ``alter_user`` and ``alter_network``
(default: true when run as root).

Run as root, the node creates users and addresses (unless told not to); run as another user it is
in single-user mode: every partition runs as that user.
"""
from __future__ import annotations

import configparser
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from partita.slap.config import get_int, get_option
from partita.slap.errors import ConfigurationError

DEFAULT_INSTANCE_ROOT = "/srv/slapgrid"
DEFAULT_SOFTWARE_ROOT = "/opt/slapgrid"
DEFAULT_IPV4_NETWORK = "127.0.1.0/24"
DEFAULT_IPV6_NETWORK = "fd70:6172:7469:7461::/64"
DEFAULT_TOOLCHAIN_PYTHON = "/usr/bin/python3.11"


@dataclass(frozen=True)
class NodeConfig:
    computer_id: str
    master_url: str
    instance_root: Path
    software_root: Path
    key_file: str | None = None
    cert_file: str | None = None
    ca_file: str | None = None
    certificate_repository_path: Path | None = None
    partition_amount: int = 10
    partition_base_name: str = "slappart"
    user_base_name: str = "slapuser"
    software_user: str = "slapsoft"
    interface_name: str = "lo"
    ipv4_local_network: str = DEFAULT_IPV4_NETWORK
    ipv6_local_network: str = DEFAULT_IPV6_NETWORK
    ipv6_configured: bool = False  # ipv6_local_network was given (else it is only the fallback)
    partition_has_ipv6_range: bool = False
    ipv6_prefixshift: int = 16
    alter_user: bool = False
    alter_network: bool = False
    software_timeout: float = 3600.0
    buildout_timeout: float = 600.0
    promise_timeout: float = 20.0
    maximum_concurrency: int = 4
    http_timeout: float = 30.0
    toolchain_directory: Path | None = None
    cache_directory: Path | None = None
    allowed_software_roots: tuple[Path, ...] = ()
    toolchain_python: str = DEFAULT_TOOLCHAIN_PYTHON
    binary_cache: bool = True
    package_index: str | None = None

    @property
    def single_user(self) -> bool:
        """Every partition runs as the node's own user (the node does not run as root)."""
        return os.geteuid() != 0

    @property
    def has_certificate(self) -> bool:
        """The node speaks to its master with a certificate of its own (not the proxy's mode)."""
        return bool(self.key_file and self.cert_file)

    @property
    def toolchain_root(self) -> Path:
        return self.toolchain_directory or self.software_root / ".toolchain"

    @property
    def cache_root(self) -> Path:
        return self.cache_directory or self.software_root / ".cache"

    @property
    def supervisor_directory(self) -> Path:
        return self.instance_root / "etc"

    @property
    def supervisor_socket(self) -> Path:
        return self.instance_root / "sv.sock"

    def partition_ids(self) -> list[str]:
        return [f"{self.partition_base_name}{i}" for i in range(self.partition_amount)]

    def partition_path(self, partition_id: str) -> Path:
        return self.instance_root / partition_id


def _bool(parser: configparser.ConfigParser, section: str, key: str, default: bool) -> bool:
    raw = get_option(parser, section, key)
    if raw is None:
        return default
    value = raw.lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ConfigurationError(f"[{section}] {key} must be true or false, not {raw!r}")


def _float(parser: configparser.ConfigParser, section: str, key: str, default: float) -> float:
    raw = get_option(parser, section, key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"[{section}] {key} must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise ConfigurationError(f"[{section}] {key} must be positive, not {raw!r}")
    return value


def _network(parser: configparser.ConfigParser, key: str, default: str, version: int) -> str:
    raw = get_option(parser, "slapformat", key, default) or default
    try:
        network = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ConfigurationError(f"[slapformat] {key} is not a network: {raw!r}") from None
    if network.version != version:
        raise ConfigurationError(f"[slapformat] {key} must be an IPv{version} network, not {raw!r}")
    return str(network)


def _path(parser: configparser.ConfigParser, key: str, default: str | None, base: Path) -> Path | None:
    raw = get_option(parser, "slapos", key, default)
    if raw is None:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (base / path)


def node_config(parser: configparser.ConfigParser) -> NodeConfig:
    """The node's configuration; a missing or bad value is a ConfigurationError naming it."""
    base = Path(getattr(parser, "source_path", ".")).resolve().parent
    master_url = get_option(parser, "slapos", "master_url")
    if not master_url:
        raise ConfigurationError("[slapos] master_url is missing from the configuration")
    computer_id = get_option(parser, "slapos", "computer_id")
    if not computer_id:
        raise ConfigurationError("[slapos] computer_id is missing from the configuration")
    root = os.geteuid() == 0
    amount = get_int(parser, "slapformat", "partition_amount", 10)
    if not 0 <= amount <= 1000:
        raise ConfigurationError(f"[slapformat] partition_amount must be between 0 and 1000, not {amount}")
    concurrency = get_int(parser, "slapos", "maximum_concurrency", 4)
    if concurrency < 1:
        raise ConfigurationError("[slapos] maximum_concurrency must be at least 1")
    buildout_timeout = _float(parser, "slapos", "partition_timeout", 600.0)
    return NodeConfig(
        computer_id=computer_id,
        master_url=master_url,
        instance_root=_path(parser, "instance_root", DEFAULT_INSTANCE_ROOT, base),  # type: ignore[arg-type]
        software_root=_path(parser, "software_root", DEFAULT_SOFTWARE_ROOT, base),  # type: ignore[arg-type]
        key_file=get_option(parser, "slapos", "key_file"),
        cert_file=get_option(parser, "slapos", "cert_file"),
        ca_file=get_option(parser, "slapos", "partita_ca_file"),
        certificate_repository_path=_path(parser, "certificate_repository_path", None, base),
        partition_amount=amount,
        partition_base_name=get_option(parser, "slapformat", "partition_base_name", "slappart") or "slappart",
        user_base_name=get_option(parser, "slapformat", "user_base_name", "slapuser") or "slapuser",
        software_user=get_option(parser, "slapformat", "software_user", "slapsoft") or "slapsoft",
        interface_name=get_option(parser, "slapformat", "interface_name", "lo") or "lo",
        ipv4_local_network=_network(parser, "ipv4_local_network", DEFAULT_IPV4_NETWORK, 4),
        ipv6_local_network=_network(parser, "ipv6_local_network", DEFAULT_IPV6_NETWORK, 6),
        ipv6_configured=bool(get_option(parser, "slapformat", "ipv6_local_network")),
        partition_has_ipv6_range=_bool(parser, "slapformat", "partition_has_ipv6_range", False),
        ipv6_prefixshift=_shift(parser),
        alter_user=_bool(parser, "slapformat", "alter_user", root),
        alter_network=_bool(parser, "slapformat", "alter_network", root),
        software_timeout=_float(parser, "slapos", "software_timeout", 3600.0),
        buildout_timeout=_float(parser, "slapos", "buildout_timeout", buildout_timeout),
        promise_timeout=_float(parser, "slapos", "promise_timeout", 20.0),
        maximum_concurrency=concurrency,
        http_timeout=_float(parser, "slapos", "http_timeout", 30.0),
        toolchain_directory=_path(parser, "toolchain_directory", None, base),
        cache_directory=_path(parser, "cache_directory", None, base),
        toolchain_python=get_option(parser, "slapos", "toolchain_python", DEFAULT_TOOLCHAIN_PYTHON)
        or DEFAULT_TOOLCHAIN_PYTHON,
        allowed_software_roots=_roots(parser),
        binary_cache=_bool(parser, "slapos", "binary_cache", True),
        package_index=_package_index(parser),
    )


def _package_index(parser: configparser.ConfigParser) -> str | None:
    """``[slapos] package_index``: an http(s) URL, or None."""
    value = get_option(parser, "slapos", "package_index")
    return check_package_index(value, "[slapos] package_index") if value else None


def check_package_index(value: str, where: str) -> str:
    """`value` if it is an http(s) URL with a host; a ConfigurationError naming `where`."""
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not value.startswith(("http://", "https://")) or not host or any(c.isspace() for c in value):
        raise ConfigurationError(f"{where} must be an http:// or https:// URL, not {value[:200]!r}")
    return value


def _shift(parser: configparser.ConfigParser) -> int:
    shift = get_int(parser, "slapformat", "ipv6_prefixshift", 16)
    if not 1 <= shift <= 64:
        raise ConfigurationError(f"[slapformat] ipv6_prefixshift must be between 1 and 64, not {shift}")
    return shift


def _roots(parser: configparser.ConfigParser) -> tuple[Path, ...]:
    """``[slapos] allowed_software_roots``: absolute directories (whitespace or comma separated)
    local software releases must be in (`node.accept`); unset: any but the node's own roots."""
    raw = get_option(parser, "slapos", "allowed_software_roots") or ""
    roots = tuple(Path(os.path.normpath(item)) for item in raw.replace(",", " ").split())
    for root in roots:
        if not root.is_absolute():
            raise ConfigurationError(f"[slapos] allowed_software_roots must list absolute directories, not {str(root)!r}")
    return roots
