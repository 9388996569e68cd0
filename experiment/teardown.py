"""``down``'s steps: every node stopped (its daemon, its services and supervisord), unformatted
(``slapos node unformat``: the partitions' users, addresses, routes and address claims), then the
master and PostgreSQL stopped (and the PostgreSQL user removed if ``up`` created it), what still
runs from a remote directory killed, and the remote directories removed: the hosts as found.

A host that cannot be reached is reported (one line) after the others were cleaned; ``down`` can
be run again.
"""
from __future__ import annotations

import time

from partita.experiment import remote
from partita.experiment.context import MASTER_CONFIG, MASTER_PIDFILE, NODE_CONFIG, NODE_PIDFILE, Context, path
from partita.experiment.ssh import parallel
from partita.experiment.state import HostState


def stop_node(context: Context, host: HostState) -> None:
    ssh = context.ssh
    config = path(host, NODE_CONFIG)
    remote.stop_daemon(ssh, host.name, path(host, NODE_PIDFILE), config)
    if remote.read_file(ssh, host.name, config) is None:
        return
    remote.slapos(ssh, host.name, host.remote_dir, "node", "stop", "all", "--cfg", config, timeout=120, check=False)
    remote.slapos(ssh, host.name, host.remote_dir, "node", "supervisorctl", "--cfg", config, "shutdown",
                  timeout=120, check=False)
    remote.slapos(ssh, host.name, host.remote_dir, "node", "unformat", "--cfg", config, timeout=300)


def stop_master(context: Context, host: HostState) -> None:
    ssh = context.ssh
    remote.stop_daemon(ssh, host.name, path(host, MASTER_PIDFILE), path(host, MASTER_CONFIG))
    state = context.state
    remote.stop_postgres(ssh, host.name, host.remote_dir, state.postgres_user, state.postgres_user_created)


def clean(context: Context, host: HostState) -> None:
    remote.sweep(context.ssh, host.name, host.remote_dir)
    remote.remove_directory(context.ssh, host.name, host.remote_dir)


def down(context: Context) -> dict[str, float]:
    """Every step, also after one failed (the first failure is raised at the end); each step's
    seconds."""
    state = context.state
    errors: list[Exception] = []
    steps = {
        "nodes": lambda: parallel(state.nodes, lambda host: stop_node(context, host), name=lambda h: h.name),
        "master": lambda: stop_master(context, state.master),
        "clean": lambda: parallel(state.hosts, lambda host: clean(context, host), name=lambda h: h.name),
    }
    seconds: dict[str, float] = {}
    for name, step in steps.items():
        started = time.monotonic()
        try:
            step()
        except Exception as error:  # noqa: BLE001 - every step runs; the first failure is raised after
            errors.append(error)
        seconds[name] = time.monotonic() - started
    if errors:
        raise errors[0]
    return seconds
