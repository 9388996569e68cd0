"""``up``'s steps, in order: wheelhouse (local), install (every host, in parallel), master (the
first host), nodes (every other host, in parallel), supply. Each step checks what is there first,
so re-running ``up`` completes an experiment and never duplicates anything.

Software release URLs: an http(s) URL is supplied as it is (every host must be able to read it);
a local path (absolute, or relative to where ``up`` runs) is made absolute and its directory
(the release's ``software.cfg`` and its neighbours) copied to the same path on every node first,
unless the node already has the same files there (hosts sharing a file system, a re-run).
"""
from __future__ import annotations

import configparser
import hashlib
import io
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from partita.experiment import layout, remote
from partita.experiment.context import (
    MASTER_CONFIG, MASTER_LOG, MASTER_PIDFILE, NODE_CONFIG, NODE_LOG, NODE_PIDFILE, Context, computer_id_of, path,
)
from partita.experiment.errors import ExperimentError, SshError
from partita.experiment.ssh import parallel
from partita.experiment.state import HostState
from partita.experiment.wheelhouse import Wheelhouse
from partita.slap.cli.configure_client import client_files, write_client_files
from partita.slap.enrolment import check_master_url, enrol, new_key

MASTER_START_DEADLINE = 90.0
_TOKEN_LINE = "enrolment token (single use, valid 24 hours): "


@dataclass(frozen=True)
class Options:
    partitions: int = 10
    master_port: int = 8443
    ipv4_network: str = layout.DEFAULT_IPV4_NETWORK
    node_settings: tuple[layout.NodeSetting, ...] = ()
    python: str = remote.PYTHON


@dataclass
class Timings:
    phases: dict[str, float] = field(default_factory=dict)

    def measure(self, name: str, step: Callable[[], object]) -> None:
        started = time.monotonic()
        step()
        self.phases[name] = time.monotonic() - started


def install(context: Context, wheelhouse: Wheelhouse, python: str) -> None:
    """Copy the missing wheels to every host and install Partita in its ``venv``."""
    names = sorted(path.name for path in wheelhouse.directory.glob("*.whl"))
    digest = wheelhouse.digest

    def one(host: HostState) -> None:
        ssh = context.ssh
        missing = remote.missing_wheels(ssh, host.name, f"{host.remote_dir}/wheelhouse", names)
        if missing:
            ssh.copy(host.name, [str(wheelhouse.directory / name) for name in missing],
                     f"{host.remote_dir}/wheelhouse/")
        remote.install(ssh, host.name, host.remote_dir, digest, wheelhouse.partita_wheel.name, python)
        host.address, host.interface, _ = remote.address(ssh, host.name)

    parallel(context.state.hosts, one, name=lambda host: host.name)


def master_url(host: HostState, port: int) -> str:
    return f"https://[{host.address}]:{port}" if ":" in host.address else f"https://{host.address}:{port}"


def master(context: Context, options: Options, wheelhouse: Wheelhouse) -> None:
    """PostgreSQL, ``master init``, ``master start`` on the first host; the toolchain's wheels in
    its package index; the admin's client configuration under ``--dir``."""
    state, ssh = context.state, context.ssh
    host = state.master
    created = remote.postgres(ssh, host.name, host.remote_dir, state.postgres_user)
    state.postgres_user_created = state.postgres_user_created or created
    url = state.master_url or master_url(host, options.master_port)
    port = int(url.rsplit(":", 1)[1])
    config = path(host, MASTER_CONFIG)
    if remote.read_file(ssh, host.name, config) is None:
        remote.write_private(ssh, host.name, config, (
            "[slapmaster]\n"
            f"database_uri = {remote.database_uri()}\n"
            f"host = {host.address}\nport = {port}\nworkers = 2\nthreads = 16\n"
            f"tls_addresses = {host.address}\n"
            f"packages_directory = {path(host, 'master/packages')}\n"))
    env = tuple(remote.database_env(host.remote_dir))
    # a new admin token if this machine lost its client configuration (the admin enrolled already)
    fresh = [] if context.client_config.is_file() else ["--new-admin-token"]
    init = remote.slapos(ssh, host.name, host.remote_dir, "master", "init", "--cfg", config, *fresh, timeout=300,
                         prefix=env)
    token = next((line.split(_TOKEN_LINE, 1)[1].strip() for line in init.splitlines() if _TOKEN_LINE in line), "")
    ssh.script(host.name, 'umask 022; mkdir -p "$1/master/packages"; cd "$1/wheelhouse"; '
               'for wheel in *.whl; do case "$wheel" in partita-*) ;; *) cp -p "$wheel" "$1/master/packages/" ;; esac; done',
               host.remote_dir)
    _release_packages(context, host, wheelhouse)
    remote.start_daemon(ssh, host.name, [*env, f"{host.remote_dir}/venv/bin/slapos", "master", "start", "--cfg", config],
                        pidfile=path(host, MASTER_PIDFILE), log=path(host, MASTER_LOG), marker=config,
                        directory=path(host, "master"))
    _wait_listening(host, port)
    state.master_url = url
    if not context.client_config.is_file():
        if not token:
            raise ExperimentError(f"{host.name}: slapos master init printed no admin token")
        _configure_client(context, url, token)
    state.client_config = str(context.client_config)


