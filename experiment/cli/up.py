"""``slapos experiment up --hosts FILE``: Partita on every host over SSH (see `partita.experiment`):
the wheels made here, Partita installed on every host, a master on the first (PostgreSQL, TLS),
every other host registered, formatted and running as a node, the releases supplied; then the
table of hosts and where the admin's client configuration is. Re-running it completes a running
experiment and duplicates nothing; a host given that the experiment did not have is refused
(``down`` first)."""
from __future__ import annotations

import time
from pathlib import Path

import click

from partita.experiment import deploy, layout, remote, report, wheelhouse
from partita.experiment.cli.common import client_hint, dir_option
from partita.experiment.context import Context
from partita.experiment.errors import ExperimentError
from partita.experiment.hosts import read_hosts
from partita.experiment.state import HostState, State, load, save


@click.command("up")
@click.option("--hosts", "hosts_file", required=True, metavar="FILE",
              help="The hosts, one a line (OAR's $OAR_NODEFILE); the first runs the master.")
@click.option("--ssh-user", default="root", show_default=True, help="The user ssh logs in as (root is needed).")
@click.option("--ssh-config", metavar="FILE", help="An ssh configuration file (ssh -F).")
@click.option("--software", "software", multiple=True, metavar="URL",
              help="A software release to supply on every node (repeatable): an http(s) URL, or a local "
                   "path copied to the same path on each host.")
@click.option("--partitions", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Partitions per node.")
@click.option("--remote-dir", default=layout.DEFAULT_REMOTE_DIR, show_default=True,
              help="Where the experiment lives on each host ({host} and {index} are replaced).")
@click.option("--node-setting", "node_settings", multiple=True, metavar="KEY=VALUE",
              help="A node configuration value ([slapos] KEY, or SECTION.KEY; {host} and {index} replaced).")
@click.option("--ipv4-network", default=layout.DEFAULT_IPV4_NETWORK, show_default=True,
              help="Node K's partitions take its K-th /24.")
@click.option("--master-port", type=click.IntRange(1, 65535), default=8443, show_default=True)
@click.option("--postgres-user", default="partita-pg", show_default=True,
              help="The unix user PostgreSQL runs as on the first host (made if missing, removed by down).")
@click.option("--python", default=remote.PYTHON, show_default=True, help="The hosts' Python.")
@click.option("--wheelhouse", "wheelhouse_dir", metavar="DIR", help="Where the wheels are cached (default: DIR/wheelhouse).")
@dir_option
def command(hosts_file: str, ssh_user: str, ssh_config: str | None, software: tuple[str, ...], partitions: int,
            remote_dir: str, node_settings: tuple[str, ...], ipv4_network: str, master_port: int,
            postgres_user: str, python: str, wheelhouse_dir: str | None, directory: str) -> None:
    """Start an experiment: a master on the first host of FILE, a node on every other one."""
    started = time.monotonic()
    local = Path(directory).absolute()
    names = read_hosts(hosts_file)
    hosts = [HostState(name, index, layout.role(index), layout.remote_dir(remote_dir, name, index))
             for index, name in enumerate(names, 1)]
    options = deploy.Options(partitions, master_port, ipv4_network,
                             tuple(layout.parse_node_setting(text) for text in node_settings), python)
    for index in range(2, len(hosts) + 1):
        layout.ipv4_range(ipv4_network, index)  # checked before anything is done
    urls = [deploy.software_url(value) for value in software]
    state = _merge(load(local), hosts, ssh_user, str(Path(ssh_config).absolute()) if ssh_config else None,
                   postgres_user)
    context = Context(local, state)
    timings = deploy.Timings()
    built: list[wheelhouse.Wheelhouse] = []
    timings.measure("wheelhouse", lambda: built.append(
        wheelhouse.ensure(Path(wheelhouse_dir).absolute() if wheelhouse_dir else local / "wheelhouse", python,
                          [Path(url) for url in urls if not url.startswith(("http://", "https://"))])))
    state.running = True
    save(local, state)
    try:
        timings.measure("install", lambda: deploy.install(context, built[0], python))
        timings.measure("master", lambda: deploy.master(context, options, built[0]))
        save(local, state)
        timings.measure("nodes", lambda: deploy.nodes(context, options))
        timings.measure("supply", lambda: deploy.supply(context, urls))
    finally:
        save(local, state)
    click.echo(report.render(report.rows(context)))
    click.echo(f"master: {state.master_url}")
    click.echo(client_hint(context))
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.phases.items())
    click.echo(f"up in {time.monotonic() - started:.1f} s ({phases})")


def _merge(existing: State | None, hosts: list[HostState], ssh_user: str, ssh_config: str | None,
           postgres_user: str) -> State:
    """The state to work on: a new one, or the running experiment's if it has the same hosts."""
    if existing is None or not existing.running:
        return State(hosts=hosts, ssh_user=ssh_user, ssh_config=ssh_config, postgres_user=postgres_user,
                     software=list(existing.software) if existing else [])
    if [(host.name, host.remote_dir) for host in existing.hosts] != [(host.name, host.remote_dir) for host in hosts]:
        raise ExperimentError("an experiment with other hosts or directories runs from this --dir: "
                              "'slapos experiment down' first, or give another --dir")
    existing.ssh_user, existing.ssh_config = ssh_user, ssh_config
    return existing