def _release_packages(context: Context, host: HostState, wheelhouse: Wheelhouse) -> None:
    """The wheels the local releases pin, into the master's package index (only those it lacks)."""
    if wheelhouse.release_wheels is None:
        return
    names = sorted(entry.name for entry in wheelhouse.release_wheels.glob("*.whl"))
    missing = remote.missing_wheels(context.ssh, host.name, path(host, "master/packages"), names)
    if missing:
        incoming = path(host, "master/.incoming")
        context.ssh.script(host.name, 'umask 022; mkdir -p "$1"', incoming)
        context.ssh.copy(host.name, [str(wheelhouse.release_wheels / name) for name in missing], f"{incoming}/")
        remote.publish_packages(context.ssh, host.name, incoming, path(host, "master/packages"))


def _configure_client(context: Context, url: str, token: str) -> None:
    files = client_files(context.client_config.absolute())
    context.client_config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = new_key()
    enrolled = enrol(check_master_url(url), token, key)
    write_client_files(files, url, key, enrolled)


def _wait_listening(host: HostState, port: int) -> None:
    deadline = time.monotonic() + MASTER_START_DEADLINE
    while True:
        try:
            socket.create_connection((host.address, port), timeout=2).close()
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise SshError(host.name, f"the master does not answer on port {port} ({error}); see "
                                          f"{path(host, MASTER_LOG)}")
            time.sleep(0.3)


def nodes(context: Context, options: Options) -> None:
    """Every other host registered, configured, formatted and running ``slapos node run``."""
    parallel(context.state.nodes, lambda host: node(context, options, host), name=lambda host: host.name)


def node(context: Context, options: Options, host: HostState) -> None:
    state, ssh = context.state, context.ssh
    config = path(host, NODE_CONFIG)
    slapos = f"{host.remote_dir}/venv/bin/slapos"
    _, interface, ipv6_addresses = remote.address(ssh, host.name)
    host.interface = interface
    existing = remote.read_file(ssh, host.name, config)
    if existing is None:
        with context.client() as client:
            token = client.create_compute_node_token(title=f"experiment {host.name}")["token"]
        ipv6 = layout.pick_ipv6(ipv6_addresses)
        argv = ["node", "register", "--token", "-", "--master-url", state.master_url, "--cfg", config,
                "--partition-number", str(options.partitions), "--interface-name", interface,
                "--ipv4-local-network", layout.ipv4_range(options.ipv4_network, host.index),
                "--instance-root", path(host, "srv"), "--software-root", path(host, "soft")]
        if ipv6:
            argv += ["--ipv6-local-network", layout.ipv6_range(ipv6, host.index)]
        ssh.script(host.name, 'umask 022; mkdir -p "$1/node" "$1/srv" "$1/soft"', host.remote_dir)
        # the token on standard input: on a command line, any local or remote user would see it
        remote.slapos(ssh, host.name, host.remote_dir, *argv, input=f"{token}\n".encode())
        existing = remote.read_file(ssh, host.name, config)
    host.computer_id = computer_id_of(existing)
    if not host.computer_id:
        raise SshError(host.name, f"{config} names no computer")
    remote.write_private(ssh, host.name, config, node_config(existing or "", state.master_url, options, host))
    host.partitions = options.partitions
    remote.slapos(ssh, host.name, host.remote_dir, "node", "format", "--cfg", config, timeout=600)
    remote.start_daemon(ssh, host.name, [slapos, "-v", "node", "run", "--cfg", config],
                        pidfile=path(host, NODE_PIDFILE), log=path(host, NODE_LOG), marker=config,
                        directory=path(host, "node"))


def node_config(text: str, url: str, options: Options, host: HostState) -> str:
    """The node configuration `text` with the package index and the ``--node-setting`` values."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    if not parser.has_section("slapos"):
        parser.add_section("slapos")
    parser["slapos"]["package_index"] = f"{url}/packages/simple/"
    for setting in options.node_settings:
        if not parser.has_section(setting.section):
            parser.add_section(setting.section)
        parser[setting.section][setting.key] = layout.expand(setting.value, host.name, host.index)
    output = io.StringIO()
    parser.write(output)
    return output.getvalue()


def software_url(value: str) -> str:
    """An http(s) URL as it is; a local path made absolute (a FileNotFoundError-like error if absent)."""
    if value.startswith(("http://", "https://")):
        return value
    local = Path(value).expanduser().absolute()
    if not local.is_file():
        raise ExperimentError(f"--software {value}: neither an http(s) URL nor a file of this machine")
    return str(local)


def supply(context: Context, urls: list[str]) -> None:
    """Copy the local releases to every node that lacks them, then supply each URL on each node."""
    local = [Path(url) for url in urls if url.startswith("/")]
    if local:
        parallel(context.state.nodes, lambda host: _copy_releases(context, host, local),
                 name=lambda host: host.name)
    with context.client() as client:
        for host in context.state.nodes:
            for url in urls:
                client.supply(host.computer_id, url)
    context.state.software = sorted(set(context.state.software) | set(urls))


def _copy_releases(context: Context, host: HostState, releases: list[Path]) -> None:
    ssh = context.ssh
    for release in releases:
        directory = release.parent
        files = sorted(item for item in directory.rglob("*")
                       if item.is_file() and "__pycache__" not in item.parts and item.suffix != ".pyc")
        names = [str(item.relative_to(directory)) for item in files]
        wanted = "".join(f"{_sha256(item)}  {name}\n" for item, name in zip(files, names))
        done = ssh.script(host.name, 'cd "$1" 2>/dev/null && shift && sha256sum -- "$@" 2>/dev/null || true',
                          str(directory), *names)
        if done.stdout.decode() == wanted:
            continue
        ssh.script(host.name, 'umask 022; mkdir -p "$1"', str(directory.parent))
        ssh.copy(host.name, [str(directory)], str(directory.parent) + "/")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
